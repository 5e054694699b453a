import Foundation

/// Options that change what the loader accepts.
public struct LoadOptions: Sendable {
    /// Accept `password: "literal"` (manifests live in git, so this is off by default).
    public var allowPlaintextSecrets = false
    public var limits = YAMLLimits()
    /// Directories besides the repository a `deliver: { file: }` may write into
    /// (`CREDOPS_DELIVERY_ROOTS`).
    public var deliveryRoots: [String] = []

    public init(allowPlaintextSecrets: Bool = false, deliveryRoots: [String] = []) {
        self.allowPlaintextSecrets = allowPlaintextSecrets
        self.deliveryRoots = deliveryRoots
    }
}

/// Turns one composed `CredentialSet` document into a `Manifest`, reporting every problem.
struct ManifestParser {
    static let apiVersion = "credops/v1"
    static let kind = "CredentialSet"
    static let topKeys = ["apiVersion", "kind", "provider", "project", "environments", "prune", "credentials"] + ResourceSchema.deliveryKeys
    static let accessKeys = ["name", "type"]
    static let secretKeys = ["fromEnv", "fromFile"]

    let reader: NodeReader
    let schemas: [String: ResourceSchema]
    let options: LoadOptions
    /// The directory of the manifest, for `fromFile` paths.
    let directory: String

    func parse(_ root: YAMLNode) -> Manifest? {
        guard let top = reader.mapping(root, what: "the manifest") else { return nil }
        reader.rejectUnknownKeys(top, allowed: Self.topKeys)

        if let node = top["apiVersion"] {
            if let v = reader.string(node, field: "apiVersion"), v != Self.apiVersion {
                reader.error("unsupported apiVersion '\(v)'; this credops reads \(Self.apiVersion)", at: node)
            }
        } else {
            reader.error("missing apiVersion: \(Self.apiVersion)", at: root)
        }
        if let node = top["kind"] {
            if let v = reader.string(node, field: "kind"), v != Self.kind {
                var message = "unsupported kind '\(v)'; expected \(Self.kind)"
                    + (v == ProfileParser.kind ? " (a provider profile belongs in providers/ beside environments/, or --providers DIR)" : "")
                if let s = Suggestion.closest(to: v, among: [Self.kind]), s != v { message = "unsupported kind '\(v)' (did you mean '\(s)'?)" }
                reader.error(message, at: node)
            }
        } else {
            reader.error("missing kind: \(Self.kind)", at: root)
        }

        var providerName = "apinizer"
        if let node = top["provider"], let v = reader.string(node, field: "provider") {
            providerName = v
        }
        let schema = schemas[providerName]
        if schema == nil, let node = top["provider"] {
            var message = "unknown provider '\(providerName)'"
            if let s = Suggestion.closest(to: providerName, among: schemas.keys.sorted()) { message += " (did you mean '\(s)'?)" } else { message += "; known: \(schemas.keys.sorted().joined(separator: ", "))" }
            reader.error(message, at: node)
        }

        var project: ProjectName?
        var projectLocation = reader.location(root)
        if let node = top["project"] {
            projectLocation = reader.location(node)
            if let v = reader.string(node, field: "project") {
                if let problem = TextSafety.nameProblem(v) {
                    reader.error("project \(problem); a project must be a printable name", at: node)
                } else {
                    project = ProjectName(v)
                }
            }
        } else {
            reader.error("missing project: the project (namespace) on the server these credentials belong to", at: root)
        }

        let environments = top["environments"].flatMap { environmentList($0, field: "environments") }

        var prune = PruneMode.managed
        var pruneLocation: SourceLocation?
        if let node = top["prune"], let v = reader.string(node, field: "prune") {
            pruneLocation = reader.location(node)
            if let mode = PruneMode(rawValue: v) {
                prune = mode
            } else {
                reader.error("prune must be managed, all or none, found '\(v)'", at: node)
            }
        }
        if prune == .all, let schema {
            switch schema.capabilities.namespace {
            case .none:
                reader.error("prune: all is refused for \(providerName), which has no projects on the server: it would delete every credential of the account that no manifest declares, other teams' too; use prune: managed",
                             at: top["prune"] ?? root)
            case .named(let refused):
                if let project, refused.contains(project.rawValue) {
                    reader.error("prune: all is refused for the project \(project): listing \(project) returns the credentials of every project", at: top["prune"] ?? root)
                }
            }
        }

        let delivery = DeliveryParser(reader: reader, options: options, directory: directory)
        var defaultDelivery: DeclaredDelivery?
        var defaultRotation: Located<Int>?
        var defaultOverlap: Located<Int>?
        for key in ResourceSchema.deliveryKeys {
            guard let node = top[key], let schema else { continue }
            guard schema.capabilities.secret != .none else {
                reader.error("\(key) is for credentials with a secret; \(providerName) credentials have none", at: node)
                continue
            }
            switch key {
            case "deliver": defaultDelivery = delivery.parse(node)
            case "rotateAfter": defaultRotation = delivery.rotation(node)
            default: defaultOverlap = delivery.overlap(node)
            }
        }

        var credentials: [ManifestCredential] = []
        if let node = top["credentials"] {
            if case .sequence(let items) = node.content {
                if let schema {
                    for item in items {
                        if var credential = parseCredential(item, schema: schema, delivery: delivery) {
                            let generates = credential.values.generateLength != nil || credential.overrides.values.contains { $0.generateLength != nil }
                            if schema.capabilities.secret == .generated || generates {
                                let written = top["deliver"] != nil || Self.keyNode(item, "deliver") != nil
                                delivery.check(&credential, defaults: defaultDelivery, project: project, at: item, written: written)
                            } else if let written = Self.keyNode(item, "deliver") ?? Self.keyNode(item, "rotateAfter") ?? Self.keyNode(item, "overlap") {
                                reader.error("\(written.scalar?.value ?? "deliver") is for a secret credops generates: write \(schema.secretField): { generate: { length: 32 } } to have one made and delivered",
                                             at: written)
                            }
                            credentials.append(credential)
                        }
                    }
                }
            } else {
                reader.error("credentials must be a list (write credentials: [] to declare that the project holds none), found \(node.kindDescription)", at: node)
            }
        } else {
            reader.error("missing credentials: list the credentials, or write credentials: [] to declare that the project holds none", at: root)
        }

        guard let project, schema != nil else { return nil }
        return Manifest(file: reader.file, location: reader.location(root), provider: providerName, project: project,
                        projectLocation: projectLocation, environments: environments, prune: prune,
                        pruneLocation: pruneLocation, credentials: credentials, delivery: defaultDelivery, rotateAfter: defaultRotation,
                        overlap: defaultOverlap)
    }

