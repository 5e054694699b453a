import Foundation

public enum HTTPMethod: String, Sendable, Hashable, Codable {
    case get = "GET", post = "POST", put = "PUT", patch = "PATCH", delete = "DELETE"

    /// Repeating the request leaves the server as one request would (POST creates do not).
    public var isIdempotent: Bool { self != .post }
}

/// Header fields in order; names compared without regard to case.
public struct HTTPHeaders: Sendable, Hashable, Sequence {
    public private(set) var fields: [(name: String, value: String)] = []

    public init(_ fields: [(String, String)] = []) {
        self.fields = fields.map { (name: $0.0, value: $0.1) }
    }

    public mutating func add(_ name: String, _ value: String) { fields.append((name, value)) }

    public mutating func set(_ name: String, _ value: String) {
        fields.removeAll { $0.name.caseInsensitiveCompare(name) == .orderedSame }
        fields.append((name, value))
    }

    public subscript(name: String) -> String? {
        fields.last { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }

    public func makeIterator() -> IndexingIterator<[(name: String, value: String)]> { fields.makeIterator() }

    public static func == (lhs: HTTPHeaders, rhs: HTTPHeaders) -> Bool {
        lhs.fields.elementsEqual(rhs.fields) { $0.name == $1.name && $0.value == $1.value }
    }

    public func hash(into hasher: inout Hasher) {
        for f in fields { hasher.combine(f.name); hasher.combine(f.value) }
    }

    /// Headers whose values are never shown (in verbose logs or anywhere else).
    public static let sensitiveNames: Set<String> = ["authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"]

    /// The headers with sensitive values replaced, for logs.
    public var redacted: [(name: String, value: String)] {
        fields.map { Self.sensitiveNames.contains($0.name.lowercased()) ? ($0.name, "(redacted)") : $0 }
    }
}

/// One HTTP request. The body is bytes already encoded (JSON or a form).
public struct HTTPRequest: Sendable {
    public var method: HTTPMethod
    public var url: String
    public var headers: HTTPHeaders
    public var body: Data?

    public init(method: HTTPMethod, url: String, headers: HTTPHeaders = HTTPHeaders(), body: Data? = nil) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
    }

    /// `GET https://host/path`: safe to show (no headers, no body, no query).
    public var summary: String { "\(method.rawValue) \(URLParts.withoutQuery(url))" }
}

/// One HTTP answer, whatever its status.
public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: HTTPHeaders
    public var body: Data

    public init(status: Int, headers: HTTPHeaders = HTTPHeaders(), body: Data = Data()) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    public var isSuccess: Bool { (200..<300).contains(status) }

    /// The value of the cookie `name` this answer sets (`Set-Cookie: name=value; ...`), when it
    /// is one credops will send back: 1 to 4096 printable characters without `;` or `,`.
    public func cookie(_ name: String) -> String? {
        let prefix = name + "="
        for field in headers where field.name.lowercased() == "set-cookie" {
            let first = field.value.split(separator: ";", maxSplits: 1).first.map(String.init) ?? ""
            guard first.hasPrefix(prefix) else { continue }
            let value = String(first.dropFirst(prefix.count))
            guard !value.isEmpty, value.utf8.count <= 4096,
                  value.unicodeScalars.allSatisfy({ $0.value > 32 && $0.value < 127 && $0 != ";" && $0 != "," }) else { return nil }
            return value
        }
        return nil
    }
}

/// Small URL helpers that do not need a full parse.
public enum URLParts {
    public static func withoutQuery(_ url: String) -> String {
        if let i = url.firstIndex(where: { $0 == "?" || $0 == "#" }) { return String(url[..<i]) }
        return url
    }

    /// Scheme, host (brackets removed) and port of an absolute URL; nil when it is not one.
    /// A byte-level parse: it runs for every request.
    public static func origin(_ url: String) -> (scheme: String, host: String, port: Int)? {
        let b = Array(url.utf8)
        guard let colon = b.firstIndex(of: UInt8(ascii: ":")), colon > 0, b.count > colon + 2,
              b[colon + 1] == UInt8(ascii: "/"), b[colon + 2] == UInt8(ascii: "/") else { return nil }
        let scheme = String(decoding: b[..<colon], as: UTF8.self).lowercased()
        guard scheme.utf8.allSatisfy({ ($0 >= 97 && $0 <= 122) || ($0 >= 48 && $0 <= 57) || $0 == 43 || $0 == 45 || $0 == 46 }) else { return nil }
        var start = colon + 3
        var end = start
        while end < b.count, b[end] != UInt8(ascii: "/"), b[end] != UInt8(ascii: "?"), b[end] != UInt8(ascii: "#") { end += 1 }
        // Drop any user:password@ part.
        if let at = b[start..<end].lastIndex(of: UInt8(ascii: "@")) { start = at + 1 }
        let authority = b[start..<end]
        var host: ArraySlice<UInt8>
        var portText: ArraySlice<UInt8> = []
        if authority.first == UInt8(ascii: "[") {
            guard let close = authority.firstIndex(of: UInt8(ascii: "]")) else { return nil }
            host = authority[(authority.startIndex + 1)..<close]
            let rest = authority[(close + 1)...]
            if let first = rest.first {
                guard first == UInt8(ascii: ":") else { return nil }
                portText = rest.dropFirst()
            }
        } else if let c = authority.lastIndex(of: UInt8(ascii: ":")) {
            host = authority[..<c]
            portText = authority[(c + 1)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { return nil }
        var port = scheme == "https" ? 443 : 80
        if !portText.isEmpty {
            guard portText.count <= 5, portText.allSatisfy({ $0 >= 48 && $0 <= 57 }), let p = Int(String(decoding: portText, as: UTF8.self)),
                  p > 0, p < 65536 else { return nil }
            port = p
        }
        return (scheme, String(decoding: host, as: UTF8.self), port)
    }

    private static let hexDigits: [UInt8] = Array("0123456789ABCDEF".utf8)

    /// Percent-encodes one path segment: everything but ASCII letters, digits and `-._~`; a
    /// segment that is only dots (`.`, `..`) has them encoded too (`%2E`), so that no client,
    /// proxy or server takes it for "this" or "the parent" directory.
    public static func encodeSegment(_ segment: String) -> String {
        if !segment.isEmpty && segment.utf8.allSatisfy({ $0 == 46 }) {
            return String(repeating: "%2E", count: segment.utf8.count)
        }
        var out: [UInt8] = []
        out.reserveCapacity(segment.utf8.count)
        for byte in segment.utf8 {
            let unreserved = (byte >= 65 && byte <= 90) || (byte >= 97 && byte <= 122) || (byte >= 48 && byte <= 57)
                || byte == 45 || byte == 46 || byte == 95 || byte == 126
            if unreserved {
                out.append(byte)
            } else {
                out += [37, hexDigits[Int(byte >> 4)], hexDigits[Int(byte & 0x0F)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}
