import Crypto

/// The HMAC key of password fingerprints (at least 32 random bytes). Prints as `(sensitive)`.
public struct FingerprintKey: Sendable, CustomStringConvertible, CustomReflectable {
    private let bytes: [UInt8]

    public init<D: Sequence>(bytes: D) where D.Element == UInt8 { self.bytes = Array(bytes) }

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
