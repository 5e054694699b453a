import Crypto
import Foundation

/// The HMAC key behind password fingerprints, kept apart from the state so that a copied state
/// cannot be used to test guesses of weak passwords.
public enum StateKey {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// `CREDOPS_STATE_KEY` when set and not empty (64 hex digits, or base64 of at least 32 bytes), else the key
    /// file, created with 32 random bytes (mode 0600, its directory 0700) when missing.
    public static func load(environment: [String: String], keyFile: String, createIfMissing: Bool) throws(Failure) -> FingerprintKey {
        // Set but empty (a CI secret that is not defined) counts as unset.
        if let text = environment["CREDOPS_STATE_KEY"], !text.isEmpty {
            return try parse(text.trimmingCharacters(in: .whitespacesAndNewlines), source: "CREDOPS_STATE_KEY")
        }
        if let data = FileManager.default.contents(atPath: keyFile) {
            guard data.count >= 32 else {
                throw Failure(description: "state key file \(keyFile) holds \(data.count) bytes; it needs at least 32 (delete it to start fresh: every password will be re-applied once)")
            }
            do { try SecureFiles.checkPrivate(keyFile) } catch { throw Failure(description: error.description) }
            return FingerprintKey(bytes: data)
        }
        guard createIfMissing else {
            throw Failure(description: "no state key: \(keyFile) does not exist and CREDOPS_STATE_KEY is not set")
        }
        let key = FingerprintKey.random()
        let bytes = key.withBytes { Data($0) }
        do {
            try SecureFiles.writeAtomically(bytes, to: keyFile, exclusive: true)
        } catch {
            // Another process created it first: use theirs.
            if let data = FileManager.default.contents(atPath: keyFile), data.count >= 32 { return FingerprintKey(bytes: data) }
            throw Failure(description: "cannot write the state key \(keyFile): \(error)")
        }
        return key
    }

    /// Whether the process runs in CI (`CI=true`, as GitHub Actions, GitLab CI and most others set).
    public static func isCI(_ environment: [String: String]) -> Bool {
        guard let value = environment["CI"]?.lowercased() else { return false }
        return !["", "0", "false", "no"].contains(value)
    }

    /// The directory of local state keys: `$XDG_CONFIG_HOME/credops/keys`, else
    /// `$HOME/.config/credops/keys`; nil without either.
    public static func keyDirectory(environment: [String: String]) -> String? {
        if let xdg = environment["XDG_CONFIG_HOME"], xdg.hasPrefix("/") { return xdg + "/credops/keys" }
        if let home = environment["HOME"], !home.isEmpty { return home + "/.config/credops/keys" }
        return nil
    }

    /// The file beside a local state that names its key (an id, not a secret).
    static func idFile(statePath: String) -> String { statePath + ".key-id" }

    /// Where the key of the SQLite state at `statePath` is, or would be: the key directory,
    /// under the id the state's `.key-id` file holds. Nil when the state has no id yet.
    public static func localKeyFile(statePath: String, environment: [String: String]) -> String? {
        guard let directory = keyDirectory(environment: environment),
              let data = FileManager.default.contents(atPath: idFile(statePath: statePath)),
              let id = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              id.count == 32, id.allSatisfy(\.isHexDigit) else { return nil }
        return directory + "/\(id).key"
    }

