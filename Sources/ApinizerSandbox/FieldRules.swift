#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The format rules of credential fields, shared by the API's validation and seed checks.
enum FieldRules {
    /// True when `email` looks like an address: one `@`, a local part without spaces and a
    /// domain of non-empty dot-separated labels (as lax as Bean Validation's `@Email`, which
    /// accepts `user@localhost`).
    static func isEmail(_ email: String) -> Bool {
        let parts = email.split(separator: "@", omittingEmptySubsequences: false)
        guard parts.count == 2 else { return false }
        let local = parts[0], domain = parts[1]
        guard !local.isEmpty, local.count <= 64, !domain.isEmpty, domain.count <= 255 else { return false }
        guard !local.hasPrefix("."), !local.hasSuffix("."), !local.contains("..") else { return false }
        let forbiddenInLocal: Set<Character> = [" ", "\t", "\n", "\r", "(", ")", ",", ":", ";", "<", ">", "[", "\\", "]", "\""]
        guard !local.contains(where: { forbiddenInLocal.contains($0) || $0.isNewline }) else { return false }
        for label in domain.split(separator: ".", omittingEmptySubsequences: false) {
            guard !label.isEmpty, label.count <= 63, !label.hasPrefix("-"), !label.hasSuffix("-") else { return false }
            guard label.allSatisfy({ $0 == "-" || $0.isLetter || $0.isNumber }) else { return false }
        }
        return true
    }

    /// True for a single IPv4 or IPv6 address, or a CIDR range (`10.0.0.0/8`, `2001:db8::/32`).
    static func isIPOrCIDR(_ entry: String) -> Bool {
        let pieces = entry.split(separator: "/", omittingEmptySubsequences: false)
        guard pieces.count == 1 || pieces.count == 2 else { return false }
        let address = String(pieces[0])
        guard let family = addressFamily(address) else { return false }
        guard pieces.count == 2 else { return true }
        let prefix = pieces[1]
        guard !prefix.isEmpty, prefix.count <= 3, prefix.allSatisfy({ $0.isASCII && $0.isNumber }), let bits = Int(prefix) else { return false }
        return bits <= (family == AF_INET ? 32 : 128)
    }

    /// `AF_INET` or `AF_INET6` when `address` is a literal address of that family.
    private static func addressFamily(_ address: String) -> Int32? {
        guard !address.isEmpty, address.count <= 45, !address.contains("%") else { return nil }
        var buffer = [UInt8](repeating: 0, count: 16)
        if address.contains(":") {
            return inet_pton(AF_INET6, address, &buffer) == 1 ? AF_INET6 : nil
        }
        return inet_pton(AF_INET, address, &buffer) == 1 ? AF_INET : nil
    }
}
