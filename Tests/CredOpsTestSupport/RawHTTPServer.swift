import Foundation

/// A bare TCP listener on 127.0.0.1 for client edge cases a real server would not produce:
/// redirects to elsewhere, oversized answers, silence. Each connection gets `respond(request)`;
/// nil keeps the connection open without answering until the client leaves or the server stops.
///
/// Every descriptor is closed only by the thread that uses it; `stop()` only shuts sockets down
/// (which wakes those threads). Closing from `stop()` would let a blocked thread go on with a
/// descriptor number the system may already have handed to another test's socket.
public final class RawHTTPServer: @unchecked Sendable {
    public let port: Int
    private let fd: Int32
    private let respond: @Sendable (String) -> Data?
    private let lock = NSLock()
    private var requests: [String] = []
    private var open: Set<Int32> = []
    private var stopped = false

    public init(respond: @escaping @Sendable (String) -> Data?) throws {
        self.respond = respond
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var yes: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &yes, socklen_t(MemoryLayout<Int32>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        let bound = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard bound == 0, listen(fd, 64) == 0 else {
            close(fd)
            throw NSError(domain: "RawHTTPServer", code: Int(errno))
        }
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
        port = Int(UInt16(bigEndian: addr.sin_port))
        self.fd = fd
        detachedThread { [self] in self.acceptLoop() }
    }

    public var url: String { "http://127.0.0.1:\(port)" }

    /// The request heads received so far.
    public var received: [String] { lock.withLock { requests } }

    public func stop() {
        lock.withLock {
            stopped = true
            for c in open { shutdown(c, Int32(SHUT_RDWR)) }
            // Wakes the accept loop, which closes the listening socket itself.
            shutdown(fd, Int32(SHUT_RDWR))
        }
    }

    private func acceptLoop() {
        while true {
            let client = accept(fd, nil, nil)
            if client < 0 {
                // A signal (SIGCHLD from a test's child process) interrupts accept: try again.
                if errno == EINTR && !lock.withLock({ stopped }) { continue }
                close(fd)
                return
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            let accepted = lock.withLock { () -> Bool in
                if stopped { return false }
                open.insert(client)
                return true
            }
            guard accepted else {
                close(client)
                continue
            }
            detachedThread { [self] in
                self.serve(client)
                lock.withLock { _ = open.remove(client) }
                close(client)
            }
        }
    }

    private func serve(_ client: Int32) {
        var buffer = [UInt8](repeating: 0, count: 65536)
        var head = Data()
        while !String(decoding: head, as: UTF8.self).contains("\r\n\r\n") {
            let n = recv(client, &buffer, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            head.append(contentsOf: buffer[0..<n])
        }
        // The body too, as far as Content-Length says (up to 4 MiB), so that a responder can
        // echo it as a hostile server would.
        if let headEnd = head.range(of: Data("\r\n\r\n".utf8)) {
            let headText = String(decoding: head[..<headEnd.lowerBound], as: UTF8.self).lowercased()
            let declared = headText.split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
                .flatMap { Int($0.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) } ?? 0
            let wanted = min(declared, 4 * 1024 * 1024)
            while head.count - headEnd.upperBound < wanted {
                let n = recv(client, &buffer, buffer.count, 0)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                head.append(contentsOf: buffer[0..<n])
            }
        }
        let text = String(decoding: head, as: UTF8.self)
        lock.withLock { requests.append(text) }
        guard let answer = respond(text) else {
            // Silence: hold the connection until the client gives up or the server stops.
            while true {
                let n = recv(client, &buffer, buffer.count, 0)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return }
            }
        }
        answer.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = send(client, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                offset += n
            }
        }
        shutdown(client, Int32(SHUT_WR))
    }

    /// An HTTP/1.1 answer with a body and Connection: close.
    public static func answer(status: Int, headers: [(String, String)] = [], body: Data = Data()) -> Data {
        var text = "HTTP/1.1 \(status) X\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
        for (k, v) in headers { text += "\(k): \(v)\r\n" }
        var data = Data((text + "\r\n").utf8)
        data.append(body)
        return data
    }
}