    /// `{ generate: { length: N } }` (16 ≤ N ≤ 256; default 32).
    private func generateLength(_ node: YAMLNode, field: String) -> Int? {
        guard let map = reader.mapping(node, what: field) else { return nil }
        reader.rejectUnknownKeys(map, allowed: ["generate"])
        guard let spec = map.entry("generate") else { return nil }
        if reader.isNull(spec.value) { return 32 }
        guard let options = reader.mapping(spec.value, what: "\(field).generate") else { return nil }
        reader.rejectUnknownKeys(options, allowed: ["length"])
        guard let length = options.entry("length") else { return 32 }
        return reader.integer(length.value, field: "length", range: 16...256)
    }

    /// The key node of `key` in mapping `node`, if there.
    static func keyNode(_ node: YAMLNode, _ key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = node.content else { return nil }
        return pairs.first { $0.key.scalar?.value == key }?.key
    }

    private func environmentList(_ node: YAMLNode, field: String) -> [Located<EnvironmentName>]? {
        guard let items = reader.stringList(node, field: field) else { return nil }
        if items.isEmpty { reader.error("\(field) is empty; leave it out to mean every environment", at: node) }
        var seen = Set<String>()
        var result: [Located<EnvironmentName>] = []
        for (value, itemNode) in items {
            if !seen.insert(value).inserted {
                reader.warning("\(field) lists '\(value)' twice", at: itemNode)
                continue
            }
            result.append(Located(EnvironmentName(value), at: reader.location(itemNode)))
        }
        return result
    }

