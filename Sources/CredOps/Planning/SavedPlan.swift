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
    public var options: SavedOptions

    public struct SavedInputs: Codable, Sendable, Equatable {
        public var paths: [String]
        public var environmentsDirectory: String
        public var allowPlaintextSecrets: Bool
        public var files: [InputFile]
        /// The environments the plan covers (`-e`), empty for all.
        public var selectedEnvironments: [String]

        public init(paths: [String], environmentsDirectory: String, allowPlaintextSecrets: Bool, files: [InputFile], selectedEnvironments: [String]) {
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
    /// - Parameter files: the input files as they are now.
    public func staleness(current: Plan, files: [InputFile]) -> [String] {
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
            } else if saved.changes.map(\.signature) != now.changes.map(\.signature) {
                reasons.append("\(saved.environment): the changes to make are no longer the same")
            }
        }
        return reasons
    }
}

/// Digests of what a plan was computed from, recorded per environment.
public enum PlanDigest {
    /// Live credentials and grants as read, and the state records (settled) they were compared with.
    public static func live(resources: [ProjectName: [Resource]], grants: [ProjectName: [Username: [AccessGrant]]],
                            managed: [ManagedCredential]) -> String {
        var text = ""
        for project in resources.keys.sorted() {
            text += "P\(project)\n"
            for r in (resources[project] ?? []).sorted(by: { $0.id < $1.id }) {
                text += "R\(r.id)"
                for key in r.fields.keys.sorted() { text += "\u{0}\(key)=\(r.fields[key]!.canonicalText)" }
                text += "\n"
            }
            for (id, list) in (grants[project] ?? [:]).sorted(by: { $0.key < $1.key }) {
                text += "G\(id)=\(list.sorted().map(\.description).joined(separator: ","))\n"
            }
        }
        for m in managed.sorted(by: { ($0.project, $0.username) < ($1.project, $1.username) }) {
            text += "S\(m.project)/\(m.username)=\(m.passwordFingerprint?.hex ?? "-")|\(m.grants.map(\.description).joined(separator: ","))|\(m.pendingRedeploy ?? "")\n"
        }
        return hex(text)
    }

    /// The declared passwords' fingerprints (themselves HMACs): any change of a password shows.
    public static func secrets(_ fingerprints: [(ProjectName, Username, Fingerprint)]) -> String {
        hex(fingerprints.sorted { ($0.0, $0.1) < ($1.0, $1.1) }.map { "\($0.0)/\($0.1)=\($0.2.hex)" }.joined(separator: "\n"))
    }

    static func hex(_ text: String) -> String {
        Hex.encode(SHA256.hash(data: Array(text.utf8)))
    }
}
