import Foundation

/// Reads one environment file, reporting every problem with its position.
struct EnvironmentParser {
    static let keys = ["name", "provider", "url", "auth", "projects", "concurrency", "timeoutSeconds",
                       "connectTimeoutSeconds", "protected", "tls", "allowInsecureHTTP", "retry", "sandbox"]

    let reader: NodeReader
    let options: LoadOptions
    let directory: String
    let providers: [String]
    /// Each provider's emulator settings (what `sandbox:` may hold).
    var emulatorSettings: [String: [EmulatorSettingSpec]] = [:]
    /// The kinds of auth a provider takes (`bearer`, `basic`, `apiKey`, `oauth2`), where it
    /// says (a provider profile's `auth.allowed`); absent: any.
    var authKinds: [String: [String]] = [:]
    /// The file name without its extension: the environment's name unless `name:` says otherwise.
    let defaultName: String

    func parse(_ root: YAMLNode) -> EnvironmentConfig? {
        guard let top = reader.mapping(root, what: "the environment file") else { return nil }
        reader.rejectUnknownKeys(top, allowed: Self.keys)

        var name = defaultName
        if let node = top["name"], let v = reader.string(node, field: "name") {
            if Self.isValidName(v) { name = v } else {
                reader.error("name must use letters, digits, '-', '_' and '.' only", at: node)
            }
        } else if !Self.isValidName(defaultName) {
            // The file's name is the environment's name: it goes into messages, locks, state
            // keys and suggested commands, so it obeys the same rule.
            reader.error("the file name '\(TextSafety.escaped(defaultName))' is not an environment name (letters, digits, '-', '_' and '.'); rename the file, or give name: NAME", at: root)
        }
        var provider = "apinizer"
        if let node = top["provider"], let v = reader.string(node, field: "provider") {
            if providers.contains(v) { provider = v } else {
                var message = "unknown provider '\(v)'"
                if let s = Suggestion.closest(to: v, among: providers) { message += " (did you mean '\(s)'?)" }
                reader.error(message, at: node)
            }
        }
        var allowInsecureHTTP = false
        if let node = top["allowInsecureHTTP"], let v = reader.bool(node, field: "allowInsecureHTTP") { allowInsecureHTTP = v }

        guard let urlNode = top["url"] else {
            reader.error("missing url: the manager URL (https://...), or sandbox://NAME for the built-in emulator", at: root)
            return nil
        }
        guard let urlText = reader.string(urlNode, field: "url"), let endpoint = parseEndpoint(urlText, node: urlNode, allowInsecureHTTP: allowInsecureHTTP) else {
            return nil
        }

        var config = EnvironmentConfig(name: EnvironmentName(name), file: reader.file, location: reader.location(root),
                                       provider: provider, endpoint: endpoint, endpointLocation: reader.location(urlNode))
        config.allowInsecureHTTP = allowInsecureHTTP

        if let node = top["auth"] {
            config.auth = parseAuth(node)
            if let auth = config.auth, let allowed = authKinds[provider], !allowed.contains(auth.kind) {
                reader.error("provider \(provider) takes auth \(allowed.joined(separator: " or ")) (its profile's auth.allowed), found \(auth.kind)", at: node)
            }
        } else if case .url = endpoint {
            reader.error("missing auth: \(Self.authKinds)", at: root)
        }
        if let node = top["projects"], let map = reader.mapping(node, what: "projects") {
            for entry in map.entries {
                if let problem = TextSafety.nameProblem(entry.key) {
                    reader.error("projects: the project name \(problem)", at: entry.keyNode)
                } else if let v = reader.string(entry.value, field: "projects.\(entry.key)") {
                    if let problem = TextSafety.nameProblem(v) {
                        reader.error("projects.\(TextSafety.escaped(entry.key)) \(problem); it must name a project", at: entry.value)
                    } else {
                        config.projects[ProjectName(entry.key)] = ProjectName(v)
                    }
                }
            }
        }
        if let node = top["concurrency"], let v = reader.integer(node, field: "concurrency", range: 1...256) { config.concurrency = v }
        if let node = top["timeoutSeconds"], let v = reader.integer(node, field: "timeoutSeconds", range: 1...3600) { config.timeoutSeconds = v }
        if let node = top["connectTimeoutSeconds"], let v = reader.integer(node, field: "connectTimeoutSeconds", range: 1...600) { config.connectTimeoutSeconds = v }
        if let node = top["protected"], let v = reader.bool(node, field: "protected") { config.isProtected = v }
        if let node = top["tls"] { config.tls = parseTLS(node) }
        if config.tls.insecureSkipVerify {
            reader.warning("tls.insecureSkipVerify is on: the server's certificate is not checked", at: top.entry("tls")!.keyNode)
        }
        if let node = top["retry"] { config.retry = parseRetry(node) }
        if let node = top["sandbox"] {
            if case .sandbox = endpoint {
                config.emulator = parseEmulatorSettings(node, specs: emulatorSettings[provider] ?? [])
            } else {
                reader.error("sandbox: seed data applies only to url: sandbox://NAME", at: node)
            }
        }
        return config
    }