    private func parseCredential(_ node: YAMLNode, schema: ResourceSchema, delivery: DeliveryParser) -> ManifestCredential? {
        // Name the credential in messages about its own keys when its username is readable.
        var label = "a credential"
        if case .mapping(let pairs) = node.content,
           let id = pairs.first(where: { $0.key.scalar?.value == schema.identifierField })?.value.scalar, !id.isNull {
            label = "credential '\(id.value)'"
        }
        guard let map = reader.mapping(node, what: label) else { return nil }
        var username: CredentialKey?
        var what = "a credential"
        if let idNode = map[schema.identifierField] {
            if let v = reader.string(idNode, field: schema.identifierField) {
                if let problem = TextSafety.nameProblem(v) {
                    reader.error("\(schema.identifierField) \(problem); a \(schema.identifierField) must be a printable name", at: idNode)
                } else if let bounds = schema.identifierLength, !bounds.contains(v.utf16.count) {
                    reader.error("\(schema.identifierField) must be \(bounds.lowerBound)–\(bounds.upperBound) characters long, found \(v.utf16.count)", at: idNode)
                } else {
                    username = CredentialKey(v)
                    what = "credential '\(v)'"
                }
            }
        } else {
            reader.error("a credential needs a \(schema.identifierField)", at: node)
        }
        let named = Mapping(node: map.node, entries: map.entries, what: what)
        reader.rejectUnknownKeys(named, allowed: schema.credentialKeys)

        // Without a password here, every override that applies must supply one (checked per environment later).
        var values = parseValues(named, schema: schema, skipping: [schema.identifierField, "environments", "overrides"] + ResourceSchema.deliveryKeys,
                                 what: what)
        for spec in schema.fields where spec.isRequired && values.fields[spec.name] == nil && named[spec.name] == nil {
            reader.error("\(what) needs \(spec.name)", at: node)
        }
        // Schema defaults filled in once here: each environment's desired state then shares
        // these values instead of copying them to add the defaults (3 MB per 10,000 credentials
        // and environment). Overrides only ever set fields, so the result is the same.
        for spec in schema.fields where spec.isDeclarable && values.fields[spec.name] == nil {
            values.fields[spec.name] = spec.defaultValue
        }

        let environments = named["environments"].flatMap { environmentList($0, field: "environments of \(what)") }

        var overrides: [EnvironmentName: CredentialValues] = [:]
        var overrideLocations: [EnvironmentName: SourceLocation] = [:]
        if let overridesNode = named["overrides"], let overridesMap = reader.mapping(overridesNode, what: "overrides of \(what)") {
            for entry in overridesMap.entries {
                guard let envMap = reader.mapping(entry.value, what: "overrides.\(entry.key) of \(what)") else { continue }
                reader.rejectUnknownKeys(envMap, allowed: schema.overrideKeys)
                let env = EnvironmentName(entry.key)
                overrides[env] = parseValues(envMap, schema: schema, skipping: [], what: "overrides.\(entry.key) of \(what)")
                overrideLocations[env] = reader.location(entry.keyNode)
            }
        }
        guard let username else { return nil }
        return ManifestCredential(key: username, location: reader.location(map[schema.identifierField] ?? node),
                                  values: values, environments: environments, overrides: overrides,
                                  overrideLocations: overrideLocations,
                                  delivery: named["deliver"].flatMap { delivery.parse($0) },
                                  rotateAfter: named["rotateAfter"].flatMap { delivery.rotation($0) },
                                  overlap: named["overlap"].flatMap { delivery.overlap($0) })
    }

    /// Reads the schema fields, the password and the grants present in `map`.
    private func parseValues(_ map: Mapping, schema: ResourceSchema, skipping: [String], what: String) -> CredentialValues {
        var values = CredentialValues()
        values.fields.reserveCapacity(schema.fields.count)
        for entry in map.entries where !skipping.contains(entry.key) {
            if entry.key == schema.secretField {
                values.passwordDeclared = true
                if Self.keyNode(entry.value, "generate") != nil {
                    values.generateLength = generateLength(entry.value, field: entry.key)
                } else {
                    values.password = SecretReferenceParser(reader: reader, options: options, directory: directory)
                        .parse(entry.value, field: entry.key, literalAllowed: true)
                }
            } else if schema.hasGrants && entry.key == schema.grantsField {
                values.grants = parseGrants(entry.value, schema: schema, what: what)
                values.grantsLocation = reader.location(entry.value)
            } else if let spec = schema.field(named: entry.key) {
                guard spec.isDeclarable else {
                    reader.error("\(spec.name) is set by the server and cannot be declared; remove it", at: entry.keyNode)
                    continue
                }
                if let value = FieldReader(reader: reader).read(entry.value, spec: spec) {
                    // FieldReader gives canonical values (IPs normalised, sets sorted).
                    values.fields[spec.name] = value
                }
            }
        }
        return values
    }

