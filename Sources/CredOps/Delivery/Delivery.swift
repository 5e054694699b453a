import Foundation

/// Where a generated secret goes, as a manifest declares it (`deliver:`), placeholders
/// (`{environment}`, `{project}`, `{name}`) not yet filled.
public enum DeliveryTemplate: Sendable, Equatable {
    /// `file: PATH`: `.env` or `.json` by extension. `directory` is the manifest's directory,
    /// which a relative path is relative to (like `fromFile`); `roots` are the directories the
    /// file must stay inside, symbolic links resolved (checked again when it is written).
    case file(path: String, directory: String, roots: [String])
    /// `command: [ARGV...]`: no shell; the payload on stdin; exit 0 within `timeoutSeconds`.
    /// `argv[0]` is a name looked up on PATH, or an absolute path. It runs in `directory`, the
    /// manifest's, with only the basic variables of credops' environment and those `environment`
    /// names (`env: [GH_TOKEN]`).
    case command(argv: [String], timeoutSeconds: Int, directory: String, environment: [String] = [])

    /// The placeholders a template may use.
    public static let placeholders = ["environment", "project", "name"]

    /// Fills the placeholders of `text`. Values are never re-scanned, so a name holding `{x}`
    /// stays as it is.
    public static func fill(_ text: String, _ values: [String: String]) -> String {
        var out = ""
        var rest = Substring(text)
        while let open = rest.firstIndex(of: "{") {
            out += rest[..<open]
            guard let close = rest[open...].firstIndex(of: "}") else { break }
            let name = String(rest[rest.index(after: open)..<close])
            out += values[name] ?? String(rest[open...close])
            rest = rest[rest.index(after: close)...]
        }
        return out + rest
    }

    /// The names between braces in `text`, and whether every brace is closed.
    public static func placeholderNames(in text: String) -> (names: [String], balanced: Bool) {
        var names: [String] = []
        var rest = Substring(text)
        while let open = rest.firstIndex(where: { $0 == "{" || $0 == "}" }) {
            guard rest[open] == "{", let close = rest[open...].firstIndex(of: "}") else { return (names, false) }
            let name = rest[rest.index(after: open)..<close]
            if name.contains("{") { return (names, false) }
            names.append(String(name))
            rest = rest[rest.index(after: close)...]
        }
        return (names, true)
    }

    /// This template for one credential in one environment.
    public func resolve(environment: EnvironmentName, project: ProjectName, name: CredentialKey) -> Delivery {
        let values = ["environment": environment.rawValue, "project": project.rawValue, "name": name.rawValue]
        switch self {
        case .file(let path, let directory, let roots):
            let shown = Self.fill(path, values)
            let absolute = shown.hasPrefix("/") ? shown : (directory as NSString).appendingPathComponent(shown)
            let format: Delivery.FileFormat = absolute.lowercased().hasSuffix(".json") ? .json : .env
            return Delivery(sink: .file(path: (absolute as NSString).standardizingPath, format: format, roots: roots), shown: shown)
        case .command(let argv, let timeout, let directory, let environment):
            let filled = argv.map { Self.fill($0, values) }
            let shown = filled.map { $0.isEmpty || $0.contains(where: { $0 == " " || $0 == "'" || $0 == "\"" }) ? "'\($0)'" : $0 }
                .joined(separator: " ")
            return Delivery(sink: .command(argv: filled, timeoutSeconds: timeout, directory: directory, environment: environment), shown: shown)
        }
    }
}

/// A `deliver:` and where it is written.
public struct DeclaredDelivery: Sendable, Equatable {
    public var template: DeliveryTemplate
    public var location: SourceLocation

    public init(_ template: DeliveryTemplate, at location: SourceLocation) {
        self.template = template
        self.location = location
    }
}

/// A delivery for one credential in one environment: what a plan shows and apply does.
public struct Delivery: Sendable, Codable, Hashable {
    public enum FileFormat: String, Sendable, Codable, Hashable {
        /// `CLIENT_ID=...` lines.
        case env
        /// One JSON object.
        case json
    }

    /// Boxed (`indirect`): every change and desired credential holds an optional delivery,
    /// and most have none; inline, its largest case made each of them 32 bytes larger.
    public indirect enum Sink: Sendable, Codable, Hashable {
        /// An absolute path, which must resolve (links followed) inside one of `roots`.
        case file(path: String, format: FileFormat, roots: [String])
        /// Runs in `directory` (the manifest's) with the basic variables and those `environment` names.
        case command(argv: [String], timeoutSeconds: Int, directory: String, environment: [String] = [])
    }

