import Foundation
import Yams

/// Writes a manifest from an environment's live credentials, so that existing users can start
/// from what their server holds. Passwords cannot be read back: each credential gets a
/// `{ fromEnv: NAME }` placeholder with a suggested variable name.
///
/// The YAML is emitted by libyaml through Yams, never by hand: whatever a live value holds
/// (quotes, `#`, `: `, YAML 1.1 words, U+0085, U+2028, U+2029, control characters), loading
/// the export gives back exactly that value. A hand-written writer once let a description
/// with a Unicode line separator add keys of its own to the manifest.
public struct Exporter: Sendable {
    public let schema: ResourceSchema

    public init(schema: ResourceSchema) { self.schema = schema }

    /// What an export produced.
    public struct Export: Sendable {
        /// The manifest text.
        public var text: String
        /// The variable each exported credential's password is read from, by username (none
        /// where the server generates secrets).
        public var variables: [(CredentialKey, String)]
        /// Every exported credential.
        public var keys: [CredentialKey] = []
        /// Live credentials left out because their names cannot be used safely.
        public var skipped: [UnaddressableCredential]
    }

    /// - Parameters:
    ///   - project: the project as manifests name it (the environment's rename undone).
    ///   - live: the project's live credentials and their grants.
    public func export(environment: EnvironmentName, provider: String, project: ProjectName, live: [Resource],
                       grants: [CredentialKey: [AccessGrant]], schemaComment: String? = nil, now: Date = Date()) -> Export {
        var header: [String] = []
        if let schemaComment { header.append("# yaml-language-server: $schema=\(Self.comment(schemaComment))") }
        header.append("# Exported by credops \(CredOpsVersion.current) from \(Self.comment(environment.rawValue)) (project \(Self.comment(project.rawValue))) on \(Timestamp.format(Int64(now.timeIntervalSince1970 * 1000))).")
        let secret = schema.secretField
        let generated = schema.capabilities.secret == .generated
        switch schema.capabilities.secret {
        case .declaredReadable:
            header.append("# credops never writes a \(secret) into a file, even where the server returns it: set each variable named below, then apply.")
        case .generated:
            header.append("# The server generated these credentials' secrets for whoever made them: credops has none of them. Applied, they are adopted and")
            header.append("# left alone; `credops rotate` replaces one with a new credential whose secret goes to `deliver:` (check the path first).")
        case .declaredWriteOnly, .none:
            header.append("# \(secret.prefix(1).uppercased() + secret.dropFirst())s cannot be read back from the server: set each variable named below, then apply.")
        }

        var variables: [(CredentialKey, String)] = []
        var skipped: [UnaddressableCredential] = []
        var used = Set<String>()
        var credentials: [Node] = []
        var keys: [CredentialKey] = []
        for resource in live.sorted(by: { $0.id < $1.id }) {
            if let problem = TextSafety.nameProblem(resource.id.rawValue) {
                skipped.append(UnaddressableCredential(name: resource.id.rawValue, problem: problem))
                continue
            }
            var pairs: [(Node, Node)] = [(Self.key(schema.identifierField), Self.string(resource.id.rawValue))]
            for spec in schema.declarableFields {
                pairs.append((Self.key(spec.name), Self.node(resource[spec.name] ?? spec.defaultValue)))
            }
            if schema.capabilities.secret.isDeclared {
                let base = Self.variableName(environment: environment, username: resource.id)
                var variable = base
                var n = 2
                while used.contains(variable) {
                    variable = base + "_\(n)"
                    n += 1
                }
                used.insert(variable)
                variables.append((resource.id, variable))
                pairs.append((Self.key(schema.secretField), .mapping(Node.Mapping([(Self.key("fromEnv"), Self.string(variable))], .implicit, .flow))))
            }
            let granted = (grants[resource.id] ?? []).sorted().filter { TextSafety.nameProblem($0.name) == nil }
            let grantNodes = granted.map { g in
                Node.mapping(Node.Mapping([(Self.key("name"), Self.string(g.name)), (Self.key("type"), Self.string(g.type))], .implicit, .flow))
            }
            if schema.hasGrants {
                pairs.append((Self.key(schema.grantsField), .sequence(Node.Sequence(grantNodes, .implicit, granted.isEmpty ? .flow : .block))))
            }
            credentials.append(.mapping(Node.Mapping(pairs, .implicit, .block)))
            keys.append(resource.id)
        }
        let document = Node.mapping(Node.Mapping([
            (Self.key("apiVersion"), Self.string("credops/v1")),
            (Self.key("kind"), Self.string("CredentialSet")),
            (Self.key("provider"), Self.string(provider)),
            (Self.key("project"), Self.string(project.rawValue)),
            (Self.key("environments"), .sequence(Node.Sequence([Self.string(environment.rawValue)], .implicit, .flow))),
        ] + (generated ? [(Self.key("deliver"), .mapping(Node.Mapping([(Self.key("file"), Self.string("secrets/{environment}/{project}/{name}.env"))],
                                                                       .implicit, .flow)))] : [])
          + [(Self.key("credentials"), .sequence(Node.Sequence(credentials, .implicit, credentials.isEmpty ? .flow : .block)))],
        .implicit, .block))
        let body: String
        do {
            body = try Yams.serialize(node: document, indent: 2, width: -1, allowUnicode: true)
        } catch {
            // libyaml refuses only invalid input (a scalar that is not UTF-8, which a Swift
            // String cannot be); say so rather than write a half manifest.
            body = "# credops could not write this manifest: \(Self.comment("\(error)"))\n"
        }
        return Export(text: header.joined(separator: "\n") + "\n" + body, variables: variables, keys: keys, skipped: skipped)
    }

