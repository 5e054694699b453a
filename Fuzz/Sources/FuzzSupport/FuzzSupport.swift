// Helpers shared by the fuzz targets: a reader that turns fuzz bytes into values, a check that
// traps with a message (libFuzzer saves the input as a crash), and the manifest / environment
// loading steps of `InputLoader`, driven in memory instead of through files.

@testable import CredOps
import ApinizerProvider
import Foundation

/// Stops the run when a property does not hold: libFuzzer reports a "deadly signal" and keeps
/// the input under `artifacts/`.
public func fuzzCheck(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                      file: StaticString = #fileID, line: UInt = #line) {
    if !condition() {
        let text = "FUZZ CHECK FAILED (\(file):\(line)): \(message())\n"
        FileHandle.standardError.write(Data(text.utf8))
        fatalError("fuzz property violated", file: file, line: line)
    }
}

/// A JSON-ish quoting of a string with every non-ASCII or control scalar as \u{...}, for messages.
public func visible(_ s: String) -> String {
    var out = "\""
    for u in s.unicodeScalars {
        if u.value >= 0x20 && u.value < 0x7F && u != "\"" && u != "\\" { out.unicodeScalars.append(u) } else { out += "\\u{\(String(u.value, radix: 16))}" }
    }
    return out + "\""
}

/// Consumes fuzz bytes front to back; once they run out every read returns zeros / empties, so
/// any input decodes to something.
public struct FuzzReader {
    private let bytes: [UInt8]
    private var index = 0

    public init(_ bytes: [UInt8]) { self.bytes = bytes }

    public var isAtEnd: Bool { index >= bytes.count }
    public var remaining: Int { max(0, bytes.count - index) }

    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    public mutating func bool() -> Bool { byte() & 1 == 1 }

    /// A value in `0..<bound` (bound ≤ 65536).
    public mutating func int(below bound: Int) -> Int {
        guard bound > 1 else { return 0 }
        let raw = bound <= 256 ? Int(byte()) : Int(byte()) << 8 | Int(byte())
        return raw % bound
    }

    public mutating func rest() -> [UInt8] {
        defer { index = bytes.count }
        return index < bytes.count ? Array(bytes[index...]) : []
    }

    /// Scalars a YAML or JSON writer has to get right: line breaks YAML knows besides \n
    /// (NEL, LS, PS), C1 controls, non-characters, BOM, combining marks, astral, ...
    public static let trickyScalars: [UInt32] = [
        0x85, 0x2028, 0x2029, 0x80, 0x9F, 0xA0, 0xAD, 0xFEFF, 0xFFFE, 0xFFFF, 0xFFFD, 0x301, 0x200B, 0x200D,
        0x1F600, 0x10FFFF, 0xE000, 0xD7FF, 0x3000, 0x1680, 0x202E, 0x0130, 0x00E9, 0x212A,
    ]

    /// Whole strings that YAML 1.1 / 1.2 readers are known to turn into something else.
    public static let trickyWords: [String] = [
        "no", "No", "NO", "yes", "on", "off", "y", "n", "true", "False", "null", "Null", "~", "", "0777", "0o17", "0x1F",
        "1e3", "1_000", ".5", "+1", "-1", "12:30", "1:20:30", ".inf", "-.Inf", ".NaN", "2001-12-14", "<<", "=", "- a",
        "-", "? x", ": x", "a: b", "a #b", "#x", "&a", "*a", "!x", "!!str", "|", ">", "'", "\"", "%YAML", "@x", "`x",
        "[a]", "{a: 1}", "a,b", "---", "...", " a", "a ", "\t", "a\nb", "a\r\nb", "\\", "\\n", "x:", "x\u{85}y",
        "x\u{2028}y", "a\u{2029}", "\u{FEFF}a", "é", "e\u{301}",
    ]

    /// A string of up to `maxLength` scalars, drawn from ASCII (controls included), the tricky
    /// scalars, any BMP or astral scalar, or (sometimes) one of the tricky words.
    public mutating func string(maxLength: Int = 24) -> String {
        let mode = byte()
        if mode >= 0xE0 {
            let word = Self.trickyWords[Int(mode) % Self.trickyWords.count]
            return mode & 1 == 0 ? word : word + string(maxLength: maxLength / 2)
        }
        let length = int(below: maxLength + 1)
        var s = String.UnicodeScalarView()
        for _ in 0..<length {
            guard !isAtEnd else { break }
            let b = byte()
            switch b {
            case 0..<0x80:
                s.append(Unicode.Scalar(b))
            case 0x80..<0xC0:
                let v = Self.trickyScalars[Int(b - 0x80) % Self.trickyScalars.count]
                s.append(Unicode.Scalar(v)!)
            case 0xC0..<0xF0:
                let v = UInt32(b & 0x0F) << 12 | UInt32(byte()) << 4 | UInt32(byte() & 0x0F)
                s.append(Unicode.Scalar(v) ?? "?")
            default:
                let v = 0x10000 + (UInt32(b & 0x0F) << 16 | UInt32(byte()) << 8 | UInt32(byte())) % 0x100000
                s.append(Unicode.Scalar(v) ?? "?")
            }
        }
        return String(s)
    }
}

