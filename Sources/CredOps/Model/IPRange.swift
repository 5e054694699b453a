import Foundation

/// An IP address or CIDR range, parsed strictly and printed canonically (`10.0.0.0/8`, `2001:db8::/32`).
public struct IPRange: Hashable, Sendable, CustomStringConvertible {
    public enum Family: Sendable { case v4, v6 }

    public var family: Family
    /// 4 or 16 bytes.
    public var bytes: [UInt8]
    /// nil for a single address.
    public var prefixLength: Int?

    /// Parses `a.b.c.d`, `a.b.c.d/n`, an IPv6 address, or IPv6 `/n`. Leading zeros in IPv4 octets
    /// are refused (`010.0.0.1` would mean 8 to some parsers and 10 to others).
    public static func parse(_ text: String) -> IPRange? {
        if let v4 = parseIPv4(Array(text.utf8)) { return v4 }
        guard text.utf8.contains(UInt8(ascii: ":")) else { return nil }
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 1 || parts.count == 2, !parts[0].isEmpty else { return nil }
        let address = String(parts[0])
        var range: IPRange
        if address.utf8.contains(UInt8(ascii: ":")) {
            var raw = in6_addr()
            guard inet_pton(AF_INET6, address, &raw) == 1 else { return nil }
            range = IPRange(family: .v6, bytes: withUnsafeBytes(of: raw) { Array($0) }, prefixLength: nil)
        } else {
            let octets = address.split(separator: ".", omittingEmptySubsequences: false)
            guard octets.count == 4 else { return nil }
            var bytes: [UInt8] = []
            for octet in octets {
                guard !octet.isEmpty, octet.count <= 3, octet.allSatisfy(\.isASCIIDigit),
                      !(octet.count > 1 && octet.first == "0"), let v = UInt8(octet) else { return nil }
                bytes.append(v)
            }
            range = IPRange(family: .v4, bytes: bytes, prefixLength: nil)
        }
        if parts.count == 2 {
            let p = parts[1]
            guard !p.isEmpty, p.count <= 3, p.allSatisfy(\.isASCIIDigit), !(p.count > 1 && p.first == "0"),
                  let n = Int(p), n <= range.bytes.count * 8 else { return nil }
            range.prefixLength = n
        }
        return range
    }

    /// `a.b.c.d` or `a.b.c.d/n` on bytes: decimal octets 0-255 without leading zeros.
    static func parseIPv4(_ b: [UInt8]) -> IPRange? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(4)
        var i = 0
        for part in 0..<4 {
            let start = i
            var value = 0
            while i < b.count, b[i] >= 48, b[i] <= 57, i - start < 3 {
                value = value * 10 + Int(b[i] - 48)
                i += 1
            }
            let length = i - start
            guard length > 0, value <= 255, !(length > 1 && b[start] == 48) else { return nil }
            bytes.append(UInt8(value))
            if part < 3 {
                guard i < b.count, b[i] == UInt8(ascii: ".") else { return nil }
                i += 1
            }
        }
        var range = IPRange(family: .v4, bytes: bytes, prefixLength: nil)
        if i == b.count { return range }
        guard b[i] == UInt8(ascii: "/") else { return nil }
        i += 1
        let start = i
        var prefix = 0
        while i < b.count, b[i] >= 48, b[i] <= 57, i - start < 2 {
            prefix = prefix * 10 + Int(b[i] - 48)
            i += 1
        }
        guard i == b.count, i > start, prefix <= 32, !(i - start > 1 && b[start] == 48) else { return nil }
        range.prefixLength = prefix
        return range
    }

    /// True when a CIDR range has bits set after its prefix (`10.1.2.3/8`).
    public var hasHostBits: Bool { networkAddress != self }

    /// The range with the bits after the prefix cleared.
    public var networkAddress: IPRange {
        guard let prefixLength else { return self }
        var copy = self
        for i in 0..<bytes.count {
            let bitsHere = max(0, min(8, prefixLength - i * 8))
            let mask: UInt8 = bitsHere == 0 ? 0 : UInt8(truncatingIfNeeded: 0xFF << (8 - bitsHere))
            copy.bytes[i] &= mask
        }
        return copy
    }

    public var description: String {
        var text: String
        switch family {
        case .v4:
            text = bytes.map(String.init).joined(separator: ".")
        case .v6:
            var raw = in6_addr()
            withUnsafeMutableBytes(of: &raw) { dst in dst.copyBytes(from: bytes) }
            var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
            inet_ntop(AF_INET6, &raw, &buffer, socklen_t(buffer.count))
            text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
        if let prefixLength { text += "/\(prefixLength)" }
        return text
    }
}

extension Character {
    var isASCIIDigit: Bool { isASCII && isNumber }
}