    public var sink: Sink
    /// For people: the path as declared with its placeholders filled, or the command line.
    public var shown: String
    /// How long a replaced credential stays after its successor's secret is delivered
    /// (`overlap:`), so that consumers that read the sink late still hold a valid secret.
    public var overlapSeconds: Int
    /// Set when credops makes the secret itself (`password: { generate: ... }`): its length.
    /// nil: the server generates it.
    public var secretLength: Int?

    public init(sink: Sink, shown: String, overlapSeconds: Int = 0, secretLength: Int? = nil) {
        self.secretLength = secretLength
        self.sink = sink
        self.shown = shown
        self.overlapSeconds = overlapSeconds
    }
}

/// What a sink receives: the credential's public values (`client_id`, its server id) and its
/// generated secrets, plus which credential it is. The secrets are revealed only into the
/// file or the command's stdin.
public struct DeliveryPayload: Sendable {
    public var values: [String: String]
    public var secrets: [String: Secret]

    public init(values: [String: String], secrets: [String: Secret]) {
        self.values = values
        self.secrets = secrets
    }

    /// One JSON object, keys sorted. The only place the secrets leave their `Secret`s.
    func json() -> Data {
        var object: [String: String] = values
        for (k, v) in secrets { object[k] = v.reveal() }
        var data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        data.append(0x0A)
        return data
    }

    /// `KEY=value` lines (keys upper-cased, sorted): values that need it in double quotes with
    /// `\` and `"` escaped; others bare, which every `.env` reader (docker's too) takes as is.
    func env() -> Data {
        var all: [(String, String)] = values.map { ($0.key, $0.value) }
        for (k, v) in secrets { all.append((k, v.reveal())) }
        var text = ""
        for (key, value) in all.sorted(by: { $0.0 < $1.0 }) {
            let name = String(key.uppercased().map { $0.isASCII && ($0.isLetter || $0.isNumber) ? $0 : "_" })
            let bare = value.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.:/+=@,".unicodeScalars.contains($0)) }
            if bare {
                text += "\(name)=\(value)\n"
            } else {
                // Double quotes as shells and dotenv readers take them: `\`, `"`, `$` and a
                // backtick escaped (a shell that sources the file expands none of them), line
                // breaks as `\n`/`\r`.
                var escaped = ""
                for c in value.unicodeScalars {
                    switch c {
                    case "\\", "\"", "$", "`": escaped += "\\" + String(c)
                    case "\n": escaped += "\\n"
                    case "\r": escaped += "\\r"
                    default: escaped.unicodeScalars.append(c)
                    }
                }
                text += "\(name)=\"\(escaped)\"\n"
            }
        }
        return Data(text.utf8)
    }
}

/// Durations as manifests write them.
public enum DurationText {
    /// `90d`, `24h`, `30m`, `45s`: the largest unit that divides `seconds`.
    public static func short(_ seconds: Int) -> String {
        if seconds > 0 && seconds % 86_400 == 0 { return "\(seconds / 86_400)d" }
        if seconds > 0 && seconds % 3600 == 0 { return "\(seconds / 3600)h" }
        if seconds > 0 && seconds % 60 == 0 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }

    /// `30 days`, `12 hours`, `1 minute`: for sentences.
    public static func long(_ seconds: Int) -> String {
        let (n, unit) = seconds > 0 && seconds % 86_400 == 0 ? (seconds / 86_400, "day") : seconds > 0 && seconds % 3600 == 0 ? (seconds / 3600, "hour")
            : seconds > 0 && seconds % 60 == 0 ? (seconds / 60, "minute") : (seconds, "second")
        return "\(n) \(unit)\(n == 1 ? "" : "s")"
    }

    /// Seconds in `90d`, `12h`, `30m`, `45s` or a bare number of seconds; nil when `text` is not
    /// such a duration (or is over `Int32.max` units).
    public static func seconds(_ text: String) -> Int? {
        let units: [Character: Int] = ["d": 86_400, "h": 3600, "m": 60, "s": 1]
        var digits = Substring(text)
        var unit = 1
        if let last = text.last, let u = units[last] {
            digits = text.dropLast()
            unit = u
        }
        guard !digits.isEmpty, digits.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(digits), n <= Int(Int32.max) else { return nil }
        return n * unit
    }
}