/// A YAML double-quoted scalar that every YAML 1.1 / 1.2 reader reads back as exactly `text`:
/// printable ASCII as is, everything else as \xHH, \uHHHH or \UHHHHHHHH. Written here, apart
/// from the project's writer, as the reference the export round trip is judged against.
public func yamlQuoted(_ text: String) -> String {
    var out = "\""
    for u in text.unicodeScalars {
        switch u.value {
        case 0x22: out += "\\\""
        case 0x5C: out += "\\\\"
        case 0x20...0x7E: out.unicodeScalars.append(u)
        case 0...0xFF: out += "\\x" + hex(u.value, 2)
        case 0x100...0xFFFF: out += "\\u" + hex(u.value, 4)
        default: out += "\\U" + hex(u.value, 8)
        }
    }
    return out + "\""
}

private func hex(_ v: UInt32, _ width: Int) -> String {
    let h = String(v, radix: 16)
    return String(repeating: "0", count: max(0, width - h.count)) + h
}

/// The steps of `InputLoader.loadManifestFile` / `loadEnvironmentFile`, on bytes in memory.
public enum InMemoryLoader {
    public static let schemas: [String: ResourceSchema] = ["apinizer": ApinizerProvider.credentialSchema]
    /// A directory that does not exist, so that relative `fromFile` / `caFile` paths never reach a real file.
    public static let directory = "/nonexistent/credops-fuzz"

    /// Composes `bytes`; nil (and the error) when YAML refuses them.
    public static func compose(_ bytes: [UInt8], options: LoadOptions = LoadOptions()) -> Result<[YAMLNode], YAMLError> {
        do throws(YAMLError) {
            return .success(try YAMLComposer.compose(bytes, limits: options.limits))
        } catch {
            return .failure(error)
        }
    }

    /// As `loadManifestFile(path:explicit: true)`: every document parsed as a manifest.
    public static func manifests(_ documents: [YAMLNode], path: String, options: LoadOptions = LoadOptions(),
                                 schemas: [String: ResourceSchema] = InMemoryLoader.schemas) -> ([Manifest], [Diagnostic]) {
        guard !documents.isEmpty else { return ([], [.error("the file holds no manifest", at: SourceLocation(file: path, line: 1, column: 1))]) }
        _ = documents.map(InputLoader.looksLikeManifest)
        let reader = NodeReader(file: path)
        let parser = ManifestParser(reader: reader, schemas: schemas, options: options, directory: directory)
        let manifests = documents.compactMap { parser.parse($0) }
        return (manifests, reader.diagnostics)
    }

    /// As `loadEnvironmentFile(path:defaultName:)` for one composed document.
    public static func environment(_ document: YAMLNode, path: String, defaultName: String, options: LoadOptions = LoadOptions()) -> (EnvironmentConfig?, [Diagnostic]) {
        let reader = NodeReader(file: path)
        let parser = EnvironmentParser(reader: reader, options: options, directory: directory,
                                       providers: schemas.keys.sorted(), emulatorSettings: schemas.mapValues(\.emulatorSettings),
                                       defaultName: defaultName)
        let config = parser.parse(document)
        return (config, reader.diagnostics)
    }

    /// As `loadProfiles` for one file: each document a profile; one with any error is not used.
    public static func profiles(_ documents: [YAMLNode], path: String) -> (profiles: [ProviderProfile], diagnostics: [Diagnostic]) {
        let reader = NodeReader(file: path)
        let parser = ProfileParser(reader: reader, builtIn: Set(schemas.keys))
        var profiles: [ProviderProfile] = []
        for document in documents {
            let errorsBefore = reader.diagnostics.filter(\.isError).count
            guard let profile = parser.parse(document), reader.diagnostics.filter(\.isError).count == errorsBefore else { continue }
            if !profiles.contains(where: { $0.name == profile.name }) { profiles.append(profile) }
        }
        return (profiles, reader.diagnostics)
    }

    /// As `loadPolicies` for one file: a file with any error yields no policy.
    public static func policies(_ documents: [YAMLNode], path: String) -> (policies: [Policy], diagnostics: [Diagnostic]) {
        let reader = NodeReader(file: path)
        let parser = PolicyParser(reader: reader, schemas: schemas)
        let read = documents.flatMap { parser.parse($0) }
        return (reader.diagnostics.hasErrors ? [] : read, reader.diagnostics)
    }

    /// The checks `InputLoader.load` runs once every file is read.
    public static func crossChecks(manifests: [Manifest], environments: [EnvironmentConfig]) -> [Diagnostic] {
        CrossChecks(manifests: manifests, environments: environments, schemas: schemas, environmentsIncomplete: false).run()
    }

    /// A sandbox environment named `name` for the apinizer provider.
    public static func fakeEnvironment(_ name: String, provider: String = "apinizer") -> EnvironmentConfig {
        let location = SourceLocation(file: "environments/\(name).yaml", line: 1, column: 1)
        return EnvironmentConfig(name: EnvironmentName(name), file: location.file, location: location, provider: provider,
                                 endpoint: .sandbox(name), endpointLocation: location)
    }
}