    /// The manifest text and the variables it names (see `export`).
    public func manifest(environment: EnvironmentName, provider: String, project: ProjectName, live: [Resource],
                         grants: [CredentialKey: [AccessGrant]], schemaComment: String? = nil, now: Date = Date())
        -> (text: String, variables: [(CredentialKey, String)]) {
        let export = export(environment: environment, provider: provider, project: project, live: live, grants: grants,
                            schemaComment: schemaComment, now: now)
        return (export.text, export.variables)
    }

    // MARK: Nodes

    static func key(_ name: String) -> Node { .scalar(Node.Scalar(name, .implicit, .plain)) }

    /// A string: plain when every YAML reader, 1.1 or 1.2, reads it back as this string, else
    /// double-quoted (libyaml escapes line breaks of every kind and control characters there).
    static func string(_ text: String) -> Node {
        .scalar(Node.Scalar(text, Tag(.str), plainIsSafe(text) ? .plain : .doubleQuoted))
    }

    static func node(_ value: FieldValue) -> Node {
        switch value {
        case .string(let s): return string(s)
        case .bool(let b): return .scalar(Node.Scalar(b ? "true" : "false", Tag(.bool), .plain))
        case .set(let items): return .sequence(Node.Sequence(items.map(string), .implicit, .flow))
        case .instant(let ms?): return string(Timestamp.format(ms))
        case .instant(nil): return .scalar(Node.Scalar("null", Tag(.null), .plain))
        }
    }

    /// Words and shapes that some YAML reader turns into something other than a string.
    static let reserved: Set<String> = ["true", "false", "yes", "no", "on", "off", "y", "n", "null", "~", ""]

    static func plainIsSafe(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, let last = text.unicodeScalars.last else { return false }
        if reserved.contains(text.lowercased()) { return false }
        // Letters, digits and a few punctuation marks only: anything else is quoted, so no
        // character (a separator, a mark, a control) gets a chance to mean something.
        let allowed = text.unicodeScalars.allSatisfy {
            ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || " -_.@/+()".unicodeScalars.contains($0)))
                || (!$0.isASCII && $0.properties.isAlphabetic)
        }
        guard allowed else { return false }
        if first == " " || last == " " || first == "-" || first == "." || first == "+" || first == "@" { return false }
        // Anything that starts like a number (1e3, 0777, 0x1F, 12:30) might be read as one.
        if first.properties.numericType != nil { return false }
        return true
    }

    /// Text for a comment line: no line break of any kind can end the comment early.
    static func comment(_ text: String) -> String { TextSafety.escaped(text) }

    /// `CREDOPS_STAGING_CHECKOUT_SERVICE_PASSWORD`.
    public static func variableName(environment: EnvironmentName, username: CredentialKey) -> String {
        var name = "CREDOPS_"
        var lastUnderscore = true
        for scalar in "\(environment)_\(username)".uppercased().unicodeScalars {
            if scalar.isASCII && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)) {
                name.unicodeScalars.append(scalar)
                lastUnderscore = false
            } else if !lastUnderscore {
                name += "_"
                lastUnderscore = true
            }
        }
        if name.hasSuffix("_") { name.removeLast() }
        return name + "_PASSWORD"
    }
}
