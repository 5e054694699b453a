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
