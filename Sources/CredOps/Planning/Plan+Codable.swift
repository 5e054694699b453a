import Foundation

// Plans are values that can be saved (`plan --out`) and read back (`show`, `apply --plan`).
// The encoding holds no secret: secrets appear only as HMAC fingerprints.

extension Plan: Codable {
    enum CodingKeys: String, CodingKey { case formatVersion, createdAt, environments }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let version = try c.decode(Int.self, forKey: .formatVersion)
        guard version == Plan.formatVersion else {
            throw DecodingError.dataCorruptedError(forKey: .formatVersion, in: c,
                                                   debugDescription: "plan format \(version); this credops reads format \(Plan.formatVersion)")
        }
        self.init(environments: try c.decode([EnvironmentPlan].self, forKey: .environments),
                  createdAt: try c.decode(Date.self, forKey: .createdAt))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(Plan.formatVersion, forKey: .formatVersion)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(environments, forKey: .environments)
    }
}


extension FieldValue: Codable {
    enum CodingKeys: String, CodingKey { case string, bool, set, instant }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if let s = try c.decodeIfPresent(String.self, forKey: .string) { self = .string(s); return }
        if let b = try c.decodeIfPresent(Bool.self, forKey: .bool) { self = .bool(b); return }
        if let items = try c.decodeIfPresent([String].self, forKey: .set) { self = .set(items); return }
        if c.contains(.instant) {
            let text = try c.decodeIfPresent(String.self, forKey: .instant)
            guard let text else { self = .instant(nil); return }
            guard let ms = Timestamp.parse(text) else {
                throw DecodingError.dataCorruptedError(forKey: .instant, in: c, debugDescription: "not an ISO 8601 instant: \(text)")
            }
            self = .instant(ms)
            return
        }
        throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "a field value needs string, bool, set or instant"))
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .string(let s): try c.encode(s, forKey: .string)
        case .bool(let b): try c.encode(b, forKey: .bool)
        case .set(let items): try c.encode(items, forKey: .set)
        case .instant(let ms): try c.encode(ms.map(Timestamp.format), forKey: .instant)
        }
    }
}

extension Action: Codable {
    enum CodingKeys: String, CodingKey { case kind, current, before, after, fields, forcedBy, secret, secretChanged, grants, credential }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(ActionKind.self, forKey: .kind) {
        case .adopt:
            self = .adopt(current: try c.decode(Resource.self, forKey: .current), grants: try c.decode([AccessGrant].self, forKey: .grants),
                          credential: try c.decode(Bool.self, forKey: .credential))
        case .create:
            self = .create(after: try c.decode(Resource.self, forKey: .after), secret: try c.decodeIfPresent(Fingerprint.self, forKey: .secret))
        case .replace:
            self = .replace(before: try c.decode(Resource.self, forKey: .before), after: try c.decode(Resource.self, forKey: .after),
                            fields: try c.decode([FieldChange].self, forKey: .fields), forcedBy: try c.decode([String].self, forKey: .forcedBy),
                            secret: try c.decodeIfPresent(Fingerprint.self, forKey: .secret))
        case .update:
            self = .update(before: try c.decode(Resource.self, forKey: .before), after: try c.decode(Resource.self, forKey: .after),
                           fields: try c.decode([FieldChange].self, forKey: .fields), secret: try c.decodeIfPresent(Fingerprint.self, forKey: .secret),
                           secretChanged: try c.decode(Bool.self, forKey: .secretChanged))
        case .secret:
            self = .setSecret(try c.decodeIfPresent(Fingerprint.self, forKey: .secret))
        case .grant:
            self = .grant(try c.decode([AccessGrant].self, forKey: .grants))
        case .revoke:
            self = .revoke(try c.decode([AccessGrant].self, forKey: .grants))
        case .delete:
            self = .delete(before: try c.decode(Resource.self, forKey: .before))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(kind, forKey: .kind)
        switch self {
        case .adopt(let current, let grants, let credential):
            try c.encode(current, forKey: .current)
            try c.encode(grants, forKey: .grants)
            try c.encode(credential, forKey: .credential)
        case .create(let after, let secret):
            try c.encode(after, forKey: .after)
            try c.encodeIfPresent(secret, forKey: .secret)
        case .replace(let before, let after, let fields, let forcedBy, let secret):
            try c.encode(before, forKey: .before)
            try c.encode(after, forKey: .after)
            try c.encode(fields, forKey: .fields)
            try c.encode(forcedBy, forKey: .forcedBy)
            try c.encodeIfPresent(secret, forKey: .secret)
        case .update(let before, let after, let fields, let secret, let secretChanged):
            try c.encode(before, forKey: .before)
            try c.encode(after, forKey: .after)
            try c.encode(fields, forKey: .fields)
            try c.encodeIfPresent(secret, forKey: .secret)
            try c.encode(secretChanged, forKey: .secretChanged)
        case .setSecret(let secret):
            try c.encodeIfPresent(secret, forKey: .secret)
        case .grant(let grants), .revoke(let grants):
            try c.encode(grants, forKey: .grants)
        case .delete(let before):
            try c.encode(before, forKey: .before)
        }
    }
}

extension Change {
    /// What identifies a change for comparing two plans: where, who, what, and every value it sends.
    public var signature: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let action = (try? encoder.encode(self.action)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let sink = (try? encoder.encode(delivery)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return "\(serverProject)\u{0}\(key)\u{0}\(serverID ?? "")\u{0}\(action)\u{0}\(sink)"
    }
}
