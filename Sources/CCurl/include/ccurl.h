#ifndef CCURL_H
#define CCURL_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdatomic.h>

/// A growable byte buffer filled by libcurl callbacks.
typedef struct ccurl_buffer {
    char *data;
    size_t length;
    size_t capacity;
} ccurl_buffer;

/// Everything one transfer collects, plus its limits and its cancel flag.
typedef struct ccurl_transfer {
    ccurl_buffer body;
    /// Raw header lines of the last response only (a 100-continue or proxy answer is discarded).
    ccurl_buffer headers;
    size_t max_body;
    size_t max_headers;
    /// Set when the body or the headers went over their cap; the transfer then ends with CURLE_WRITE_ERROR.
    int body_overflow;
    int headers_overflow;
    /// Set from any thread; the thread that drives the transfer then ends it.
    atomic_int cancelled;
    char error[CURL_ERROR_SIZE];
} ccurl_transfer;

/// Allocates a transfer with the given caps; returns NULL when out of memory.
ccurl_transfer *ccurl_transfer_create(size_t max_body, size_t max_headers);
void ccurl_transfer_destroy(ccurl_transfer *t);
/// Asks a running transfer to stop; safe from any thread.
void ccurl_transfer_cancel(ccurl_transfer *t);
/// Whether `ccurl_transfer_cancel` was called.
int ccurl_transfer_is_cancelled(ccurl_transfer *t);
/// Installs the write, header and error-buffer options of `t` on `h`.
CURLcode ccurl_transfer_attach(CURL *h, ccurl_transfer *t);

// Non-variadic wrappers for the variadic curl_easy_setopt / curl_easy_getinfo.
CURLcode ccurl_setopt_long(CURL *h, CURLoption option, long value);
CURLcode ccurl_setopt_off(CURL *h, CURLoption option, curl_off_t value);
CURLcode ccurl_setopt_string(CURL *h, CURLoption option, const char *value);
CURLcode ccurl_setopt_pointer(CURL *h, CURLoption option, const void *value);
CURLcode ccurl_setopt_slist(CURL *h, CURLoption option, struct curl_slist *value);
CURLcode ccurl_getinfo_long(CURL *h, CURLINFO info, long *value);
CURLcode ccurl_getinfo_string(CURL *h, CURLINFO info, const char **value);
CURLcode ccurl_getinfo_off(CURL *h, CURLINFO info, curl_off_t *value);
/// A multi handle driven through libcurl's socket interface on an epoll set, plus an eventfd
/// that wakes its waiter. `curl_multi_perform` runs every transfer on each call (a poll system
/// call each, in this libcurl); the socket interface runs only the transfers whose socket is
/// ready or whose timer is due.
typedef struct ccurl_loop ccurl_loop;

/// NULL when out of memory or out of file descriptors.
ccurl_loop *ccurl_loop_create(void);
/// Frees the multi handle (transfers must have been removed) and the descriptors.
void ccurl_loop_destroy(ccurl_loop *loop);
CURLM *ccurl_loop_multi(ccurl_loop *loop);
/// Makes a waiting (or the next) `ccurl_loop_wait` return; safe from any thread.
void ccurl_loop_wake(ccurl_loop *loop);
/// Waits up to `max_ms` (0: do not block) for ready sockets, a due timer or a wake-up, and lets
/// libcurl act on them. Finished transfers are then read with `curl_multi_info_read`.
void ccurl_loop_wait(ccurl_loop *loop, int max_ms);
/// The result of a finished transfer's message (a union member Swift cannot always reach).
CURLcode ccurl_msg_result(const CURLMsg *msg);
/// The transfer a handle points at (CURLOPT_PRIVATE), NULL between jobs.
void *ccurl_private(CURL *h);

#endif
