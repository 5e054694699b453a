import Crypto
import Foundation

/// A plan written by `credops plan --out FILE`: the plan, the inputs it was made from (paths
/// and digests), the options that shaped it, and per environment digests of the live state and
/// of the declared passwords it was computed against. Holds no secret.
///
/// `credops apply --plan FILE` makes the plan again and refuses, changing nothing, when any of
/// these differ ("stale plan"); otherwise it applies exactly the saved changes.
public struct SavedPlan: Codable, Sendable {
    public static let kind = "credops/plan"

    public var kind: String = SavedPlan.kind
    public var credopsVersion: String = CredOpsVersion.current
    public var plan: Plan
    public var inputs: SavedInputs
    /// The guard rails the plan was made with: shown, never applied (apply takes its own).
    public var options: SavedOptions
    /// HMACs of each part under the state key, so that a plan file changed after `plan --out`
    /// (its paths, its changes, its environments) is refused, naming the part.
    public var integrity: Integrity?

    /// HMAC-SHA256 of each part of a saved plan, hex.
    public struct Integrity: Codable, Sendable, Equatable {
        public var algorithm: String
        public var header: String
        public var inputs: String
        public var options: String
        public var environments: [String: String]
    }

    public struct SavedInputs: Codable, Sendable, Equatable {
        public var paths: [String]
        public var environmentsDirectory: String
        /// `--providers DIR` when the plan was made with it (nil: the default beside the environments).
        public var providersDirectory: String?
        /// The policies directory the plan was checked against (nil: the default).
        public var policiesDirectory: String?
        public var allowPlaintextSecrets: Bool
        public var files: [InputFile]
        /// The environments the plan covers (`-e`), empty for all.
        public var selectedEnvironments: [String]

        public init(paths: [String], environmentsDirectory: String, providersDirectory: String? = nil, policiesDirectory: String? = nil,
                    allowPlaintextSecrets: Bool, files: [InputFile], selectedEnvironments: [String]) {
            self.providersDirectory = providersDirectory
            self.policiesDirectory = policiesDirectory
            self.paths = paths
            self.environmentsDirectory = environmentsDirectory
            self.allowPlaintextSecrets = allowPlaintextSecrets
            self.files = files
            self.selectedEnvironments = selectedEnvironments
        }
    }

    public struct SavedOptions: Codable, Sendable, Equatable {
        public var allowDelete: Bool
        public var allowMassDelete: Bool
        public var maxDeletes: Int?

        public init(_ options: PlanOptions) {
            allowDelete = options.allowDelete
            allowMassDelete = options.allowMassDelete
            maxDeletes = options.maxDeletes
        }

        public var planOptions: PlanOptions { PlanOptions(allowDelete: allowDelete, allowMassDelete: allowMassDelete, maxDeletes: maxDeletes) }
    }

    public init(plan: Plan, inputs: SavedInputs, options: PlanOptions) {
        self.plan = plan
        self.inputs = inputs
        self.options = SavedOptions(options)
    }

    /// This plan with `integrity` computed under `key` (on the plan as it reads back from its
    /// JSON, so that what is verified later is exactly what was signed).
    public func signed(with key: FingerprintKey) throws -> SavedPlan {
        var copy = try SavedPlan.read(json())
        copy.integrity = nil
        copy.integrity = Integrity(algorithm: "HMAC-SHA256", header: copy.mac("header", key: key), inputs: copy.mac("inputs", key: key),
                                   options: copy.mac("options", key: key),
                                   environments: Dictionary(uniqueKeysWithValues: copy.plan.environments.map {
                                       ($0.environment.rawValue, copy.mac("environment", $0, key: key))
                                   }))
        return copy
    }

    /// Why this plan cannot be trusted under `key`, naming each part that changed since it was
    /// signed; empty when every part checks out.
    public func verify(with key: FingerprintKey) -> [String] {
        guard let integrity else {
            return ["the plan carries no signature (made by an older credops, or edited); make a new plan"]
        }
        guard integrity.algorithm == "HMAC-SHA256" else { return ["the plan's signature uses an unknown algorithm \(TextSafety.escaped(integrity.algorithm))"] }
        var problems: [String] = []
        let environments = plan.environments.map(\.environment.rawValue)
        // A plan signed under another key fails every part; say that once.
        if !matches(mac("header", key: key), integrity.header) {
            return ["the plan was not made with this state's key (another state or CREDOPS_STATE_KEY), or its header was edited"]
        }
        if !matches(mac("inputs", key: key), integrity.inputs) { problems.append("its inputs (manifest paths, environments directory, file digests) were changed") }
        if !matches(mac("options", key: key), integrity.options) { problems.append("its recorded options were changed") }
        for env in plan.environments {
            guard let expected = integrity.environments[env.environment.rawValue] else {
                problems.append("the environment \(TextSafety.escaped(env.environment.rawValue)) was added to it")
                continue
            }
            if !matches(mac("environment", env, key: key), expected) { problems.append("the changes of \(TextSafety.escaped(env.environment.rawValue)) were changed") }
        }
        for name in integrity.environments.keys.sorted() where !environments.contains(name) {
            problems.append("the environment \(TextSafety.escaped(name)) was removed from it")
        }
        return problems
    }

    private func matches(_ a: String, _ b: String) -> Bool { Fingerprint(hex: a).matches(Fingerprint(hex: b)) }

