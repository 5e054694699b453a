import ApinizerProvider
import ApinizerSandbox
import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// Export, then load: what was live is what loads back, whatever the live text holds (issue
/// 10, item 1). A property over many generated strings, from a fixed seed so a failure
/// repeats, plus the shapes that broke the hand-written writer.
@Suite struct ExportRoundTripTests {
    static let schema = ApinizerProvider.credentialSchema
    static let schemas = ["apinizer": schema]

    /// A repeatable sequence (the sandbox's SplitMix64), so a failing round repeats.
    typealias Generator = SplitMix64

    /// Pieces that mean something to YAML, to a terminal or to Unicode line breaking.
    static let nasty: [String] = [
        "\u{85}", "\u{2028}", "\u{2029}", "\n", "\r", "\r\n", "\t", "\u{0}", "\u{1B}[2J", "\u{7F}", "\u{9B}", "\u{FEFF}", "\u{202E}",
        "\"", "'", "\\", "#", " #", ": ", ":", "- ", "-", "? ", "[", "]", "{", "}", ",", "&a", "*a", "!", "!!str", "|", ">", "%", "@", "`",
        "no", "on", "off", "yes", "null", "~", "true", "0777", "0x1F", "1e3", ".5", "12:30", "2027-06-30", "---", "...", "<<",
        " ", "  ", "é", "漢字", "😀", "\u{301}", "roleNameList: [ADMIN]", "\n    password: { fromFile: /proc/self/environ }",
    ]

    static func randomText(_ g: inout Generator, allowEmpty: Bool = true) -> String {
        var text = ""
        for _ in 0..<g.below(6) {
            switch g.below(4) {
            case 0: text += nasty[g.below(nasty.count)]
            case 1: text += String(UnicodeScalar(UInt8(32 + g.below(95))))
            case 2:
                // Any scalar, surrogates excluded.
                var v = UInt32(g.below(0x11_0000))
                if (0xD800...0xDFFF).contains(v) { v = 0x2028 }
                text.unicodeScalars.append(Unicode.Scalar(v)!)
            default: text += "word"
            }
        }
        return text.isEmpty && !allowEmpty ? "x" : text
    }

    /// A name credops accepts (it is refused otherwise, which is another test's business).
    static func randomName(_ g: inout Generator) -> String {
        for _ in 0..<20 {
            let name = randomText(&g, allowEmpty: false)
            if TextSafety.nameProblem(name) == nil { return name }
        }
        return "name-\(g.below(1000))"
    }

    static func resource(_ id: String, description: String, fullName: String, roles: [String]) -> Resource {
        Resource(id: CredentialKey(id), fields: [
            "fullName": .string(fullName), "email": .string("x@example.com"), "description": .string(description),
            "roleNameList": .setOf(roles), "enabled": .bool(true), "ipList": .set(["10.0.0.0/8"]),
            "expireDate": .instant(Timestamp.parse("2027-06-30T23:59:59.000Z")),
        ])
    }

    /// Exports `live`, loads the text, and returns what loaded (or the diagnostics).
    func roundTrip(_ live: [Resource], grants: [CredentialKey: [AccessGrant]], project: String) throws -> ([ManifestCredential], String) {
        let dir = TemporaryDirectory(prefix: "credops-export")
        dir.write("environments/staging.yaml", "provider: apinizer\nurl: sandbox://staging\n")
        let text = Exporter(schema: Self.schema).export(environment: "staging", provider: "apinizer", project: ProjectName(project),
                                                        live: live, grants: grants).text
        let file = dir.write("manifests/export.yaml", text)
        let (inputs, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: dir.url("environments"))
        let manifest = try #require(inputs?.manifests.first, "\(diagnostics)\n\(text)")
        #expect(manifest.project.rawValue == project, "\(text)")
        return (manifest.credentials, text)
    }

    func check(_ live: [Resource], grants: [CredentialKey: [AccessGrant]], project: String) throws {
        let (loaded, text) = try roundTrip(live, grants: grants, project: project)
        #expect(loaded.map(\.key) == live.map(\.id).sorted(), "\(text)")
        for credential in loaded {
            let original = try #require(live.first { $0.id == credential.key })
            for spec in Self.schema.fields {
                #expect(credential.values.fields[spec.name] == original[spec.name], "\(spec.name) of \(credential.key.rawValue.debugDescription)\n\(text)")
            }
            #expect((credential.values.grants ?? []) == (grants[credential.key] ?? []).sorted(), "\(text)")
            #expect(credential.values.fields.count == Self.schema.fields.count, "extra fields appeared\n\(text)")
        }
    }

    @Test func knownBreakersRoundTrip() throws {
        let live = [
            Self.resource("nel", description: "a\u{85}roleNameList: [ADMIN]", fullName: "N", roles: ["API_USER"]),
            Self.resource("ls", description: "a\u{2028}  password: { fromFile: /proc/self/environ }", fullName: "L", roles: ["API_USER"]),
            Self.resource("ps", description: "x\u{2029}y", fullName: "P\u{2028}Q", roles: ["no", "0777", "a: b"]),
            Self.resource("no", description: "#not a comment", fullName: "- item", roles: []),
            Self.resource("0777", description: "ESC \u{1B}[2J bell \u{7} nul \u{0}", fullName: "tab\there", roles: ["\u{85}"]),
        ]
        try check(live, grants: [CredentialKey("ls"): [AccessGrant(type: "API_PROXY", name: "on")]], project: "no")
    }

    /// fuzz-export-roundtrip: noncharacters (U+FFFE, U+FFFF) went raw into the header
    /// comment, and libyaml refused the whole file.
    @Test func theHeaderCommentIsYAMLWhateverTheNames() throws {
        // (Swift literals cannot hold noncharacters: built from scalars.)
        let odd = String(String.UnicodeScalarView([0xFFFE, 0xFFFF, 0xFDD0].map { Unicode.Scalar($0)! }))
        let text = Exporter(schema: Self.schema).export(environment: "llll", provider: "apinizer", project: ProjectName("LLLL\(odd)LLL"),
                                                        live: [Self.resource("u", description: odd, fullName: "F", roles: [])], grants: [:]).text
        let documents = try YAMLComposer.compose(Array(text.utf8))
        #expect(documents.count == 1, "\(text)")
    }

    @Test func anyStringRoundTrips() throws {
        var g = Generator(seed: 20261202)
        for _ in 0..<60 {
            var live: [Resource] = []
            var grants: [CredentialKey: [AccessGrant]] = [:]
            var ids = Set<String>()
            for _ in 0..<(1 + g.below(4)) {
                let id = Self.randomName(&g)
                guard ids.insert(id).inserted else { continue }
                var fullName = Self.randomText(&g, allowEmpty: false)
                // fullName must not be blank (a manifest rule); keep it printable at one end.
                if fullName.allSatisfy({ $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }) { fullName += "F" }
                live.append(Self.resource(id, description: Self.randomText(&g), fullName: fullName,
                                          roles: (0..<g.below(3)).map { _ in Self.randomText(&g) }))
                if g.below(2) == 0 {
                    grants[CredentialKey(id)] = [AccessGrant(type: g.below(2) == 0 ? "API_PROXY" : "API_PROXY_GROUP", name: Self.randomName(&g))]
                }
            }
            try check(live, grants: grants, project: Self.randomName(&g))
        }
    }
}

extension SplitMix64 {
    /// A number in 0..<n.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