    /// Letters, digits, `-`, `_` and `.`, but not `.` or `..`: names become file and path
    /// segments (sandbox data, delivered secrets).
    static func isValidName(_ s: String) -> Bool {
        !s.isEmpty && s != "." && s != ".." && s.count <= 100 && s.unicodeScalars.allSatisfy {
            $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "-_.".unicodeScalars.contains($0))
        }
    }

    private func parseEndpoint(_ text: String, node: YAMLNode, allowInsecureHTTP: Bool) -> Endpoint? {
        if text.hasPrefix("sandbox://") {
            let name = String(text.dropFirst("sandbox://".count))
            guard Self.isValidName(name) else {
                reader.error("sandbox://NAME needs a name of letters, digits, '-', '_' and '.'", at: node)
                return nil
            }
            return .sandbox(name)
        }
        guard let components = URLComponents(string: text), let scheme = components.scheme?.lowercased(),
              let host = components.host, !host.isEmpty else {
            reader.error("url must be an absolute http(s) URL such as https://apinizer.example.com, or sandbox://NAME", at: node)
            return nil
        }
        guard scheme == "https" || scheme == "http" else {
            reader.error("url must use https (or http to a loopback address), found \(scheme)://", at: node)
            return nil
        }
        if components.user != nil || components.password != nil {
            reader.error("url must not hold a user or password; put credentials under auth:", at: node)
            return nil
        }
        if components.query != nil || components.fragment != nil {
            reader.error("url must not have a query or fragment; credops appends /apiops/... itself", at: node)
            return nil
        }
        if scheme == "http" && !allowInsecureHTTP && !HostAddress.isLoopback(host) {
            reader.error("http:// to a non-loopback host; use https, or set allowInsecureHTTP: true", at: node)
            return nil
        }
        var normalized = text
        while normalized.hasSuffix("/") { normalized.removeLast() }
        return .url(normalized)
    }

    private func parseAuth(_ node: YAMLNode) -> AuthConfig? {
        guard let map = reader.mapping(node, what: "auth") else { return nil }
        reader.rejectUnknownKeys(map, allowed: ["bearer", "oauth2", "basic", "apiKey"])
        let secrets = SecretReferenceParser(reader: reader, options: options, directory: directory)
        let given = ["bearer", "oauth2", "basic", "apiKey"].filter { map[$0] != nil }
        if given.count > 1 {
            reader.error("auth takes one of bearer, oauth2, basic or apiKey, found \(given.joined(separator: " and "))", at: node)
            return nil
        }
        if let key = map["apiKey"] {
            return secrets.parse(key, field: "auth.apiKey", literalAllowed: true).map(AuthConfig.apiKey)
        }
        if let basic = map["basic"], let basicMap = reader.mapping(basic, what: "auth.basic") {
            reader.rejectUnknownKeys(basicMap, allowed: ["username", "password"])
            var username: String?
            if let node = basicMap["username"], let text = reader.string(node, field: "auth.basic.username") {
                // RFC 7617: the user name cannot hold a colon (it ends at the first one).
                if text.contains(":") || text.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 }) {
                    reader.error("auth.basic.username cannot hold ':' or control characters", at: node)
                } else {
                    username = text
                }
            } else if basicMap["username"] == nil {
                reader.error("auth.basic needs username", at: basic)
            }
            var password: SecretReference?
            if let node = basicMap["password"] {
                password = secrets.parse(node, field: "auth.basic.password", literalAllowed: true)
            } else {
                reader.error("auth.basic needs password", at: basic)
            }
            if let username, let password { return .basic(username: username, password: password) }
            return nil
        }
        if let bearer = map["bearer"] {
            return secrets.parse(bearer, field: "auth.bearer", literalAllowed: true).map(AuthConfig.bearer)
        }
        if let oauth = map["oauth2"], let oauthMap = reader.mapping(oauth, what: "auth.oauth2") {
            reader.rejectUnknownKeys(oauthMap, allowed: ["clientId", "clientSecret", "tokenPath", "body"])
            var tokenPath: String?
            if let node = oauthMap["tokenPath"], let text = reader.string(node, field: "auth.oauth2.tokenPath") {
                // A path on the environment's server, never a URL: credentials go nowhere else.
                if !text.hasPrefix("/") || text.hasPrefix("//") || text.contains("://") || text.contains("..")
                    || text.unicodeScalars.contains(where: { $0.value <= 32 || $0.value == 127 || $0 == "?" || $0 == "#" || $0 == "@" || $0 == "\\" }) {
                    reader.error("auth.oauth2.tokenPath must be a path on the environment's server, like /v1/authorization/token", at: node)
                } else {
                    tokenPath = text
                }
            }
            var body: TokenBodyFormat?
            if let node = oauthMap["body"], let text = reader.string(node, field: "auth.oauth2.body") {
                if let format = TokenBodyFormat(rawValue: text) { body = format } else {
                    reader.error("auth.oauth2.body must be form or json, found '\(TextSafety.escaped(String(text.prefix(40))))'", at: node)
                }
            }
            var clientID: SecretReference?
            if let idNode = oauthMap["clientId"] {
                // A client id is a login name, not a secret: plain text is fine here.
                if case .scalar = idNode.content, let text = reader.string(idNode, field: "auth.oauth2.clientId") {
                    clientID = SecretReference(.literal(Secret(text)), at: reader.location(idNode))
                } else if case .mapping = idNode.content {
                    clientID = secrets.parse(idNode, field: "auth.oauth2.clientId", literalAllowed: false)
                }
            } else {
                reader.error("auth.oauth2 needs clientId", at: oauth)
            }
            var clientSecret: SecretReference?
            if let secretNode = oauthMap["clientSecret"] {
                clientSecret = secrets.parse(secretNode, field: "auth.oauth2.clientSecret", literalAllowed: true)
            } else {
                reader.error("auth.oauth2 needs clientSecret", at: oauth)
            }
            if let clientID, let clientSecret { return .oauth2(clientID: clientID, clientSecret: clientSecret, tokenPath: tokenPath, body: body) }
            return nil
        }
        reader.error("auth needs \(Self.authKinds)", at: node)
        return nil
    }

    static let authKinds = "bearer: { fromEnv: NAME }, oauth2: { clientId: ..., clientSecret: ... }, basic: { username: ..., password: ... } or apiKey: { fromEnv: NAME }"

    private func parseTLS(_ node: YAMLNode) -> TLSSettings {
        var tls = TLSSettings()
        guard let map = reader.mapping(node, what: "tls") else { return tls }
        reader.rejectUnknownKeys(map, allowed: ["caFile", "certFile", "keyFile", "insecureSkipVerify"])
        func file(_ key: String) -> String? {
            guard let n = map[key], let path = reader.string(n, field: "tls.\(key)") else { return nil }
            let resolved = ((path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)) as NSString).standardizingPath
            if !FileManager.default.isReadableFile(atPath: resolved) {
                reader.error("tls.\(key) \(path) does not exist or cannot be read", at: n)
            }
            return resolved
        }
        tls.caFile = file("caFile")
        tls.certFile = file("certFile")
        tls.keyFile = file("keyFile")
        if (tls.certFile == nil) != (tls.keyFile == nil), map["certFile"] != nil || map["keyFile"] != nil {
            reader.error("tls.certFile and tls.keyFile go together", at: node)
        }
        if let n = map["insecureSkipVerify"], let v = reader.bool(n, field: "tls.insecureSkipVerify") { tls.insecureSkipVerify = v }
        return tls
    }

    private func parseRetry(_ node: YAMLNode) -> RetrySettings {
        var retry = RetrySettings()
        guard let map = reader.mapping(node, what: "retry") else { return retry }
        reader.rejectUnknownKeys(map, allowed: ["maxRetries", "initialBackoffMilliseconds", "maxBackoffMilliseconds", "retryAfterCapSeconds"])
        if let n = map["maxRetries"], let v = reader.integer(n, field: "retry.maxRetries", range: 0...10) { retry.maxRetries = v }
        if let n = map["initialBackoffMilliseconds"], let v = reader.integer(n, field: "retry.initialBackoffMilliseconds", range: 1...60_000) { retry.initialBackoffMilliseconds = v }
        if let n = map["maxBackoffMilliseconds"], let v = reader.integer(n, field: "retry.maxBackoffMilliseconds", range: 1...600_000) { retry.maxBackoffMilliseconds = v }
        if let n = map["retryAfterCapSeconds"], let v = reader.integer(n, field: "retry.retryAfterCapSeconds", range: 0...3600) { retry.retryAfterCapSeconds = v }
        return retry
    }

    /// Reads `sandbox:` by the provider's declared settings: only its keys, each of its kind.
    private func parseEmulatorSettings(_ node: YAMLNode, specs: [EmulatorSettingSpec]) -> EmulatorSettings? {
        guard let map = reader.mapping(node, what: "sandbox") else { return nil }
        reader.rejectUnknownKeys(map, allowed: specs.map(\.name))
        var settings = EmulatorSettings()
        for spec in specs {
            guard let n = map[spec.name] else { continue }
            let field = "sandbox.\(spec.name)"
            switch spec.kind {
            case .strings:
                if let list = reader.stringList(n, field: field) { settings.values[spec.name] = .strings(list.map(\.value)) }
            case .stringMap:
                guard let entries = reader.mapping(n, what: field) else { continue }
                var values: [String: String] = [:]
                for entry in entries.entries {
                    if let v = reader.string(entry.value, field: "\(field).\(entry.key)") { values[entry.key] = v }
                }
                settings.values[spec.name] = .stringMap(values)
            case .integer(let range):
                if let v = reader.integer(n, field: field, range: range) { settings.values[spec.name] = .integer(v) }
            case .bool:
                if let v = reader.bool(n, field: field) { settings.values[spec.name] = .bool(v) }
            }
        }
        return settings
    }
}

/// Host name checks shared by the loader and the HTTP client.
public enum HostAddress {
    /// True for `localhost`, 127.0.0.0/8 and ::1 (with or without brackets).
    public static func isLoopback(_ host: String) -> Bool {
        var h = host.lowercased()
        if h.hasPrefix("[") && h.hasSuffix("]") { h = String(h.dropFirst().dropLast()) }
        if h == "localhost" || h.hasSuffix(".localhost") { return true }
        guard let ip = IPRange.parse(h) else { return false }
        switch ip.family {
        case .v4: return ip.bytes[0] == 127
        case .v6: return ip.bytes == [UInt8](repeating: 0, count: 15) + [1]
        }
    }
}
