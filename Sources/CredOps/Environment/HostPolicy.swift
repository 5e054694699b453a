/// Which hosts a run may send credentials to, when that is restricted.
///
/// In a pull-request build the environment files are part of what is being reviewed: a pull
/// request that changes `url:` would have plan send the environment's token to a host of the
/// author's choosing before anyone reviewed it. With a policy, every environment's URL must
/// name an allowed host (and port, when the entry gives one) before anything is sent; the list
/// comes from somewhere the pull request cannot change (a CI variable, the default branch).
public struct HostPolicy: Sendable, Equatable {
    /// One allowed `host` or `host:port`.
    public struct Entry: Sendable, Equatable, CustomStringConvertible {
        public var host: String
        /// Nil allows the scheme's own port only (443 for https, 80 for http).
        public var port: Int?

        public var description: String {
            let h = host.contains(":") ? "[\(host)]" : host
            return port.map { "\(h):\($0)" } ?? h
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    /// Parses `host`, `host:port`, `[v6]` and `[v6]:port` items, separated by commas, white
    /// space or new lines; `#` starts a comment to the end of its line.
    /// - Returns: the policy, or the first item that is not a host.
    public static func parse(_ text: String) -> Result<HostPolicy, ParseError> {
        var entries: [Entry] = []
        for line in text.split(whereSeparator: { $0 == "\n" || $0 == "\r" }) {
            let content = line.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
            for item in content.split(whereSeparator: { $0 == "," || $0 == " " || $0 == "\t" }) {
                guard let entry = parseEntry(String(item)) else { return .failure(ParseError(item: String(item))) }
                entries.append(entry)
            }
        }
        return .success(HostPolicy(entries: entries))
    }

    /// An item that is not `host[:port]`.
    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var item: String
        public var description: String { "'\(TextSafety.escaped(item))' is not a host or host:port" }
    }

    static func parseEntry(_ item: String) -> Entry? {
        var host = item.lowercased()
        var port: Int?
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { return nil }
            let rest = host[host.index(after: close)...]
            if rest.hasPrefix(":") {
                guard let p = Int(rest.dropFirst()), (1...65535).contains(p) else { return nil }
                port = p
            } else if !rest.isEmpty { return nil }
            host = String(host[host.index(after: host.startIndex)..<close])
        } else if let colon = host.lastIndex(of: ":"), !host[..<colon].contains(":") {
            guard let p = Int(host[host.index(after: colon)...]), (1...65535).contains(p) else { return nil }
            port = p
            host = String(host[..<colon])
        }
        guard !host.isEmpty, host.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-.:_".unicodeScalars.contains($0)) }) else {
            return nil
        }
        return Entry(host: host, port: port)
    }

    /// Why `environment` may not be sent credentials under this policy, or nil when it may.
    /// The built-in sandbox (`sandbox://`) runs in credops' own process and is always allowed.
    public func violation(for environment: EnvironmentConfig) -> String? {
        guard case .url(let url) = environment.endpoint else { return nil }
        guard let origin = URLParts.origin(url) else { return "\(environment.name): the url cannot be read" }
        // Settings a pull request could add to read or divert what is sent, refused outright.
        if environment.allowInsecureHTTP {
            return "\(environment.name): allowInsecureHTTP is on (\(environment.file)); with pinned hosts, credentials go over TLS (or to loopback) only"
        }
        if environment.tls.insecureSkipVerify {
            return "\(environment.name): tls.insecureSkipVerify is on (\(environment.file)); with pinned hosts, the server's certificate is always checked"
        }
        let host = origin.host.lowercased()
        let defaultPort = origin.scheme == "https" ? 443 : 80
        if entries.contains(where: { $0.host == host && ($0.port ?? defaultPort) == origin.port }) { return nil }
        let shown = host.contains(":") ? "[\(host)]:\(origin.port)" : "\(host):\(origin.port)"
        return "\(environment.name): \(TextSafety.escaped(shown)) (from \(environment.file)) is not an allowed host; nothing is sent to it"
    }

    /// The CI variable that says this build is for a pull (merge) request, with its value;
    /// nil outside one. GitHub Actions, GitLab CI (merge requests and external pull requests),
    /// Bitbucket, Buildkite, Azure Pipelines, Jenkins (branch sources), CircleCI, Travis CI,
    /// Drone and Woodpecker are recognised; elsewhere, pass --allowed-hosts in pull requests.
    public static func pullRequestBuild(_ environment: [String: String]) -> String? {
        if let event = environment["GITHUB_EVENT_NAME"], event.hasPrefix("pull_request") { return "GITHUB_EVENT_NAME=\(TextSafety.escaped(event))" }
        if let event = environment["CI_PIPELINE_EVENT"], event.hasPrefix("pull_request") { return "CI_PIPELINE_EVENT=\(TextSafety.escaped(event))" }
        if let event = environment["DRONE_BUILD_EVENT"], event == "pull_request" { return "DRONE_BUILD_EVENT=pull_request" }
        for name in ["GITHUB_BASE_REF", "CI_MERGE_REQUEST_IID", "CI_EXTERNAL_PULL_REQUEST_IID", "BITBUCKET_PR_ID",
                     "SYSTEM_PULLREQUEST_PULLREQUESTID", "CHANGE_ID", "CIRCLE_PULL_REQUEST", "DRONE_PULL_REQUEST", "CI_COMMIT_PULL_REQUEST"] {
            if let value = environment[name], !value.isEmpty { return "\(name)=\(TextSafety.escaped(value))" }
        }
        for name in ["BUILDKITE_PULL_REQUEST", "TRAVIS_PULL_REQUEST"] {
            if let value = environment[name], !value.isEmpty, value != "false" { return "\(name)=\(TextSafety.escaped(value))" }
        }
        return nil
    }
}
