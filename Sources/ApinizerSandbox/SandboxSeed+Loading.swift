import Foundation
import Yams

extension SandboxSeed {
    /// The largest seed file read (a seed is configuration, not a data dump).
    static let maximumFileBytes = 16 * 1024 * 1024

    /// Reads a YAML (or JSON) seed file and checks it.
    ///
    /// - Parameter path: the file to read.
    /// - Returns: the seed, with `expireDate` values normalised to `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`.
    /// - Throws: `SandboxError` (`.invalidSeed`) naming the file and the key path, for an
    ///   unreadable file, bad YAML, an unknown key, a wrong type, or inconsistent data (a
    ///   credential in an unknown project, with an unknown role, a duplicate username, ...).
    public static func load(yamlFile path: String) throws -> SandboxSeed {
        let data: Data
        do {
            let url = URL(fileURLWithPath: path)
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
            guard size <= maximumFileBytes else {
                throw SandboxError(.invalidSeed, "\(path): the seed file is larger than \(maximumFileBytes / 1024 / 1024) MiB")
            }
            data = try Data(contentsOf: url)
        } catch let error as SandboxError {
            throw error
        } catch {
            throw SandboxError(.invalidSeed, "\(path): cannot read the seed file: \(error.localizedDescription)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw SandboxError(.invalidSeed, "\(path): the seed file is not valid UTF-8")
        }
        return try parse(yaml: text, source: path)
    }

    /// Parses and checks seed text (YAML or JSON); `source` names it in messages.
    ///
    /// - Throws: `SandboxError` (`.invalidSeed`), as `load(yamlFile:)`.
    public static func parse(yaml text: String, source: String = "seed") throws -> SandboxSeed {
        let seed: SandboxSeed
        do {
            // A document with nothing but comments is the default seed.
            guard let node = try Yams.compose(yaml: text) else { return SandboxSeed.default }
            seed = try YAMLDecoder().decode(SandboxSeed.self, from: node)
        } catch let error as DecodingError {
            throw SandboxError(.invalidSeed, "\(source): \(Self.describe(error))")
        } catch {
            throw SandboxError(.invalidSeed, "\(source): \(error)")
        }
        do {
            return try seed.validated()
        } catch {
            throw SandboxError(.invalidSeed, "\(source): \(error.message)")
        }
    }

    /// The seed with its credentials checked against its own catalog and normalised.
    ///
    /// - Throws: `SandboxError` (`.invalidSeed`) for the first problem found.
    public func validated() throws(SandboxError) -> SandboxSeed {
        for (key, list) in [("projects", projects), ("roles", roles), ("apiProxies", apiProxies),
                            ("apiProxyGroups", apiProxyGroups), ("gateways", gateways), ("tokens", tokens)] {
            if let index = list.firstIndex(where: { $0.isEmpty }) {
                throw SandboxError(.invalidSeed, "\(key)[\(index)]: a name can not be empty")
            }
        }
        if clients.keys.contains(where: \.isEmpty) || clients.values.contains(where: \.isEmpty) {
            throw SandboxError(.invalidSeed, "clients: client ids and secrets can not be empty")
        }
        guard tokenTTLSeconds >= 0 else {
            throw SandboxError(.invalidSeed, "tokenTTLSeconds: must be 0 or more, not \(tokenTTLSeconds)")
        }
        var catalog = self
        catalog.credentials = []
        let state = SandboxState(seed: catalog)
        var checked = self
        checked.credentials = try state.checkedSeedCredentials(credentials)
        return checked
    }

    /// `credentials[2].roleNameLists: unknown key ...`: a decoding error as one line.
    static func describe(_ error: DecodingError) -> String {
        func path(_ keys: [any CodingKey]) -> String {
            var text = ""
            for key in keys {
                if let index = key.intValue { text += "[\(index)]" } else { text += (text.isEmpty ? "" : ".") + key.stringValue }
            }
            return text.isEmpty ? "(top level)" : text
        }
        switch error {
        case .dataCorrupted(let context):
            return "\(path(context.codingPath)): \(context.debugDescription)"
        case .keyNotFound(let key, let context):
            return "\(path(context.codingPath + [key])): required key is missing"
        case .typeMismatch(let type, let context):
            return "\(path(context.codingPath)): expected \(Self.typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context.codingPath)): expected \(Self.typeName(type)), found null"
        @unknown default:
            return "\(error)"
        }
    }

    private static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Bool.Type: "true or false"
        case is Int.Type, is Double.Type, is UInt64.Type: "a number"
        case is [Any].Type: "a list"
        default: "a \(type)"
        }
    }
}
