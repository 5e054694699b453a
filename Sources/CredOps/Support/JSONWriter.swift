import Foundation

/// Writes small JSON documents directly (request bodies): keys in the order given, strings
/// escaped as RFC 8259 says. Much cheaper than `JSONSerialization` on a hot path.
public struct JSONWriter {
    public enum Value {
        case string(String)
        case bool(Bool)
        case null
        case strings([String])
        case objects([[(String, Value)]])
    }

    public static func object(_ fields: [(String, Value)]) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(256)
        write(fields, into: &out)
        return Data(out)
    }

    /// A top-level list of objects.
    public static func array(_ objects: [[(String, Value)]]) -> Data {
        var out: [UInt8] = []
        out.reserveCapacity(64 * max(1, objects.count))
        write(objects, into: &out)
        return Data(out)
    }

    private static func write(_ objects: [[(String, Value)]], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "["))
        for (i, object) in objects.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            write(object, into: &out)
        }
        out.append(UInt8(ascii: "]"))
    }

    private static func write(_ fields: [(String, Value)], into out: inout [UInt8]) {
        out.append(UInt8(ascii: "{"))
        for (i, (key, value)) in fields.enumerated() {
            if i > 0 { out.append(UInt8(ascii: ",")) }
            string(key, into: &out)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .string(let s): string(s, into: &out)
            case .bool(let b): out += Array((b ? "true" : "false").utf8)
            case .null: out += Array("null".utf8)
            case .strings(let items):
                out.append(UInt8(ascii: "["))
                for (j, item) in items.enumerated() {
                    if j > 0 { out.append(UInt8(ascii: ",")) }
                    string(item, into: &out)
                }
                out.append(UInt8(ascii: "]"))
            case .objects(let objects):
                write(objects, into: &out)
            }
        }
        out.append(UInt8(ascii: "}"))
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private static func string(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in s.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out += [92, 34]
            case UInt8(ascii: "\\"): out += [92, 92]
            case 0x0A: out += [92, UInt8(ascii: "n")]
            case 0x0D: out += [92, UInt8(ascii: "r")]
            case 0x09: out += [92, UInt8(ascii: "t")]
            case 0x00..<0x20, 0x7F:
                out += [92, UInt8(ascii: "u"), 48, 48, hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
            default:
                out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }
}