    private func parseGrants(_ node: YAMLNode, schema: ResourceSchema, what: String) -> [AccessGrant]? {
        guard case .sequence(let items) = node.content else {
            reader.error("\(schema.grantsField) of \(what) must be a list of { name, type }, found \(node.kindDescription)", at: node)
            return nil
        }
        var grants: [AccessGrant] = []
        grants.reserveCapacity(items.count)
        var ok = true
        for item in items {
            guard let map = reader.mapping(item, what: "an access entry") else { ok = false; continue }
            reader.rejectUnknownKeys(map, allowed: Self.accessKeys)
            let name = map["name"].flatMap { reader.string($0, field: "name") }
            if map["name"] == nil { reader.error("an access entry needs a name", at: item) }
            if let name, let problem = TextSafety.nameProblem(name) {
                reader.error("name \(problem); an access entry must name a printable name", at: map["name"]!)
            }
            var type: String?
            if let typeNode = map["type"], let t = reader.string(typeNode, field: "type") {
                if schema.grantTypes.contains(t) {
                    type = t
                } else {
                    var message = "unknown access type '\(t)'"
                    if let s = Suggestion.closest(to: t, among: schema.grantTypes) { message += " (did you mean '\(s)'?)" }
                    message += "; expected \(schema.grantTypes.joined(separator: " or "))"
                    reader.error(message, at: typeNode)
                }
            } else if map["type"] == nil {
                reader.error("an access entry needs a type (\(schema.grantTypes.joined(separator: " or ")))", at: item)
            }
            guard let name, TextSafety.nameProblem(name) == nil, let type else { ok = false; continue }
            let grant = AccessGrant(type: type, name: name)
            if grants.contains(grant) {
                reader.warning("\(schema.grantsField) of \(what) lists \(grant) twice", at: item)
                continue
            }
            grants.append(grant)
        }
        return ok ? grants.sorted() : nil
    }
}

/// Reads one schema field's value with the strict rules of its kind and format.
struct FieldReader {
    let reader: NodeReader

    func read(_ node: YAMLNode, spec: FieldSpec) -> FieldValue? {
        switch spec.kind {
        case .string:
            if reader.isNull(node) {
                if spec.isRequired || spec.isNonEmpty {
                    reader.error("\(spec.name) must not be empty", at: node)
                    return nil
                }
                return spec.defaultValue
            }
            guard let text = reader.string(node, field: spec.name) else { return nil }
            if spec.isNonEmpty, text.utf8.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 }) {
                reader.error("\(spec.name) must not be empty", at: node)
                return nil
            }
            guard let canonical = checkFormat(text, spec: spec, node: node), checkRules(canonical, spec: spec, node: node) else { return nil }
            return .string(canonical)
        case .bool:
            return reader.bool(node, field: spec.name).map(FieldValue.bool)
        case .stringSet:
            if reader.isNull(node) { return spec.defaultValue }
            guard let items = reader.stringList(node, field: spec.name) else { return nil }
            var ok = true
            var values: [String] = []
            values.reserveCapacity(items.count)
            for (text, itemNode) in items {
                guard let canonical = checkFormat(text, spec: spec, node: itemNode), checkRules(canonical, spec: spec, node: itemNode) else {
                    ok = false
                    continue
                }
                if values.contains(canonical) {
                    reader.warning("\(spec.name) lists '\(text)' twice", at: itemNode)
                }
                values.append(canonical)
            }
            return ok ? .setOf(values) : nil
        case .instant:
            if reader.isNull(node) { return .instant(nil) }
            guard let text = reader.string(node, field: spec.name) else { return nil }
            guard let millis = Timestamp.parse(text) else {
                reader.error("\(spec.name) must be an ISO 8601 date and time with a zone, e.g. 2027-06-30T23:59:59.000Z, found '\(text.prefix(60))'", at: node)
                return nil
            }
            return .instant(millis)
        }
    }

    /// Checks the schema's length bounds and allowed values; reports and returns false when one fails.
    private func checkRules(_ text: String, spec: FieldSpec, node: YAMLNode) -> Bool {
        let length = text.utf16.count
        if let min = spec.minLength, length < min {
            reader.error("\(spec.name) must be at least \(min) character\(min == 1 ? "" : "s") long, found \(length)", at: node)
            return false
        }
        if let max = spec.maxLength, length > max {
            reader.error("\(spec.name) must be at most \(max) character\(max == 1 ? "" : "s") long, found \(length)", at: node)
            return false
        }
        if let allowed = spec.oneOf, !allowed.contains(text) {
            let shownValue = TextSafety.escaped(String(text.prefix(80)))
            var message = "\(spec.name) must be one of \(allowed.map { "'\($0)'" }.joined(separator: ", ")), found '\(shownValue)'"
            if let s = Suggestion.closest(to: text, among: allowed) { message += " (did you mean '\(s)'?)" }
            reader.error(message, at: node)
            return false
        }
        return true
    }

    /// The value in canonical form when it passes the format's checks; nil (reported) when not.
    private func checkFormat(_ text: String, spec: FieldSpec, node: YAMLNode) -> String? {
        switch spec.format {
        case .any:
            return text
        case .email:
            if EmailAddress.isPlausible(text) { return text }
            reader.error("'\(text.prefix(80))' is not an email address", at: node)
            return nil
        case .ipOrCIDR:
            guard let range = IPRange.parse(text) else {
                reader.error("'\(text.prefix(80))' is not an IP address or CIDR range", at: node)
                return nil
            }
            if range.hasHostBits {
                reader.error("'\(text)' has bits set after its prefix; did you mean '\(range.networkAddress)'?", at: node)
                return nil
            }
            return range.description
        }
    }
}

