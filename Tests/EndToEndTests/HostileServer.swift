import CredOpsTestSupport
import Foundation

/// An Apinizer look-alike that does everything a hostile or broken server might: it lists
/// credentials named `..`, `.`, with a NUL or with terminal escapes, puts escapes and the
/// caller's token into live values, and answers every write with an error that echoes the
/// request (body and token) raw, percent-, JSON-, HTML- and base64-encoded, in its code, its
/// description, a validation field and a gateway name.
final class HostileServer: @unchecked Sendable {
    let raw: RawHTTPServer

    init() throws {
        raw = try RawHTTPServer { request in HostileServer.answer(request) }
    }

    var url: String { raw.url }
    var requests: [String] { raw.received }
    func stop() { raw.stop() }

    /// The request lines (`METHOD PATH`).
    var requestLines: [String] {
        requests.map { String($0.prefix { $0 != "\r" }.split(separator: " ").prefix(2).joined(separator: " ")) }
    }

    static let escape = "\u{1B}]0;owned\u{07}\u{1B}[2J\u{1B}[1A\u{1B}[2K\u{9B}31m"

    static func answer(_ request: String) -> Data {
        let head = request.components(separatedBy: "\r\n\r\n").first ?? ""
        let body = request.components(separatedBy: "\r\n\r\n").dropFirst().joined(separator: "\r\n\r\n")
        let line = head.prefix { $0 != "\r" }.split(separator: " ")
        let method = line.first.map(String.init) ?? ""
        let path = line.count > 1 ? String(line[1]) : ""
        let token = head.components(separatedBy: "\r\n").first { $0.lowercased().hasPrefix("authorization:") }
            .map { String($0.dropFirst("authorization:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
        func json(_ object: Any) -> Data { (try? JSONSerialization.data(withJSONObject: object)) ?? Data() }

        if method == "GET" && path.hasSuffix("/access/") {
            return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")],
                                        body: json(["success": true, "resultList": [["name": "gw\(escape)", "type": "API_PROXY"],
                                                                                    ["name": "proxy-\(token)", "type": "API_PROXY"]]]))
        }
        if method == "GET" {
            let live: [[String: Any]] = [
                ["username": "..", "email": "a@example.com", "fullName": "Dots"],
                ["username": ".", "email": "b@example.com", "fullName": "Dot"],
                ["username": "svc\u{0}evil", "email": "c@example.com", "fullName": "Nul"],
                ["username": "esc\(escape)", "email": "d@example.com", "fullName": "Escape"],
                ["username": "victim", "email": "v@example.com", "fullName": "Victim \(escape)",
                 "description": "token \(token) \(escape)", "roleNameList": ["API_USER"]],
            ]
            return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")],
                                        body: json(["success": true, "resultList": live]))
        }
        // A write: find the secret the request carried and echo it every way there is.
        let sent = (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
        let password = sent?["password"] as? String ?? ""
        let percent = password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let html = password.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
        let echo = "request \(method) \(path) body \(body) token \(token) pct \(percent) html \(html) b64 \(Data(password.utf8).base64EncodedString()) \(escape)"
        if method == "PATCH" {
            // Stored, but a gateway "failed": its name and message echo the request.
            return RawHTTPServer.answer(status: 200, headers: [("Content-Type", "application/json")], body: json([
                "success": true,
                "deploymentResult": ["success": false, "environmentResults": [
                    ["environmentName": "gw-\(password)-\(escape)", "success": false, "message": echo],
                ]],
            ]))
        }
        return RawHTTPServer.answer(status: 400, headers: [("Content-Type", "application/json"), ("Location", "https://x/\(password)")], body: json([
            "error": "\(password)\(escape)",
            "error_description": echo,
            "validation_errors": [["field": password, "message": "\(percent) \(escape)"], ["field": token, "message": html]],
        ]))
    }
}
