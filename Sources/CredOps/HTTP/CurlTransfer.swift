import CCurl
import Foundation

/// One libcurl transfer on a reused easy handle: the job's options in, then its answer or error
/// out. The multi loop runs it between `prepare` and `complete`.
struct CurlTransfer {
    let handle: UnsafeMutableRawPointer
    let job: CurlJob
    let configuration: HTTPClientConfiguration

    /// Sets the job's options on the handle, which must be fresh or reset. The job keeps the
    /// header list until `complete`; on failure the handle is reset again.
    func prepare() -> Result<Void, HTTPClientError> {
        let request = job.request
        var headerList: UnsafeMutablePointer<curl_slist>?
        var ok = true
        func set(_ option: CURLoption, _ value: Int) { ok = ok && ccurl_setopt_long(handle, option, value) == CURLE_OK }
        func set(_ option: CURLoption, _ value: String) { ok = ok && ccurl_setopt_string(handle, option, value) == CURLE_OK }

        set(CURLOPT_URL, request.url)
        set(CURLOPT_NOSIGNAL, 1)
        set(CURLOPT_CONNECTTIMEOUT_MS, Int(configuration.connectTimeout.milliseconds))
        set(CURLOPT_TIMEOUT_MS, Int(job.timeout.milliseconds))
        set(CURLOPT_FOLLOWLOCATION, 0)
        // Send the path as built: no squashing of `/./` or `/../` (names are encoded so that
        // none is made of dots alone; this keeps anything else from being reinterpreted).
        set(CURLOPT_PATH_AS_IS, 1)
        set(CURLOPT_PROTOCOLS_STR, "http,https")
        set(CURLOPT_TCP_KEEPALIVE, 1)
        set(CURLOPT_TCP_NODELAY, 1)
        set(CURLOPT_USERAGENT, configuration.userAgent)
        // Decode gzip/deflate/br; the body cap applies to the decoded bytes, so a bomb stops at the cap.
        set(CURLOPT_ACCEPT_ENCODING, "")
        set(CURLOPT_SSL_VERIFYPEER, configuration.tls.insecureSkipVerify ? 0 : 1)
        set(CURLOPT_SSL_VERIFYHOST, configuration.tls.insecureSkipVerify ? 0 : 2)
        if let ca = configuration.tls.caFile { set(CURLOPT_CAINFO, ca) }
        if let cert = configuration.tls.certFile { set(CURLOPT_SSLCERT, cert) }
        if let key = configuration.tls.keyFile { set(CURLOPT_SSLKEY, key) }
        // Loopback never goes through a proxy; other hosts follow the usual proxy variables.
        if job.target.isLoopback { set(CURLOPT_PROXY, "") }

        for (name, value) in request.headers { headerList = curl_slist_append(headerList, "\(name): \(value)") }
        headerList = curl_slist_append(headerList, "Expect:")

        switch request.method {
        case .get:
            set(CURLOPT_HTTPGET, 1)
        case .post:
            set(CURLOPT_POST, 1)
        case .put, .patch, .delete:
            set(CURLOPT_CUSTOMREQUEST, request.method.rawValue)
        }
        // A GET never carries a body (libcurl would turn it into a POST).
        if let body = request.body, request.method != .get {
            ok = ok && ccurl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t(body.count)) == CURLE_OK
            ok = ok && body.withUnsafeBytes { raw in
                ccurl_setopt_pointer(handle, CURLOPT_COPYPOSTFIELDS, raw.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!) == CURLE_OK
            }
        } else if request.method == .post {
            ok = ok && ccurl_setopt_off(handle, CURLOPT_POSTFIELDSIZE_LARGE, 0) == CURLE_OK
            ok = ok && ccurl_setopt_string(handle, CURLOPT_COPYPOSTFIELDS, "") == CURLE_OK
        }
        ok = ok && ccurl_setopt_slist(handle, CURLOPT_HTTPHEADER, headerList) == CURLE_OK
        ok = ok && ccurl_transfer_attach(handle, job.transfer) == CURLE_OK
        job.headerList = headerList
        guard ok else {
            release()
            return .failure(HTTPClientError(.other, request: request.summary, message: "libcurl refused an option (is libcurl older than 7.85?)"))
        }
        return .success(())
    }

    /// The answer of a transfer that ended with `code`; the handle is reset afterwards.
    func complete(_ code: CURLcode) -> Result<HTTPResponse, HTTPClientError> {
        defer { release() }
        let transfer = job.transfer.pointee
        guard code == CURLE_OK else {
            return .failure(error(for: code, transfer: transfer, target: job.target))
        }
        var status = 0
        _ = ccurl_getinfo_long(handle, CURLINFO_RESPONSE_CODE, &status)
        let body = transfer.body.data.map { Data(bytes: $0, count: transfer.body.length) } ?? Data()
        let headers = Self.parseHeaders(transfer.headers)
        return .success(HTTPResponse(status: status, headers: headers, body: body))
    }

    /// The handle outlives this job: reset it before the job's header list and transfer buffers
    /// are freed, so that it never holds a pointer to freed memory. A reset keeps the
    /// connection cache (it belongs to the multi handle), so the next job reuses the connection.
    func release() {
        curl_easy_reset(handle)
        curl_slist_free_all(job.headerList)
        job.headerList = nil
    }

    private func error(for code: CURLcode, transfer: ccurl_transfer, target: RequestTarget) -> HTTPClientError {
        let summary = job.request.summary
        // libcurl's words may quote what the server sent (a header, a certificate name).
        let detail = TextSafety.stripped(withUnsafeBytes(of: transfer.error) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }, limit: 300)
        let place = target.place
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            if detail.hasPrefix("Connection timed out") || detail.hasPrefix("Failed to connect") || detail.hasPrefix("Resolving timed out") {
                return HTTPClientError(.connectTimeout, request: summary,
                                       message: "connect to \(place) timed out after \(configuration.connectTimeout.shortDescription)")
            }
            return HTTPClientError(.timeout, request: summary, message: "no complete answer from \(place) within \(job.timeout.shortDescription)")
        case CURLE_COULDNT_RESOLVE_HOST:
            return HTTPClientError(.dnsFailure, request: summary, message: "cannot resolve host \(target.host)")
        case CURLE_COULDNT_RESOLVE_PROXY:
            return HTTPClientError(.dnsFailure, request: summary, message: "cannot resolve the proxy host (check HTTPS_PROXY / HTTP_PROXY)")
        case CURLE_COULDNT_CONNECT:
            let reason = detail.range(of: ": ", options: .backwards).map { String(detail[$0.upperBound...]).lowercased() } ?? "refused"
            return HTTPClientError(.connectFailed, request: summary, message: "connect to \(place) failed: \(reason)")
        case CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SSL_CERTPROBLEM, CURLE_SSL_CIPHER,
             CURLE_SSL_CACERT_BADFILE, CURLE_SSL_ISSUER_ERROR, CURLE_SSL_PINNEDPUBKEYNOTMATCH, CURLE_SSL_INVALIDCERTSTATUS,
             CURLE_SSL_CRL_BADFILE, CURLE_SSL_ENGINE_INITFAILED, CURLE_SSL_SHUTDOWN_FAILED, CURLE_USE_SSL_FAILED:
            return HTTPClientError(.tls, request: summary, message: "TLS with \(place) failed: \(detail.isEmpty ? String(cString: curl_easy_strerror(code)) : detail)")
        case CURLE_WRITE_ERROR where transfer.body_overflow != 0:
            return HTTPClientError(.responseTooLarge, request: summary,
                                   message: "the answer from \(place) is larger than \(configuration.maxResponseBytes / 1024 / 1024) MiB; refused")
        case CURLE_WRITE_ERROR where transfer.headers_overflow != 0:
            return HTTPClientError(.responseTooLarge, request: summary, message: "the answer's headers from \(place) are larger than 256 KiB; refused")
        case CURLE_ABORTED_BY_CALLBACK:
            return HTTPClientError(.cancelled, request: summary, message: "cancelled")
        case CURLE_GOT_NOTHING:
            return HTTPClientError(.connectionDropped, request: summary, message: "\(place) closed the connection without answering")
        case CURLE_SEND_ERROR, CURLE_RECV_ERROR, CURLE_PARTIAL_FILE, CURLE_HTTP2, CURLE_HTTP2_STREAM:
            return HTTPClientError(.connectionDropped, request: summary, message: "the connection to \(place) broke before a complete answer")
        case CURLE_BAD_CONTENT_ENCODING:
            return HTTPClientError(.other, request: summary, message: "the answer from \(place) has a broken content encoding")
        case CURLE_UNSUPPORTED_PROTOCOL, CURLE_URL_MALFORMAT:
            return HTTPClientError(.invalidURL, request: summary, message: "the URL cannot be used")
        default:
            let text = String(cString: curl_easy_strerror(code))
            return HTTPClientError(.other, request: summary, message: "request to \(place) failed: \(text)")
        }
    }

    /// Header lines of the final answer, status line skipped. Parsed on bytes: it runs for
    /// every answer.
    static func parseHeaders(_ buffer: ccurl_buffer) -> HTTPHeaders {
        guard let data = buffer.data, buffer.length > 0 else { return HTTPHeaders() }
        let bytes = UnsafeRawBufferPointer(start: data, count: buffer.length).bindMemory(to: UInt8.self)
        var headers = HTTPHeaders()
        var lineStart = 0
        func isSpace(_ b: UInt8) -> Bool { b == 32 || b == 9 }
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count, bytes[lineEnd] != 10 { lineEnd += 1 }
            var end = lineEnd
            if end > lineStart, bytes[end - 1] == 13 { end -= 1 }
            // A status line (HTTP/...) has no place among the fields.
            let isStatus = end - lineStart >= 5 && bytes[lineStart] == 72 && bytes[lineStart + 1] == 84 && bytes[lineStart + 4] == 47
            if !isStatus, let colon = (lineStart..<end).first(where: { bytes[$0] == 58 }) {
                var nameEnd = colon
                while nameEnd > lineStart, isSpace(bytes[nameEnd - 1]) { nameEnd -= 1 }
                var valueStart = colon + 1
                while valueStart < end, isSpace(bytes[valueStart]) { valueStart += 1 }
                var valueEnd = end
                while valueEnd > valueStart, isSpace(bytes[valueEnd - 1]) { valueEnd -= 1 }
                headers.add(String(decoding: bytes[lineStart..<nameEnd], as: UTF8.self),
                            String(decoding: bytes[valueStart..<valueEnd], as: UTF8.self))
            }
            lineStart = lineEnd + 1
        }
        return headers
    }
}
