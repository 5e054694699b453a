import Crypto
import Foundation

/// A secret value (password, token, client secret) that never prints.
///
/// `"\(secret)"`, `dump(secret)` and `debugPrint(secret)` all show `(sensitive)`. The value is
/// taken out only by `reveal()`, and only where a request body or header is built.
public struct Secret: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let value: String

    public init(_ value: String) { self.value = value }

    public var description: String { "(sensitive)" }
    public var debugDescription: String { "(sensitive)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    public var isEmpty: Bool { value.isEmpty }

    /// The value itself. Call only where it goes on the wire (request body or header).
    public func reveal() -> String { value }

    /// `length` characters from [A-Za-z0-9], drawn from the system's CSPRNG (about 5.95 bits
    /// each: 32 characters carry 190 bits), safe in any file format, header or shell word.
    public static func random(length: Int) -> Secret {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789".utf8)
        var generator = SystemRandomNumberGenerator()
        var bytes: [UInt8] = []
        bytes.reserveCapacity(length)
        for _ in 0..<max(1, length) { bytes.append(alphabet[Int(UInt8.random(in: 0...61, using: &generator))]) }
        return Secret(String(decoding: bytes, as: UTF8.self))
    }

    /// HMAC-SHA256 of the value under `key`, bound to `context` so that one password used by two
    /// credentials gives two fingerprints. Hex encoded.
    public func fingerprint(key: FingerprintKey, context: String) -> Fingerprint {
        var hmac = key.hmac
        hmac.update(data: Array(context.utf8))
        hmac.update(data: [0])
        hmac.update(data: Array(value.utf8))
        return Fingerprint(hex: Hex.encode(hmac.finalize()))
    }

    /// Constant-time comparison, for tokens checked by the sandbox and the like: the time taken
    /// depends on the longer length only, never on where the values first differ.
    public func constantTimeEquals(_ other: Secret) -> Bool {
        Self.constantTimeEquals(Array(value.utf8), Array(other.value.utf8))
    }

    /// Byte strings compared over the full length of the longer one. A length difference is
    /// kept whole (not truncated to a byte), so lengths that differ by a multiple of 256 differ.
    public static func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt64(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            diff |= UInt64((i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0))
        }
        return diff == 0
    }
}

/// The HMAC-SHA256 fingerprint of a password as applied; never the password itself.
public struct Fingerprint: Hashable, Sendable, Codable, CustomStringConvertible {
    public let hex: String

    public init(hex: String) { self.hex = hex }

    /// Shown to people: the first 8 hex digits only.
    public var description: String { "hmac:" + hex.prefix(8) + "…" }

    /// Constant-time equality: fingerprints are compared without leaking how many leading bytes matched.
    public func matches(_ other: Fingerprint) -> Bool {
        let a = Array(hex.utf8), b = Array(other.hex.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }
}
