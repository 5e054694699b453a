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
}

/// Small URL helpers that do not need a full parse.
public enum URLParts {
    public static func withoutQuery(_ url: String) -> String {
        if let i = url.firstIndex(where: { $0 == "?" || $0 == "#" }) { return String(url[..<i]) }
        return url
    }

    /// Scheme, host (brackets removed) and port of an absolute URL.
    public static func origin(_ url: String) -> (scheme: String, host: String, port: Int)? {
        guard let c = URLComponents(string: url), let scheme = c.scheme?.lowercased(), let host = c.host, !host.isEmpty else { return nil }
        let port = c.port ?? (scheme == "https" ? 443 : 80)
        var bare = host
        if bare.hasPrefix("[") && bare.hasSuffix("]") { bare = String(bare.dropFirst().dropLast()) }
        return (scheme, bare, port)
    }

    /// Percent-encodes one path segment (everything but unreserved characters).
    public static func encodeSegment(_ segment: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        // CharacterSet.alphanumerics includes non-ASCII letters; encode those too.
        var result = ""
        for scalar in segment.unicodeScalars {
            if scalar.isASCII && allowed.contains(scalar) {
                result.unicodeScalars.append(scalar)
            } else {
                for byte in String(scalar).utf8 { result += String(format: "%%%02X", byte) }
            }
        }
        return result
    }
}
