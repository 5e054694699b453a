import Crypto
@testable import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// Values held once per credential are kept small (issue 15, memory at 10,000 × 3), and still
/// mean and print exactly what they did.
@Suite struct CompactValuesTests {
    @Test func aFingerprintHeldAsWordsReadsBackAsTheSameHex() throws {
        let bytes = (0..<32).map { UInt8($0 * 7 % 251) }
        let key = FingerprintKey(bytes: bytes)
        let made = Secret("correct horse").fingerprint(key: key, context: "dev\u{0}payments\u{0}alice")
        var hmac = HMAC<SHA256>(key: SymmetricKey(data: bytes))
        hmac.update(data: Array("dev\u{0}payments\u{0}alice".utf8) + [0] + Array("correct horse".utf8))
        let expected = Hex.encode(hmac.finalize())
        #expect(made.hex == expected)
        #expect(Fingerprint(hex: expected) == made)
        #expect(Fingerprint(hex: expected).hashValue == made.hashValue)
        #expect(made.matches(Fingerprint(hex: expected)))
        #expect(made.description == "hmac:" + expected.prefix(8) + "…")
        // One digit off, in the first and in the last word.
        for index in [0, 63] {
            var digits = Array(expected.utf8)
            digits[index] = digits[index] == UInt8(ascii: "0") ? UInt8(ascii: "1") : UInt8(ascii: "0")
            let other = Fingerprint(hex: String(decoding: digits, as: UTF8.self))
            #expect(!made.matches(other))
            #expect(made != other)
        }
    }

    @Test(arguments: ["ab", "", "AB" + String(repeating: "0", count: 62), String(repeating: "0", count: 65), String(repeating: "g", count: 64)])
    func anyOtherTextIsKeptAsItIs(_ text: String) throws {
        let fingerprint = Fingerprint(hex: text)
        #expect(fingerprint.hex == text)
        #expect(fingerprint.matches(Fingerprint(hex: text)))
        #expect(!fingerprint.matches(Fingerprint(hex: text + "0")))
        let round = try JSONDecoder().decode(Fingerprint.self, from: JSONEncoder().encode(fingerprint))
        #expect(round == fingerprint && round.hex == text)
    }

    @Test func aFingerprintIsCodedAsBefore() throws {
        let hex = String(repeating: "0123456789abcdef", count: 4)
        let data = try JSONEncoder().encode(Fingerprint(hex: hex))
        #expect(String(decoding: data, as: UTF8.self) == "{\"hex\":\"\(hex)\"}")
        #expect(try JSONDecoder().decode(Fingerprint.self, from: data).hex == hex)
    }

    /// The live digest hashes its text in blocks as it goes: the same digest as the whole text
    /// hashed at once, across block boundaries.
    @Test(arguments: [0, 1, 700, 3000])
    func theDigestHashedInBlocksIsTheDigestOfTheWholeText(_ credentials: Int) {
        var digester = PlanDigest.Digester()
        var whole = ""
        for i in 0..<credentials {
            let piece = "R\(i)\u{0}label=Some label \(i)\u{0}tags=[\"a\",\"b\"]\n"
            digester.add(piece)
            whole += piece
        }
        #expect(digester.finish() == PlanDigest.hex(whole))
    }

    /// A file is read into a buffer of its own size, not of the limit (a zeroed 4 MiB buffer
    /// per file read, kept by the bytes returned); the limit still holds to the byte.
    @Test func aFileIsReadIntoABufferOfItsOwnSize() throws {
        let dir = TemporaryDirectory()
        let small = dir.write("small.yaml", "project: payments\n")
        guard case .success(let read) = SecureFiles.readRegularFile(small, limit: 4 << 20) else { Issue.record("not read"); return }
        #expect(String(decoding: read.bytes, as: UTF8.self) == "project: payments\n")
        #expect(read.bytes.capacity < 4096)
        let exact = dir.write("exact.bin", data: Data(repeating: 65, count: 1000))
        guard case .success(let whole) = SecureFiles.readRegularFile(exact, limit: 1000) else { Issue.record("not read"); return }
        #expect(whole.bytes.count == 1000)
        guard case .failure(.tooLarge(let size)) = SecureFiles.readRegularFile(exact, limit: 999) else { Issue.record("not refused"); return }
        #expect(size == 1000)
        let empty = dir.write("empty.yaml", "")
        guard case .success(let none) = SecureFiles.readRegularFile(empty, limit: 10) else { Issue.record("not read"); return }
        #expect(none.bytes.isEmpty)
    }

    /// Rows that repeat an access list or a run's id share one decoded value; rows that differ
    /// each get their own, past the bound of values kept.
    @Test func rowsShareTheValuesTheyRepeat() {
        var shared = StateCoding.SharedValues()
        func row(_ key: String, grants: String, run: String) -> [StateCoding.Value?] {
            [.text("payments"), .text(key), nil, nil, .text(grants), nil, .text("create"), .text(run), .text("2026-12-03T10:00:00.000Z"),
             nil, nil, .text("[]")]
        }
        let list = #"[{"name":"orders","type":"API"}]"#
        var records: [ManagedCredential] = []
        for i in 0..<600 {
            records.append(StateCoding.managed(from: row("u\(i)", grants: i % 2 == 0 ? list : "[]", run: i < 300 ? "run-a-0001" : "run-\(i)-long-enough"),
                                               environment: "dev", shared: &shared))
        }
        #expect(records[0].grants == [AccessGrant(type: "API", name: "orders")])
        #expect(records[1].grants.isEmpty)
        #expect(records[598].grants == records[0].grants)
        #expect(records[299].lastRunID == "run-a-0001")
        #expect(records[599].lastRunID == "run-599-long-enough")
        // Each row reads as it does alone.
        for (i, record) in records.enumerated() {
            let alone = StateCoding.managed(from: row("u\(i)", grants: i % 2 == 0 ? list : "[]", run: i < 300 ? "run-a-0001" : "run-\(i)-long-enough"),
                                            environment: "dev")
            #expect(record == alone)
        }
    }
}
