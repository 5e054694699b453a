// fuzz-saved-plan: bytes -> SavedPlan.read; when a plan decodes: verify(with:) (what
// `apply --plan` does with a file it did not write), staleness against itself, json(), read back,
// json() again, and signed(with:) -> verify(with:) through a file round trip.
//
// Checks: nothing crashes or takes > 1 s; what read accepts, json() writes (non-empty) and read
// accepts again; decode(encode(x)) encodes to the very same bytes; a plan compared with itself
// (same files) is not stale when its environment names are unique; a plan signed under a key
// verifies under that key (also after json() and read), and not under another key.

@testable import CredOps
import FuzzSupport
import Foundation

// MARK: - The saved-plan codec: the ONE place to adapt when SavedPlan changes (e.g. an HMAC key)

/// The key plans are signed and verified with, and another one a plan must not verify under.
private let planKey = FingerprintKey(bytes: Array(repeating: UInt8(7), count: 32))
private let otherKey = FingerprintKey(bytes: Array(repeating: UInt8(8), count: 32))

/// Reads a saved plan (`read` takes no key: the signature is checked apart, by `verify(with:)`).
private func readPlan(_ data: Data) throws -> SavedPlan { try SavedPlan.read(data) }

/// Writes a saved plan.
private func writePlan(_ plan: SavedPlan) -> Data { plan.json() }

// MARK: -

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let input = Data(bytes: data, count: size)
    guard let saved = try? readPlan(input) else { return 0 }

    // What apply --plan does first with a plan file of unknown origin: must not crash.
    _ = saved.verify(with: planKey)

    // Against itself: same plan, same files.
    let names = saved.plan.environments.map(\.environment)
    let reasons = saved.staleness(current: saved.plan, files: saved.inputs.files)
    if Set(names).count == names.count {
        fuzzCheck(reasons.isEmpty, "a plan is stale against itself: \(reasons)")
    }
    _ = saved.plan.counts
    _ = saved.plan.hasErrors
    for environment in saved.plan.environments {
        for change in environment.changes { _ = change.signature; _ = change.action.secretFingerprint }
    }

    // Round trip.
    let first = writePlan(saved)
    fuzzCheck(!first.isEmpty, "json() failed on a plan that read accepted")
    let again: SavedPlan
    do {
        again = try readPlan(first)
    } catch {
        fuzzCheck(false, "read refuses what json() wrote: \(error)\n\(String(decoding: first.prefix(2000), as: UTF8.self))")
        return 0
    }
    let second = writePlan(again)
    fuzzCheck(first == second, """
        decode(encode(x)) does not encode to the same bytes:
        --- first
        \(String(decoding: first.prefix(4000), as: UTF8.self))
        --- second
        \(String(decoding: second.prefix(4000), as: UTF8.self))
        """)
    fuzzCheck(again.staleness(current: saved.plan, files: saved.inputs.files).isEmpty || Set(names).count != names.count,
              "the re-read plan is stale against the original")

    // Signing (plan --out signs a plan the planner made: its environment names are unique).
    guard Set(names).count == names.count else { return 0 }
    let signed: SavedPlan
    do {
        signed = try saved.signed(with: planKey)
    } catch {
        fuzzCheck(false, "signed(with:) failed on a plan that read accepted: \(error)")
        return 0
    }
    fuzzCheck(signed.verify(with: planKey).isEmpty, "a freshly signed plan does not verify: \(signed.verify(with: planKey))")
    let file = writePlan(signed)
    let reread: SavedPlan
    do {
        reread = try readPlan(file)
    } catch {
        fuzzCheck(false, "read refuses a signed plan json() wrote: \(error)")
        return 0
    }
    let problems = reread.verify(with: planKey)
    fuzzCheck(problems.isEmpty, """
        a signed plan does not verify after json() and read: \(problems)
        \(String(decoding: file.prefix(4000), as: UTF8.self))
        """)
    fuzzCheck(!reread.verify(with: otherKey).isEmpty, "a signed plan verifies under another key")
    return 0
}

/// One-time set-up outside the 1 s budget: the first use of ICU, Foundation's JSON and date
/// formatters, the Swift runtime's metadata caches takes seconds under ASan.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let warmUp = Array("{\"kind\":\"credops/plan\",\"credopsVersion\":\"0\",\"plan\":{\"formatVersion\":1,\"createdAt\":\"2026-01-01T00:00:00Z\",\"environments\":[]},\"inputs\":{\"paths\":[],\"environmentsDirectory\":\"e\",\"allowPlaintextSecrets\":false,\"files\":[],\"selectedEnvironments\":[]},\"options\":{\"allowDelete\":false,\"allowMassDelete\":false}}".utf8)
    for _ in 0..<2 { _ = warmUp.withUnsafeBufferPointer { fuzz($0.baseAddress!, $0.count) } }
    return 0
}
