import Crypto

/// Tokens and client secrets are kept and compared as SHA-256 digests: equal digests mean
/// equal values, and comparing two digests takes the same time wherever they differ.
enum TokenDigest {
    static func of(_ text: String) -> [UInt8] { Array(SHA256.hash(data: Array(text.utf8))) }

    /// Constant time over the full length of the longer value.
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        var diff = UInt64(truncatingIfNeeded: a.count ^ b.count)
        for i in 0..<max(a.count, b.count) {
            diff |= UInt64((i < a.count ? a[i] : 0) ^ (i < b.count ? b[i] : 0))
        }
        return diff == 0
    }
}
