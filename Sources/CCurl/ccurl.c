#include "ccurl.h"
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>

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
int ccurl_transfer_is_cancelled(ccurl_transfer *t) { return atomic_load(&t->cancelled); }

CURLcode ccurl_transfer_attach(CURL *h, ccurl_transfer *t) {
    CURLcode rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, t)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header)) != CURLE_OK) return rc;
    if ((rc = curl_easy_setopt(h, CURLOPT_HEADERDATA, t)) != CURLE_OK) return rc;
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

CURLcode ccurl_msg_result(const CURLMsg *msg) { return msg->data.result; }

void *ccurl_private(CURL *h) {
    void *p = NULL;
    if (curl_easy_getinfo(h, CURLINFO_PRIVATE, &p) != CURLE_OK) return NULL;
    return p;
}

struct ccurl_loop {
    CURLM *multi;
    int epfd;
    int wakefd;
    /// When libcurl wants `CURL_SOCKET_TIMEOUT` next (CLOCK_MONOTONIC ms), or -1 for never.
    int64_t deadline_ms;
};

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp) {
    (void)easy;
    ccurl_loop *loop = userp;
    if (what == CURL_POLL_REMOVE) {
        // libcurl drops the socket's assignment with it.
        epoll_ctl(loop->epfd, EPOLL_CTL_DEL, s, NULL);  // fails harmlessly if already gone
        return 0;
    }
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
    ev.data.fd = s;
    // A socket libcurl has not told us of yet carries no assignment: add it, else modify it
    // (each falling back to the other, should the two ever disagree).
    int op = socketp ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epfd, op, s, &ev) != 0) {
        int other = op == EPOLL_CTL_ADD ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
        if ((errno != EEXIST && errno != ENOENT) || epoll_ctl(loop->epfd, other, s, &ev) != 0) return -1;
    }
    if (!socketp) curl_multi_assign(loop->multi, s, loop);
    return 0;
}

static int on_timer(CURLM *multi, long timeout_ms, void *userp) {
    (void)multi;
    ccurl_loop *loop = userp;
    loop->deadline_ms = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    return 0;
}

ccurl_loop *ccurl_loop_create(void) {
    ccurl_loop *loop = calloc(1, sizeof(ccurl_loop));
    if (!loop) return NULL;
    loop->deadline_ms = -1;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    loop->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    loop->multi = curl_multi_init();
    if (loop->epfd < 0 || loop->wakefd < 0 || !loop->multi) goto fail;
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = loop->wakefd;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->wakefd, &ev) != 0) goto fail;
    if (curl_multi_setopt(loop->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK) goto fail;
    if (curl_multi_setopt(loop->multi, CURLMOPT_SOCKETDATA, loop) != CURLM_OK) goto fail;
    if (curl_multi_setopt(loop->multi, CURLMOPT_TIMERFUNCTION, on_timer) != CURLM_OK) goto fail;
    if (curl_multi_setopt(loop->multi, CURLMOPT_TIMERDATA, loop) != CURLM_OK) goto fail;
    return loop;
fail:
    ccurl_loop_destroy(loop);
    return NULL;
}

void ccurl_loop_destroy(ccurl_loop *loop) {
    if (!loop) return;
    if (loop->multi) curl_multi_cleanup(loop->multi);
    if (loop->epfd >= 0) close(loop->epfd);
    if (loop->wakefd >= 0) close(loop->wakefd);
    free(loop);
}

CURLM *ccurl_loop_multi(ccurl_loop *loop) { return loop->multi; }

void ccurl_loop_wake(ccurl_loop *loop) {
    uint64_t one = 1;
    // A full counter (never, in practice) still wakes the waiter: nothing to do on failure.
    ssize_t n = write(loop->wakefd, &one, sizeof one);
    (void)n;
}

void ccurl_loop_wait(ccurl_loop *loop, int max_ms) {
    int running = 0;
    int timeout = max_ms;
    if (loop->deadline_ms >= 0) {
        int64_t left = loop->deadline_ms - now_ms();
        if (left < 0) left = 0;
        if (left < timeout) timeout = (int)left;
    }
    struct epoll_event events[64];
    int n = epoll_wait(loop->epfd, events, 64, timeout);
    for (int i = 0; i < n; i++) {
        int fd = events[i].data.fd;
        if (fd == loop->wakefd) {
            uint64_t count;
            ssize_t r = read(loop->wakefd, &count, sizeof count);
            (void)r;
            continue;
        }
        int bits = 0;
        if (events[i].events & (EPOLLIN | EPOLLHUP)) bits |= CURL_CSELECT_IN;
        if (events[i].events & EPOLLOUT) bits |= CURL_CSELECT_OUT;
        if (events[i].events & EPOLLERR) bits |= CURL_CSELECT_ERR;
        curl_multi_socket_action(loop->multi, fd, bits, &running);
    }
    if (loop->deadline_ms >= 0 && now_ms() >= loop->deadline_ms) {
        loop->deadline_ms = -1;
        curl_multi_socket_action(loop->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    }
}
