import Crypto

/// The HMAC key of password fingerprints (at least 32 random bytes). Prints as `(sensitive)`.
public struct FingerprintKey: Sendable, CustomStringConvertible, CustomReflectable {
    private let bytes: [UInt8]
    private let prepared: Prepared

    /// An HMAC already keyed (its inner and outer pads hashed), copied for each fingerprint.
    /// Invariant: never mutated after init; copies of `HMAC` are copy-on-write, so sharing is safe.
    private final class Prepared: @unchecked Sendable {
        let hmac: HMAC<SHA256>
        init(_ bytes: [UInt8]) { hmac = HMAC<SHA256>(key: SymmetricKey(data: bytes)) }
    }

    public init<D: Sequence>(bytes: D) where D.Element == UInt8 {
        self.bytes = Array(bytes)
        self.prepared = Prepared(self.bytes)
    }

    /// A fresh HMAC-SHA256 under this key.
    var hmac: HMAC<SHA256> { prepared.hmac }

    /// A new random 256-bit key.
    public static func random() -> FingerprintKey {
        FingerprintKey(bytes: SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) })
    }

    var symmetricKey: SymmetricKey { SymmetricKey(data: bytes) }

    public var byteCount: Int { bytes.count }
    public var description: String { "(sensitive)" }
    public var customMirror: Mirror { Mirror(self, children: [], displayStyle: .struct) }

    /// The raw bytes, to write the key file.
    public func withBytes<R>(_ body: ([UInt8]) throws -> R) rethrows -> R { try body(bytes) }
}
