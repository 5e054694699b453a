import Foundation

/// Maps a request's method and raw path to an operation.
///
/// Routing works on the raw path so that `%2F` inside a username stays inside its segment and
/// a missing trailing slash is noticed: the path is split on `/` first, then each segment is
/// percent-decoded (`+` stays a plus). Every documented path ends with a slash; the same path
/// without it is 404 `not_found` (the token call and `GET /apiops/environments/{project}` take
/// both). A known path with a method it does not serve is 405 `method_not_allowed` with an
/// `Allow` header (Spring's behaviour); anything else is 404 `not_found`.
enum SandboxRouter {
    /// The outcome of matching an API path.
    struct Match: Sendable {
        /// The route as counted in stats: `GET /apiops/projects/{project}/credentials/`.
        var template: String
        var outcome: Result<APIOperation, APIError>
    }

    /// Matches a path under `/apiops/`.
    static func matchAPI(method: String, path rawPath: String) -> Match {
        let unmatched = "\(method) (no route)"
        guard let segments = decodedSegments(rawPath) else {
            return Match(template: unmatched, outcome: .failure(.badRequest("Malformed URL path: invalid percent-encoding")))
        }
        let s = Array(segments.dropFirst())  // the empty segment before the leading slash
        let withSlash = s.last == ""
        let core = withSlash ? Array(s.dropLast()) : s
        guard core.first == "apiops", !core.dropFirst().contains("") else { return notFound(method, rawPath, template: unmatched) }

        func route(_ template: String, _ table: [(String, APIOperation)], slashRequired: Bool = true) -> Match {
            if slashRequired && !withSlash {
                return Match(template: unmatched, outcome: .failure(.notFound(
                    "No endpoint \(method) \(pathOnly(rawPath)) (the documented paths end with a slash)")))
            }
            guard let operation = table.first(where: { $0.0 == method })?.1 else {
                let allowed = table.map(\.0)
                var error = APIError(status: 405, code: "method_not_allowed",
                                     message: "Request method '\(method)' is not supported here; use \(allowed.joined(separator: ", "))")
                error.headers = [("Allow", allowed.joined(separator: ", "))]
                return Match(template: "\(method) \(template)", outcome: .failure(error))
            }
            return Match(template: "\(method) \(template)", outcome: .success(operation))
        }

        switch core.count {
        case 3 where core[1] == "auth" && core[2] == "token":
            return route("/apiops/auth/token", [("POST", .issueToken)], slashRequired: false)
        case 2 where core[1] == "projects":
            return route("/apiops/projects/", [("GET", .listProjects)])
        case 3 where core[1] == "environments":
            return route("/apiops/environments/{project}", [("GET", .listEnvironments(project: core[2]))], slashRequired: false)
        case 4 where core[1] == "projects" && core[3] == "credentials":
            let p = core[2]
            return route("/apiops/projects/{project}/credentials/",
                         [("GET", .listCredentials(project: p)), ("POST", .createCredential(project: p)), ("PUT", .updateCredential(project: p))])
        case 5 where core[1] == "projects" && core[3] == "credentials":
            let p = core[2], u = core[4]
            return route("/apiops/projects/{project}/credentials/{username}/",
                         [("PATCH", .changePassword(project: p, username: u)), ("DELETE", .deleteCredential(project: p, username: u))])
        case 6 where core[1] == "projects" && core[3] == "credentials" && core[5] == "access":
            let p = core[2], u = core[4]
            return route("/apiops/projects/{project}/credentials/{username}/access/",
                         [("GET", .listAccess(project: p, username: u)), ("PUT", .grantAccess(project: p, username: u)),
                          ("DELETE", .revokeAccess(project: p, username: u))])
        default:
            return notFound(method, rawPath, template: unmatched)
        }
    }

    /// Matches a path under `/__sandbox/` (the trailing slash is optional there).
    static func matchAdmin(method: String, path rawPath: String) -> Result<AdminOperation, APIError> {
        guard var s = decodedSegments(rawPath)?.dropFirst().map({ $0 }) else {
            return .failure(.badRequest("Malformed URL path: invalid percent-encoding"))
        }
        if s.last == "" { s.removeLast() }
        guard s.count == 2, s[0] == "__sandbox" else { return .failure(.notFound("No endpoint \(method) \(pathOnly(rawPath))")) }
        let table: [(String, AdminOperation)]
        switch s[1] {
        case "dump": table = [("GET", .dump)]
        case "stats": table = [("GET", .stats), ("DELETE", .resetStats)]
        case "seed": table = [("POST", .seed)]
        case "reset": table = [("POST", .reset)]
        case "faults": table = [("GET", .faults), ("PUT", .setFaults)]
        default: return .failure(.notFound("No endpoint \(method) \(pathOnly(rawPath))"))
        }
        guard let operation = table.first(where: { $0.0 == method })?.1 else {
            let allowed = table.map(\.0).joined(separator: ", ")
            var error = APIError(status: 405, code: "method_not_allowed", message: "Request method '\(method)' is not supported here; use \(allowed)")
            error.headers = [("Allow", allowed)]
            return .failure(error)
        }
        return .success(operation)
    }

    /// The path without its query or fragment.
    static func pathOnly(_ rawPath: String) -> String {
        if let index = rawPath.firstIndex(where: { $0 == "?" || $0 == "#" }) { return String(rawPath[..<index]) }
        return rawPath
    }

    /// The path's segments, percent-decoded; nil when a segment's encoding is invalid.
    static func decodedSegments(_ rawPath: String) -> [String]? {
        var result: [String] = []
        for segment in pathOnly(rawPath).split(separator: "/", omittingEmptySubsequences: false) {
            guard let decoded = percentDecode(segment) else { return nil }
            result.append(decoded)
        }
        return result
    }

    /// `%XX` sequences as UTF-8; nil for a malformed escape or invalid UTF-8.
    static func percentDecode(_ text: Substring) -> String? {
        guard text.contains("%") else { return String(text) }
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
                bytes.append(high << 4 | low)
            } else {
                bytes.append(byte)
            }
        }
        return String(bytes: bytes, encoding: .utf8)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    private static func notFound(_ method: String, _ rawPath: String, template: String) -> Match {
        Match(template: template, outcome: .failure(.notFound("No endpoint \(method) \(pathOnly(rawPath))")))
    }
}