/// Reads `{ fromEnv: NAME }`, `{ fromFile: PATH }` or (only when allowed) a literal.
struct SecretReferenceParser {
    let reader: NodeReader
    let options: LoadOptions
    let directory: String

    /// Never puts the secret's text in a message: a literal may be a real password.
    func parse(_ node: YAMLNode, field: String, literalAllowed: Bool) -> SecretReference? {
        switch node.content {
        case .scalar(let scalar):
            if reader.isNull(node) {
                reader.error("\(field) is empty; use { fromEnv: NAME } or { fromFile: PATH }", at: node)
                return nil
            }
            guard literalAllowed, options.allowPlaintextSecrets else {
                reader.error("\(field) is written in the file; use { fromEnv: NAME } or { fromFile: PATH }"
                             + (literalAllowed ? " (or pass --allow-plaintext-secrets)" : ""), at: node)
                return nil
            }
            guard !scalar.value.isEmpty else {
                reader.error("\(field) is empty", at: node)
                return nil
            }
            return SecretReference(.literal(Secret(scalar.value)), at: reader.location(node))
        case .sequence:
            reader.error("\(field) must be { fromEnv: NAME } or { fromFile: PATH }, found a list", at: node)
            return nil
        case .mapping:
            guard let map = reader.mapping(node, what: field) else { return nil }
            reader.rejectUnknownKeys(map, allowed: ManifestParser.secretKeys)
            let env = map.entry("fromEnv"), file = map.entry("fromFile")
            if env != nil && file != nil {
                reader.error("\(field) takes fromEnv or fromFile, not both", at: node)
                return nil
            }
            if let env {
                guard let name = reader.string(env.value, field: "fromEnv") else { return nil }
                guard Self.isVariableName(name) else {
                    reader.error("fromEnv must name an environment variable (letters, digits and _, not starting with a digit)", at: env.value)
                    return nil
                }
                return SecretReference(.environment(name), at: reader.location(env.value))
            }
            if let file {
                guard let path = reader.string(file.value, field: "fromFile") else { return nil }
                guard !path.isEmpty else {
                    reader.error("fromFile must name a file", at: file.value)
                    return nil
                }
                let resolved = path.hasPrefix("/") ? path : (directory as NSString).appendingPathComponent(path)
                return SecretReference(.file(path: path, resolvedPath: (resolved as NSString).standardizingPath),
                                       at: reader.location(file.value))
            }
            reader.error("\(field) must be { fromEnv: NAME } or { fromFile: PATH }", at: node)
            return nil
        }
    }

    static func isVariableName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, first == "_" || (first.isASCII && first.properties.isAlphabetic) else { return false }
        return s.unicodeScalars.allSatisfy { $0 == "_" || ($0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0))) }
    }
}

/// The email check the API documents: "must look like an email address".
public enum EmailAddress {
    public static func isPlausible(_ text: String) -> Bool {
        let b = Array(text.utf8)
        guard b.count <= 254, let at = b.firstIndex(of: UInt8(ascii: "@")), b.lastIndex(of: UInt8(ascii: "@")) == at else { return false }
        let local = b[..<at], domain = b[(at + 1)...]
        guard !local.isEmpty, local.count <= 64, !domain.isEmpty else { return false }
        // No spaces or control characters anywhere; no leading, trailing or doubled dot in the local part.
        guard !b.contains(where: { $0 <= 32 || $0 == 127 }) else { return false }
        guard local.first != UInt8(ascii: "."), local.last != UInt8(ascii: "."),
              !zip(local, local.dropFirst()).contains(where: { $0 == 46 && $1 == 46 }) else { return false }
        // Domain: two or more labels of letters, digits and inner hyphens (non-ASCII letters allowed).
        let labels = domain.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        for label in labels {
            guard let first = label.first, let last = label.last, first != 45, last != 45 else { return false }
            for c in label where !(c >= 128 || (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c == 45) {
                return false
            }
        }
        return true
    }
}
