import Foundation

/// The value of one credential field, in the few shapes credential APIs use.
///
/// Values are kept canonical (sets sorted and without duplicates, instants in whole
/// milliseconds) so that plain equality is the comparison the planner needs.
public enum FieldValue: Hashable, Sendable {
    case string(String)
    case bool(Bool)
    /// A list the server treats as a set; sorted, unique.
    case set([String])
    /// A point in time in milliseconds since 1970, or nil for "never".
    case instant(Int64?)

    /// Builds a canonical set value from any list.
    public static func setOf<S: Sequence>(_ items: S) -> FieldValue where S.Element == String {
        .set(Array(Set(items)).sorted())
    }

    /// An unambiguous text form for digests: cheap, and different values never collide.
    public var canonicalText: String {
        switch self {
        case .string(let s): return "s" + s
        case .bool(let b): return b ? "b1" : "b0"
        case .set(let items): return "l" + items.joined(separator: "\u{1}")
        case .instant(let ms): return ms.map { "i\($0)" } ?? "i-"
        }
    }

    /// For people: `"text"`, `true`, `[a, b]`, `2027-06-30T23:59:59.000Z`, `never`.
    public var display: String {
        switch self {
        case .string(let s): return s.isEmpty ? "\"\"" : Self.quoteIfNeeded(s)
        case .bool(let b): return b ? "true" : "false"
        case .set(let items): return "[" + items.map(TextSafety.escaped).joined(separator: ", ") + "]"
        case .instant(let ms): return ms.map(Timestamp.format) ?? "never"
        }
    }

    private static func quoteIfNeeded(_ s: String) -> String {
        let plain = s.unicodeScalars.allSatisfy { $0.properties.isAlphabetic || "0123456789-_.@/:".unicodeScalars.contains($0) }
        if plain { return s }
        var escaped = "\""
        for ch in s.unicodeScalars {
            switch ch {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case "\n": escaped += "\\n"
            case "\t": escaped += "\\t"
            default:
                // Control, line-separator and bidi characters are shown, never acted on.
                if TextSafety.isUnsafe(ch) { escaped += TextSafety.escaped(String(ch)) } else { escaped.unicodeScalars.append(ch) }
            }
        }
        return escaped + "\""
    }
}

/// Strict ISO 8601 timestamps: `2027-06-30T23:59:59Z`, `2027-06-30T23:59:59.000Z`,
/// `2027-06-30T23:59:59+02:00`. A date without a time or zone is refused: an expiry must be an
/// instant, not "midnight somewhere".
public enum Timestamp {
    /// Parses a strict ISO 8601 date-time with a zone, to milliseconds since 1970.
    public static func parse(_ text: String) -> Int64? {
        let b = Array(text.utf8)
        func digits(_ start: Int, _ count: Int) -> Int? {
            guard start + count <= b.count else { return nil }
            var v = 0
            for i in start..<(start + count) {
                guard b[i] >= 48 && b[i] <= 57 else { return nil }
                v = v * 10 + Int(b[i] - 48)
            }
            return v
        }
        guard b.count >= 20,
              let year = digits(0, 4), b[4] == UInt8(ascii: "-"),
              let month = digits(5, 2), b[7] == UInt8(ascii: "-"),
              let day = digits(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
              let hour = digits(11, 2), b[13] == UInt8(ascii: ":"),
              let minute = digits(14, 2), b[16] == UInt8(ascii: ":"),
              let second = digits(17, 2)
        else { return nil }
        var i = 19
        var millis = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < b.count, b[i] >= 48, b[i] <= 57 { i += 1 }
            let count = i - start
            guard count >= 1 && count <= 9 else { return nil }
            // Keep milliseconds; finer digits must be zero, or the instant could not round-trip.
            for k in 0..<count {
                let d = Int(b[start + k] - 48)
                if k < 3 { millis = millis * 10 + d } else if d != 0 { return nil }
            }
            // (A range count..<3 would trap for 4 to 9 digits: found by fuzzing.)
            if count < 3 { for _ in count..<3 { millis *= 10 } }
        }
        guard i < b.count else { return nil }
        var offsetSeconds = 0
        if b[i] == UInt8(ascii: "Z") || b[i] == UInt8(ascii: "z") {
            i += 1
        } else if b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-") {
            let sign = b[i] == UInt8(ascii: "+") ? 1 : -1
            guard let oh = digits(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"), let om = digits(i + 4, 2),
                  oh <= 23, om <= 59 else { return nil }
            offsetSeconds = sign * (oh * 3600 + om * 60)
            i += 6
        } else {
            return nil
        }
        guard i == b.count else { return nil }
        guard (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute), (0...59).contains(second),
              day >= 1, day <= daysInMonth(year: year, month: month) else { return nil }
        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetSeconds
        // In UTC the instant must still be a four-digit year, 0001 to 9999, or it could not be
        // written back as it was read (0000-01-01T00:00:00+01:00 is in year -1).
        guard seconds >= daysFromCivil(year: 1, month: 1, day: 1) * 86_400,
              seconds < daysFromCivil(year: 10_000, month: 1, day: 1) * 86_400 else { return nil }
        return Int64(seconds) * 1000 + Int64(millis)
    }

    /// Formats milliseconds since 1970 as `yyyy-MM-ddTHH:mm:ss.SSSZ` (UTC), the API's own format.
    public static func format(_ millis: Int64) -> String {
        var seconds = millis / 1000
        var ms = Int(millis % 1000)
        if ms < 0 { ms += 1000; seconds -= 1 }
        var days = Int(seconds / 86_400)
        var rem = Int(seconds % 86_400)
        if rem < 0 { rem += 86_400; days -= 1 }
        let (y, m, d) = civilFromDays(days)
        var out: [UInt8] = []
        out.reserveCapacity(24)
        func put(_ value: Int, _ width: Int) {
            var digits = [UInt8](repeating: 48, count: width)
            var v = abs(value)
            for i in stride(from: width - 1, through: 0, by: -1) {
                digits[i] = UInt8(48 + v % 10)
                v /= 10
            }
            out += digits
        }
        put(y, 4); out.append(45); put(m, 2); out.append(45); put(d, 2); out.append(84)
        put(rem / 3600, 2); out.append(58); put((rem % 3600) / 60, 2); out.append(58); put(rem % 60, 2)
        out.append(46); put(ms, 3); out.append(90)
        return String(decoding: out, as: UTF8.self)
    }

    /// The date part only, for short displays: `2027-06-30`.
    public static func formatDate(_ millis: Int64) -> String { String(format(millis).prefix(10)) }

    static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    // Howard Hinnant's days-from-civil algorithms: exact for the proleptic Gregorian calendar.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    static func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
        let z = z0 + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let y = yoe + era * 400
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (m <= 2 ? y + 1 : y, m, d)
    }
}
