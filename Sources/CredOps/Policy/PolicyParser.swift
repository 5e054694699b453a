import Foundation

/// Reads `kind: Policies` documents as strictly as manifests: unknown keys, fields no provider
/// has, bad durations and patterns are each reported at their place.
struct PolicyParser {
    static let kind = "Policies"
    static let policyKeys = ["name", "level", "environments", "providers", "projects", "require", "maxLifetime", "forbid", "maxRotateAfter",
                             "prune", "maxDeletes", "allowedHosts"]
    static let ruleKeys = ["require", "maxLifetime", "forbid", "maxRotateAfter", "prune", "maxDeletes", "allowedHosts"]

    let reader: NodeReader
    /// Every provider's schema, by name (built-in and profiles).
    let schemas: [String: ResourceSchema]

    func parse(_ root: YAMLNode) -> [Policy] {
        guard let top = reader.mapping(root, what: "the policies file") else { return [] }
        reader.rejectUnknownKeys(top, allowed: ["apiVersion", "kind", "policies"])
        reader.checkHeader(top, root: root, kind: Self.kind)
        guard let list = top["policies"] else {
            reader.error("missing policies: a list of { name, ...rules }", at: root)
            return []
        }
        guard case .sequence(let items) = list.content else {
            reader.error("policies must be a list of { name, ...rules }, found \(list.kindDescription)", at: list)
            return []
        }
        return items.compactMap(parsePolicy)
    }

    private func parsePolicy(_ node: YAMLNode) -> Policy? {
        guard let map = reader.mapping(node, what: "a policy") else { return nil }
        reader.rejectUnknownKeys(map, allowed: Self.policyKeys)
        guard let nameNode = map["name"] else {
            reader.error("a policy needs a name (shown with every failure)", at: node)
            return nil
        }
        guard let name = reader.string(nameNode, field: "name") else { return nil }
        guard EnvironmentParser.isValidName(name) else {
            reader.error("a policy name must be letters, digits, -, _ and ., found '\(TextSafety.escaped(name))'", at: nameNode)
            return nil
        }
        var policy = Policy(name: name, location: reader.location(nameNode))
        if let l = map["level"], let v = reader.string(l, field: "level") {
            if let level = Policy.Level(rawValue: v) { policy.level = level } else { reader.oneOf(v, ["error", "warn"], field: "level", at: l) }
        }
        policy.environments = patterns(map["environments"], field: "environments")
        policy.providers = patterns(map["providers"], field: "providers")
        policy.projects = patterns(map["projects"], field: "projects")
        // The schemas the rules can meet: those of the named providers, or all.
        let named = schemas.keys.filter { policy.providers.matches($0) }.sorted()
        if let p = map["providers"], named.isEmpty {
            reader.error("providers selects none of the providers this run knows (\(schemas.keys.sorted().joined(separator: ", ")))", at: p)
        }
        let covered = named.compactMap { schemas[$0] }
        // One error per mistake: a misspelt rule is reported as unknown, not also as missing.
        let misspelt = map.entries.contains { !Self.policyKeys.contains($0.key) }
        if !misspelt && !Self.ruleKeys.contains(where: { map[$0] != nil }) {
            reader.error("policy \(name) has no rule: give one of \(Self.ruleKeys.joined(separator: ", "))", at: nameNode)
        }
        if let r = map["require"], let items = reader.stringList(r, field: "require") {
            for (field, item) in items where checkField(field, at: item, in: named, explicit: map["providers"] != nil) {
                policy.require.append(field)
            }
        }
        if let m = map["maxLifetime"], let seconds = reader.duration(m, field: "maxLifetime", range: 3600...(3650 * 86_400)) {
            if !covered.contains(where: { $0.expiryField != nil }) {
                reader.error("maxLifetime needs a provider whose credentials expire (apinizer's expireDate, or a profile field marked expiry: true)", at: m)
            }
            policy.maxLifetime = seconds
        }
        if let f = map["forbid"], let fm = reader.mapping(f, what: "forbid") {
            for entry in fm.entries {
                guard checkField(entry.key, at: entry.keyNode, in: named, explicit: map["providers"] != nil),
                      let values = reader.stringList(entry.value, field: "forbid.\(entry.key)") else { continue }
                if values.isEmpty { reader.error("forbid.\(entry.key) lists no value", at: entry.value) }
                policy.forbid.append((entry.key, values.map(\.value)))
            }
        }
        if let m = map["maxRotateAfter"], let seconds = reader.duration(m, field: "maxRotateAfter", range: 3600...(3650 * 86_400)) {
            policy.maxRotateAfter = seconds
        }
        if let p = map["prune"], let items = reader.stringList(p, field: "prune") {
            var modes: [PruneMode] = []
            for (text, item) in items {
                if let mode = PruneMode(rawValue: text) { modes.append(mode) } else { reader.oneOf(text, PruneMode.allCases.map(\.rawValue), field: "prune", at: item) }
            }
            if items.isEmpty { reader.error("prune lists no mode a project may use (managed, none, all)", at: p) }
            policy.prune = modes
        }
        if let d = map["maxDeletes"] {
            policy.maxDeletes = reader.integer(d, field: "maxDeletes", range: 0...1_000_000)
            // A refusal of a whole environment's plan: neither a warning nor a project's.
            if policy.level == .warn {
                reader.error("maxDeletes refuses a plan, so it cannot be level: warn; give it a policy of its own", at: d)
            } else if map["projects"] != nil {
                reader.error("maxDeletes counts an environment's deletes, every project's; it cannot be limited to projects", at: d)
            }
        }
        if let h = map["allowedHosts"] {
            let hosts = patterns(h, field: "allowedHosts")
            if hosts.include.isEmpty { reader.error("allowedHosts names no host (example.com, *.example.com, 10.0.0.5)", at: h) }
            policy.allowedHosts = hosts
        }
        return policy
    }

