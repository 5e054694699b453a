#include "ccurl.h"
#include <stdlib.h>
#include <string.h>

static int buffer_append(ccurl_buffer *b, const char *bytes, size_t n, size_t cap) {
    if (b->length + n > cap) return 0;
    if (b->length + n > b->capacity) {
        size_t wanted = b->capacity ? b->capacity : 4096;
        while (wanted < b->length + n) wanted *= 2;
        if (wanted > cap) wanted = cap;
        char *grown = realloc(b->data, wanted);
        if (!grown) return 0;
        b->data = grown;
        b->capacity = wanted;
    }
    memcpy(b->data + b->length, bytes, n);
    b->length += n;
    return 1;
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata) {
    ccurl_transfer *t = userdata;
    size_t n = size * nmemb;
    if (!buffer_append(&t->body, ptr, n, t->max_body)) {
        t->body_overflow = 1;
        return 0; // makes libcurl stop with CURLE_WRITE_ERROR
    }
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *userdata) {
    ccurl_transfer *t = userdata;
    size_t n = size * nmemb;
    // A status line starts a new response (after 100-continue, or a proxy's CONNECT answer):
    // keep only the headers of the last one.
    if (n >= 5 && memcmp(ptr, "HTTP/", 5) == 0) t->headers.length = 0;
    if (!buffer_append(&t->headers, ptr, n, t->max_headers)) {
        t->headers_overflow = 1;
        return 0;
    }
    return n;
}

static int on_progress(void *clientp, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
    (void)dltotal; (void)dlnow; (void)ultotal; (void)ulnow;
    ccurl_transfer *t = clientp;
    return atomic_load(&t->cancelled) ? 1 : 0;
}

ccurl_transfer *ccurl_transfer_create(size_t max_body, size_t max_headers) {
    ccurl_transfer *t = calloc(1, sizeof(ccurl_transfer));
    if (!t) return NULL;
    t->max_body = max_body;
    t->max_headers = max_headers;
    atomic_init(&t->cancelled, 0);
    return t;
}

void ccurl_transfer_destroy(ccurl_transfer *t) {
    if (!t) return;
    free(t->body.data);
    free(t->headers.data);
    free(t);
}

void ccurl_transfer_cancel(ccurl_transfer *t) { atomic_store(&t->cancelled, 1); }

CURLcode ccurl_transfer_attach(CURL *h, ccurl_transfer *t) {
    CURLcode rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, t)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_HEADERDATA, t)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_XFERINFODATA, t)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L)) != CURLE_OK) return rc;
    // Lets a test check that a handle between jobs points at no transfer (CURLINFO_PRIVATE).
    if ((rc = curl_easy_setopt(h, CURLOPT_PRIVATE, (void *)t)) != CURLE_OK) return rc;
    t->error[0] = 0;
    return curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->error);
}

CURLcode ccurl_setopt_long(CURL *h, CURLoption option, long value) { return curl_easy_setopt(h, option, value); }
CURLcode ccurl_setopt_off(CURL *h, CURLoption option, curl_off_t value) { return curl_easy_setopt(h, option, value); }
CURLcode ccurl_setopt_string(CURL *h, CURLoption option, const char *value) { return curl_easy_setopt(h, option, value); }
CURLcode ccurl_setopt_pointer(CURL *h, CURLoption option, const void *value) { return curl_easy_setopt(h, option, value); }
CURLcode ccurl_setopt_slist(CURL *h, CURLoption option, struct curl_slist *value) { return curl_easy_setopt(h, option, value); }
CURLcode ccurl_getinfo_long(CURL *h, CURLINFO info, long *value) { return curl_easy_getinfo(h, info, value); }
CURLcode ccurl_getinfo_string(CURL *h, CURLINFO info, const char **value) { return curl_easy_getinfo(h, info, value); }
CURLcode ccurl_getinfo_off(CURL *h, CURLINFO info, curl_off_t *value) { return curl_easy_getinfo(h, info, value); }

void *ccurl_private(CURL *h) {
    void *p = NULL;
    if (curl_easy_getinfo(h, CURLINFO_PRIVATE, &p) != CURLE_OK) return NULL;
    return p;
}
