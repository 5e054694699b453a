import Foundation

/// Checks what the manifests declare for each environment against the policies: pure, from
/// the loaded inputs only (no server, no secret), so `validate` runs it in a pull request.
/// Each failure is a diagnostic at the credential (or project, or environment file) that
/// breaks the rule, addressed `environment/project/credential`, an error or a warning as the
/// policy's level says.
public struct PolicyChecker: Sendable {
    public let policies: [Policy]
    public let now: Date

    public init(policies: [Policy], now: Date = Date()) {
        self.policies = policies
        self.now = now
    }

    /// Every failure in `environments`, given each one's desired state and provider schema.
    public func check(_ inputs: Inputs, environments: [EnvironmentConfig], schemas: [String: ResourceSchema]) -> [Diagnostic] {
        var found: [Diagnostic] = []
        for env in environments {
            guard let schema = schemas[env.provider] else { continue }
            let applicable = policies.filter { $0.applies(to: env) }
            guard !applicable.isEmpty else { continue }
            let desired = inputs.desired(for: env, schema: schema)
            for policy in applicable { found += check(policy, env: env, desired: desired, schema: schema) }
        }
        return found.sortedForDisplay()
    }

    /// The delete limit the strictest policy sets for `environment`, with that policy's name.
    public func deleteLimit(for environment: EnvironmentConfig) -> (limit: Int, policy: String)? {
        policies.filter { $0.applies(to: environment) && $0.level == .error }
            .compactMap { p in p.maxDeletes.map { ($0, p.name) } }
            .min { $0.0 < $1.0 }
    }

    private func check(_ policy: Policy, env: EnvironmentConfig, desired: DesiredEnvironment, schema: ResourceSchema) -> [Diagnostic] {
        var found: [Diagnostic] = []
        func report(_ message: String, at location: SourceLocation, address: String) {
            let text = "policy \(policy.name): \(message)"
            found.append(policy.level == .error ? .error(text, at: location, address: address) : .warning(text, at: location, address: address))
        }
        if let hosts = policy.allowedHosts, case .url(let url) = env.endpoint, let origin = URLParts.origin(url), !hosts.matches(origin.host) {
            report("environment \(env.name) points at \(TextSafety.escaped(origin.host)), which is not among the allowed hosts (\((hosts.include).joined(separator: ", ")))",
                   at: env.endpointLocation, address: env.name.rawValue)
        }
        for project in desired.projects where policy.projects.matches(project.project.rawValue) {
            if let modes = policy.prune, !modes.contains(project.prune) {
                report("project \(project.project) uses prune: \(project.prune.rawValue) in \(env.name); allowed: \(modes.map(\.rawValue).joined(separator: ", "))",
                       at: project.location, address: "\(env.name)/\(project.project)")
            }
            for credential in project.credentials {
                let address = "\(env.name)/\(project.project)/\(credential.key)"
                let name = "\(TextSafety.escaped(credential.key.rawValue)) in \(env.name)"
                for field in policy.require {
                    guard let spec = schema.field(named: field), spec.isDeclarable else { continue }
                    if Self.isEmpty(credential.resource[field] ?? spec.defaultValue) {
                        report("\(name) must declare \(field)", at: credential.location, address: address)
                    }
                }
                if let limit = policy.maxLifetime, let field = schema.expiryField {
                    switch credential.resource[field] {
                    case .instant(let ms?)?:
                        let days = Int((Double(ms) / 1000 - now.timeIntervalSince1970) / 86_400)
                        if Double(ms) / 1000 > now.timeIntervalSince1970 + Double(limit) {
                            report("\(name) expires \(Timestamp.format(ms).prefix(10)), in \(days) days; at most \(DurationText.long(limit)) are allowed",
                                   at: credential.location, address: address)
                        }
                    default:
                        // Said once: `require` already names the missing expiry.
                        if !policy.require.contains(field) {
                            report("\(name) must declare \(field), at most \(DurationText.long(limit)) away", at: credential.location, address: address)
                        }
                    }
                }
                for (field, values) in policy.forbid {
                    guard let value = credential.resource[field] else { continue }
                    let held: [String] = switch value {
                    case .string(let s): [s]
                    case .set(let items): items
                    default: []
                    }
                    let hits = values.filter(held.contains)
                    if !hits.isEmpty {
                        report("\(name) may not have \(hits.joined(separator: ", ")) in \(field)", at: credential.location, address: address)
                    }
                }
                if let limit = policy.maxRotateAfter, schema.capabilities.secret == .generated || credential.delivery?.secretLength != nil {
                    if let after = credential.rotateAfter {
                        if after > limit {
                            report("\(name) rotates after \(DurationText.short(after)); at most \(DurationText.short(limit)) is allowed", at: credential.location, address: address)
                        }
                    } else {
                        report("\(name) must declare rotateAfter of at most \(DurationText.short(limit))", at: credential.location, address: address)
                    }
                }
            }
        }
        return found
    }

    static func isEmpty(_ value: FieldValue) -> Bool {
        switch value {
        case .string(let s): s.isEmpty
        case .set(let items): items.isEmpty
        case .instant(let ms): ms == nil
        case .bool: false
        }
    }
}
