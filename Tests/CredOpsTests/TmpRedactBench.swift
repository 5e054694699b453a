import CredOps
import Foundation
import Testing

@Suite struct TmpRedactBench {
    @Test func bench() {
        var secrets: [Secret] = []
        for i in 0..<10_000 { secrets.append(Secret("pw-\(i)-\(UInt64.random(in: 0...UInt64.max))")) }
        let t0 = ContinuousClock.now
        let r = Redactor(secrets: secrets)
        let t1 = ContinuousClock.now
        var text = ""
        for i in 0..<30_000 { text += "  ~ user-\(i)    update    description: \"some text here\" → \"other text\"\n" }
        let t2 = ContinuousClock.now
        let out = r.redact(text)
        let t3 = ContinuousClock.now
        print("FIGURE redactor build \(t1 - t0), text \(text.utf8.count) bytes redact \(t3 - t2), same=\(out == text)")
    }
}
