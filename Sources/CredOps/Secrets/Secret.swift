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
        return Fingerprint(digest: hmac.finalize())
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
    /// A digest as four words, with no allocation (state and plans hold one per credential,
    /// where its 64-digit text cost a 96-byte allocation each); any other text, as an older
    /// or damaged state may hold, as it is.
    private enum Storage: Hashable, Sendable {
        case digest(UInt64, UInt64, UInt64, UInt64)
        case text(String)
    }

    private let storage: Storage

    public init(hex: String) {
        storage = Self.words(hex).map { .digest($0.0, $0.1, $0.2, $0.3) } ?? .text(hex)
    }

    /// The fingerprint of a 32-byte digest.
    init<D: Sequence>(digest: D) where D.Element == UInt8 {
        var w: [UInt64] = [0, 0, 0, 0]
        var count = 0
        for byte in digest {
            if count < 32 { w[count / 8] = w[count / 8] << 8 | UInt64(byte) }
            count += 1
        }
        storage = count == 32 ? .digest(w[0], w[1], w[2], w[3]) : .text(Hex.encode(digest))
    }

    /// Lowercase hex, as state stores it.
    public var hex: String {
        switch storage {
        case .text(let text): return text
        case .digest(let a, let b, let c, let d):
            var bytes: [UInt8] = []
            bytes.reserveCapacity(32)
            for word in [a, b, c, d] { for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: word >> UInt64(shift))) } }
            return Hex.encode(bytes)
        }
    }

    /// Shown to people: the first 8 hex digits only.
    public var description: String { "hmac:" + hex.prefix(8) + "…" }

    /// Constant-time equality: fingerprints are compared without leaking how many leading bytes matched.
    public func matches(_ other: Fingerprint) -> Bool {
        if case .digest(let a0, let a1, let a2, let a3) = storage, case .digest(let b0, let b1, let b2, let b3) = other.storage {
            return (a0 ^ b0) | (a1 ^ b1) | (a2 ^ b2) | (a3 ^ b3) == 0
        }
        let a = Array(hex.utf8), b = Array(other.hex.utf8)
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// 64 lowercase hex digits as four words; nil for anything else.
    private static func words(_ text: String) -> (UInt64, UInt64, UInt64, UInt64)? {
        var w: [UInt64] = [0, 0, 0, 0]
        var count = 0
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
            default: return nil
            }
            guard count < 64 else { return nil }
            w[count / 16] = w[count / 16] << 4 | UInt64(v)
            count += 1
        }
        return count == 64 ? (w[0], w[1], w[2], w[3]) : nil
    }

    private enum CodingKeys: String, CodingKey { case hex }

    /// Coded as `{"hex": "…"}`, as before the words.
    public init(from decoder: any Decoder) throws {
        self.init(hex: try decoder.container(keyedBy: CodingKeys.self).decode(String.self, forKey: .hex))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(hex, forKey: .hex)
    }
}