    /// HMAC of one part's canonical JSON, bound to the part's name.
    private func mac(_ part: String, _ environment: EnvironmentPlan? = nil, key: FingerprintKey) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let body: Data
        switch part {
        case "header":
            body = (try? encoder.encode([kind, credopsVersion, "\(plan.createdAt.timeIntervalSince1970)",
                                         "\(plan.environments.map(\.environment.rawValue))"])) ?? Data()
        case "inputs": body = (try? encoder.encode(inputs)) ?? Data()
        case "options": body = (try? encoder.encode(options)) ?? Data()
        default: body = (try? encoder.encode(environment)) ?? Data()
        }
        var hmac = key.hmac
        hmac.update(data: Array("credops saved plan v1\u{0}\(part)\u{0}\(environment?.environment.rawValue ?? "")\u{0}".utf8))
        hmac.update(data: body)
        return Hex.encode(hmac.finalize())
    }

    public func json() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return (try? encoder.encode(self)) ?? Data()
    }

    public static func read(_ data: Data) throws -> SavedPlan {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let saved = try decoder.decode(SavedPlan.self, from: data)
        guard saved.kind == kind else {
            throw DecodingError.dataCorrupted(.init(codingPath: [], debugDescription: "not a credops plan (kind \(saved.kind))"))
        }
        return saved
    }

    /// Why `current` (made now from the same inputs) is not the saved plan; empty when it is.
    /// - Parameters:
    ///   - files: the input files as they are now.
    ///   - redactor: what the saved plan was redacted with when written; the changes are
    ///     compared as written.
    public func staleness(current: Plan, files: [InputFile], redactor: Redactor = Redactor()) -> [String] {
        var reasons: [String] = []
        let before = Dictionary(inputs.files.map { ($0.path, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        let now = Dictionary(files.map { ($0.path, $0.sha256) }, uniquingKeysWith: { a, _ in a })
        for path in Set(before.keys).union(now.keys).sorted() {
            switch (before[path], now[path]) {
            case (nil, _?): reasons.append("\(path) is new since the plan was made")
            case (_?, nil): reasons.append("\(path) is gone since the plan was made")
            case let (a?, b?) where a != b: reasons.append("\(path) changed since the plan was made")
            default: break
            }
        }
        let currentEnvs = Dictionary(current.environments.map { ($0.environment, $0) }, uniquingKeysWith: { a, _ in a })
        for saved in plan.environments {
            guard let now = currentEnvs[saved.environment] else {
                reasons.append("\(saved.environment) is no longer an environment of this run")
                continue
            }
            if saved.liveDigest != now.liveDigest {
                reasons.append("\(saved.environment): the live state or credops state changed since the plan was made")
            } else if saved.secretsDigest != now.secretsDigest {
                reasons.append("\(saved.environment): a declared password changed since the plan was made")
            } else if saved.changes.map({ redactor.redact($0.signature) }) != now.changes.map({ redactor.redact($0.signature) }) {
                reasons.append("\(saved.environment): the changes to make are no longer the same")
            }
        }
        return reasons
    }
}

/// Digests of what a plan was computed from, recorded per environment.
public enum PlanDigest {
    /// Live credentials and grants as read, and the state records (settled) they were compared with.
    public static func live(resources: [ProjectName: [Resource]], grants: [ProjectName: [CredentialKey: [AccessGrant]]],
                            managed: [ManagedCredential]) -> String {
        var text = Digester()
        for project in resources.keys.sorted() {
            text.add("P\(project)\n")
            for r in (resources[project] ?? []).sorted(by: { $0.id < $1.id }) {
                text.add("R\(r.id)")
                // The server's id and a readable secret's fingerprint: either changing makes a saved plan stale.
                if r.serverID != nil || r.secretFingerprint != nil { text.add("\u{0}#\(r.serverID ?? "")|\(r.secretFingerprint?.hex ?? "")") }
                for key in r.fields.keys.sorted() { text.add("\u{0}\(key)=\(r.fields[key]!.canonicalText)") }
                text.add("\n")
            }
            for (id, list) in (grants[project] ?? [:]).sorted(by: { $0.key < $1.key }) {
                text.add("G\(id)=\(list.sorted().map(\.description).joined(separator: ","))\n")
            }
        }
        // Sorted by index: a sorted copy of the records themselves held 2 MB per 10,000.
        for i in managed.indices.sorted(by: { (managed[$0].namespace, managed[$0].key) < (managed[$1].namespace, managed[$1].key) }) {
            let m = managed[i]
            text.add("S\(m.namespace)/\(m.key)=\(m.serverID.map { "#\($0)|" } ?? "")\(m.secretFingerprint?.hex ?? "-")|\(m.grants.map(\.description).joined(separator: ","))|\(m.pendingRedeploy ?? "")\n")
        }
        return text.finish()
    }

    /// The declared passwords' fingerprints (themselves HMACs): any change of a password shows.
    public static func secrets(_ fingerprints: [(ProjectName, CredentialKey, Fingerprint)]) -> String {
        hex(fingerprints.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map { "\($0.0)/\($0.1)=\($0.2.hex)" }.joined(separator: "\n"))
    }

    static func hex(_ text: String) -> String {
        Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }

    /// SHA-256 of text added piece by piece, hashed in blocks as it comes: the same digest as
    /// `hex` of the whole text, without holding the text (several MB at 10,000 credentials).
    struct Digester {
        private var hash = SHA256()
        private var pending: [UInt8] = []

        init() { pending.reserveCapacity(Self.block + 1024) }

        private static let block = 64 * 1024

        mutating func add(_ text: String) {
            pending.append(contentsOf: text.utf8)
            if pending.count >= Self.block {
                hash.update(data: pending)
                pending.removeAll(keepingCapacity: true)
            }
        }

        consuming func finish() -> String {
            hash.update(data: pending)
            return Hex.encode(hash.finalize())
        }
    }
}