    /// The key of the SQLite state at `statePath`: `CREDOPS_STATE_KEY` when set, else a key
    /// file kept outside the state directory (in the user's config directory), created when
    /// missing. A key left beside the state by an earlier credops (`state.key`) is moved there:
    /// a cached or uploaded `.credops/` must not carry what it takes to test guesses of weak
    /// passwords against the fingerprints.
    ///
    /// - Parameter allowLocalKeyInCI: in CI (`CI=true`) a local key file is refused unless
    ///   this is true: CI runners keep nothing, so every run would make a new key and see every
    ///   password as changed; CI takes `CREDOPS_STATE_KEY` from its secret store.
    /// - Returns: the key, and notes for the user (a key moved).
    public static func loadLocal(statePath: String, environment: [String: String], allowLocalKeyInCI: Bool)
        throws(Failure) -> (key: FingerprintKey, notes: [String]) {
        if let text = environment["CREDOPS_STATE_KEY"], !text.isEmpty {
            return (try parse(text.trimmingCharacters(in: .whitespacesAndNewlines), source: "CREDOPS_STATE_KEY"), [])
        }
        if isCI(environment) && !allowLocalKeyInCI {
            throw Failure(description: "in CI (CI=\(environment["CI"] ?? "")) credops needs CREDOPS_STATE_KEY from the CI secret store, the same for every job (create one with `openssl rand -hex 32`); to keep a key file for this local state on the runner instead, pass --allow-local-key")
        }
        guard let directory = keyDirectory(environment: environment) else {
            throw Failure(description: "no place for the state key: HOME is not set; set CREDOPS_STATE_KEY (e.g. `openssl rand -hex 32`)")
        }
        let keyFile = try keyFile(statePath: statePath, directory: directory)
        var notes: [String] = []
        let legacy = ((statePath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("state.key")
        // Only a key an earlier credops made: this user's, 0600, beside a state that exists. A
        // key planted in an empty checkout would make fingerprints under a key others know.
        if !FileManager.default.fileExists(atPath: keyFile), isOwnPrivateFile(legacy), isOwnPrivateFile(statePath),
           let old = FileManager.default.contents(atPath: legacy), old.count >= 32 {
            do {
                try SecureFiles.writeAtomically(old, to: keyFile, exclusive: true)
            } catch {
                if !FileManager.default.fileExists(atPath: keyFile) { throw Failure(description: "cannot move the state key to \(keyFile): \(error)") }
            }
            if let moved = FileManager.default.contents(atPath: keyFile), moved == old { unlink(legacy) }
            notes.append("moved the fingerprint key from \(legacy) to \(keyFile): a key beside the state lets anyone with a copy of it test password guesses offline")
        }
        return (try load(environment: [:], keyFile: keyFile, createIfMissing: true), notes)
    }

    /// A regular file owned by this user that only this user can read or write.
    static func isOwnPrivateFile(_ path: String) -> Bool {
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        return info.st_mode & S_IFMT == S_IFREG && info.st_uid == geteuid() && info.st_mode & 0o077 == 0
    }

    /// The key file for `statePath` in `directory`, giving the state an id first if it has none.
    private static func keyFile(statePath: String, directory: String) throws(Failure) -> String {
        let idPath = idFile(statePath: statePath)
        if FileManager.default.contents(atPath: idPath) == nil {
            let id = FingerprintKey.random().withBytes { Hex.encode($0.prefix(16)) }
            do {
                try SecureFiles.writeAtomically(Data((id + "\n").utf8), to: idPath, exclusive: true)
            } catch {
                // Another process gave it one first; theirs is read below.
                if FileManager.default.contents(atPath: idPath) == nil { throw Failure(description: "cannot write \(idPath): \(error)") }
            }
        }
        guard let data = FileManager.default.contents(atPath: idPath),
              let id = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines),
              id.count == 32, id.allSatisfy(\.isHexDigit) else {
            throw Failure(description: "\(idPath) does not hold a state id (32 hex digits); delete it to give the state a new key (every password is then applied once more)")
        }
        return directory + "/\(id).key"
    }

    static func parse(_ text: String, source: String) throws(Failure) -> FingerprintKey {
        if text.count == 64, let bytes = hexBytes(text) { return FingerprintKey(bytes: bytes) }
        if let data = Data(base64Encoded: text), data.count >= 32 { return FingerprintKey(bytes: data) }
        throw Failure(description: "\(source) must be 64 hex digits or base64 of at least 32 random bytes (e.g. `openssl rand -hex 32`)")
    }

    private static func hexBytes(_ text: String) -> Data? {
        var data = Data()
        var chars = text.makeIterator()
        while let a = chars.next(), let b = chars.next() {
            guard let byte = UInt8(String([a, b]), radix: 16) else { return nil }
            data.append(byte)
        }
        return data
    }
}