    /// A field a rule names: one of the covered providers' fields (with a "did you mean").
    /// Where the policy names its providers, each of them must have it; otherwise one.
    private func checkField(_ field: String, at node: YAMLNode, in providers: [String], explicit: Bool) -> Bool {
        let covered = providers.compactMap { name in schemas[name].map { (name, $0) } }
        let lacking = covered.filter { $0.1.field(named: field)?.isDeclarable != true }.map(\.0)
        if lacking.count == covered.count {
            let known = Set(covered.flatMap { $0.1.declarableFields.map(\.name) }).sorted()
            var message = "no provider the policy covers has a field '\(TextSafety.escaped(field))' a manifest declares"
            if let s = Suggestion.closest(to: field, among: known) { message += " (did you mean '\(s)'?)" }
            reader.error(message, at: node)
            return false
        }
        if explicit && !lacking.isEmpty {
            reader.error("'\(field)' is not a field of \(lacking.joined(separator: ", ")), which the policy names in providers", at: node)
            return false
        }
        return true
    }

    private func patterns(_ node: YAMLNode?, field: String) -> NamePatterns {
        guard let node else { return NamePatterns() }
        let items: [(value: String, node: YAMLNode)]
        if let s = node.scalar, !reader.isNull(node) {
            items = [(s.value, node)]
        } else if let list = reader.stringList(node, field: field) {
            items = list
        } else {
            return NamePatterns()
        }
        var texts: [String] = []
        for (text, item) in items {
            let body = text.hasPrefix("!") ? String(text.dropFirst()) : text
            guard !body.isEmpty, body.count <= 200, !body.unicodeScalars.contains(where: { $0.value < 33 || $0.value == 127 || TextSafety.isUnsafe($0) }) else {
                reader.error("\(field) holds '\(TextSafety.escaped(text))', which is not a name pattern (letters, digits, * and ?, ! in front to exclude)", at: item)
                continue
            }
            texts.append(text)
        }
        return NamePatterns(texts)
    }
}

extension InputLoader {
    /// Reads every policy (`kind: Policies`) in `directory` (`policies/` beside
    /// `environments/`); a missing directory holds none. A file with any error yields no policy.
    public func loadPolicies(directory: String, schemas: [String: ResourceSchema]) -> (policies: [Policy], files: [InputFile], diagnostics: [Diagnostic]) {
        var policies: [Policy] = []
        var (files, composed, diagnostics) = sideFiles(directory, kind: .policy)
        for (path, documents) in composed {
            let reader = NodeReader(file: path)
            let parser = PolicyParser(reader: reader, schemas: schemas)
            var read: [Policy] = []
            for document in documents { read += parser.parse(document) }
            for (index, policy) in read.enumerated() {
                if let other = policies.first(where: { $0.name == policy.name }) ?? read[..<index].first(where: { $0.name == policy.name }) {
                    let at = other.location.file == policy.location.file ? "line \(other.location.line)" : "\(other.location)"
                    reader.error("policy \(policy.name) is named twice (first at \(at))", at: policy.location)
                }
            }
            if !reader.diagnostics.hasErrors { policies += read }
            diagnostics += reader.diagnostics
        }
        return (policies, files, diagnostics.sortedForDisplay())
    }
}
