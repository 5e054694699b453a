import Foundation

/// Writes a manifest from an environment's live credentials, so that existing users can start
/// from what their server holds. Passwords cannot be read back: each credential gets a
/// `{ fromEnv: NAME }` placeholder with a suggested variable name.
public struct Exporter: Sendable {
    public let schema: ResourceSchema

    public init(schema: ResourceSchema) { self.schema = schema }

    /// - Parameters:
    ///   - project: the project as manifests name it (the environment's rename undone).
    ///   - live: the project's live credentials and their grants.
    /// - Returns: the manifest text and the variables it names, by username.
    public func manifest(environment: EnvironmentName, provider: String, project: ProjectName, live: [Resource],
                         grants: [Username: [AccessGrant]], schemaComment: String? = nil, now: Date = Date())
        -> (text: String, variables: [(Username, String)]) {
        var lines: [String] = []
        if let schemaComment { lines.append("# yaml-language-server: $schema=\(schemaComment)") }
        lines.append("# Exported by credops \(CredOpsVersion.current) from \(environment) (project \(project)) on \(Timestamp.format(Int64(now.timeIntervalSince1970 * 1000))).")
        lines.append("# Passwords cannot be read back from the server: set each variable named below, then apply.")
        lines += ["apiVersion: credops/v1", "kind: CredentialSet", "provider: \(YAMLWriter.scalar(provider))",
                  "project: \(YAMLWriter.scalar(project.rawValue))", "environments: [\(YAMLWriter.scalar(environment.rawValue))]"]
        var variables: [(Username, String)] = []
        var used = Set<String>()
        if live.isEmpty {
            lines.append("credentials: []")
        } else {
            lines.append("credentials:")
        }
        for resource in live.sorted(by: { $0.id < $1.id }) {
            var variable = Self.variableName(environment: environment, username: resource.id)
            var n = 2
            while used.contains(variable) {
                variable = Self.variableName(environment: environment, username: resource.id) + "_\(n)"
                n += 1
            }
            used.insert(variable)
            variables.append((resource.id, variable))
            lines.append("  - \(schema.identifierField): \(YAMLWriter.scalar(resource.id.rawValue))")
            for spec in schema.fields {
                let value = resource[spec.name] ?? spec.defaultValue
                lines.append("    \(spec.name): \(Self.yaml(value))")
            }
            lines.append("    \(schema.secretField): { fromEnv: \(variable) }")
            let granted = (grants[resource.id] ?? []).sorted()
            if granted.isEmpty {
                lines.append("    \(schema.grantsField): []")
            } else {
                lines.append("    \(schema.grantsField):")
                for g in granted { lines.append("      - { name: \(YAMLWriter.scalar(g.name)), type: \(YAMLWriter.scalar(g.type)) }") }
            }
        }
        return (lines.joined(separator: "\n") + "\n", variables)
    }

    static func yaml(_ value: FieldValue) -> String {
        switch value {
        case .string(let s): return YAMLWriter.scalar(s)
        case .bool(let b): return b ? "true" : "false"
        case .set(let items): return YAMLWriter.list(items)
        case .instant(let ms): return ms.map(Timestamp.format) ?? "null"
        }
    }

    /// `CREDOPS_STAGING_CHECKOUT_SERVICE_PASSWORD`.
    public static func variableName(environment: EnvironmentName, username: Username) -> String {
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
