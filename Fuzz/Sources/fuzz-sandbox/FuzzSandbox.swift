// fuzz-sandbox: bytes -> a few requests to the Apinizer emulator's request handling, on one
// state made from a seed, kept across the requests of one input.
//
// Input: requests separated by a NUL byte (at most 8). Each request is
//     METHOD[!]\nRAW-PATH\nBODY
// (`!` after the method makes the gateway `staging` fail; no second line break means no body).
// The method `YAMLSEED` instead parses the body as a seed file (`SandboxSeed.parse(yaml:)`).
// Routing is SandboxRouter's; the operations are SandboxState's synchronous calls, dispatched as
// SandboxEngine.handle / handleAdmin do (authentication and the token call left out).
//
// Checks: nothing crashes or takes > 1 s; every answer body is a JSON object (JSONSerialization)
// and JSONValue.parse reads it; statuses are the documented ones; a created credential is
// listed, a deleted one is not; and after every request the state is one the sandbox can
// restart from: its dump reads back as the same seed, and its credentials pass the seed checks
// (the data-file restore path).

import FuzzSupport
@testable import ApinizerSandbox
import Foundation

private let initialSeed: SandboxSeed = {
    var seed = SandboxSeed.default
    seed.credentials = [
        SandboxCredential(project: "payments", username: "checkout", password: "s3cret-pass", email: "checkout@example.com",
                          fullName: "Checkout Service", description: "seeded", roleNameList: ["API_USER"],
                          ipList: ["10.0.0.0/8"], expireDate: "2030-01-01T00:00:00.000Z",
                          access: [SandboxAccess(name: "PaymentAPI", type: SandboxAccess.apiProxy)]),
        SandboxCredential(project: "admin", username: "global-ops", email: "ops@example.com", fullName: "Ops"),
    ]
    return try! seed.validated()
}()

private func dispatch(_ operation: APIOperation, state: inout SandboxState, body: Data?, failing: String?) throws(APIError) -> SandboxAnswer {
    switch operation {
    case .issueToken:
        return SandboxAnswer(status: 200, body: ["access_token": "fuzz", "token_type": "Bearer", "expires_in": 3600])
    case .listProjects:
        return state.listProjects()
    case .listEnvironments(let project):
        return try state.listEnvironments(project: project, failingGateway: failing)
    case .listCredentials(let project):
        return try state.listCredentials(project: project)
    case .createCredential(let project):
        return try state.createCredential(project: project, body: body, failingGateway: failing)
    case .updateCredential(let project):
        return try state.updateCredential(project: project, body: body, failingGateway: failing)
    case .changePassword(let project, let username):
        return try state.changePassword(project: project, username: username, body: body, failingGateway: failing)
    case .deleteCredential(let project, let username):
        return try state.deleteCredential(project: project, username: username, failingGateway: failing)
    case .listAccess(let project, let username):
        return try state.listAccess(project: project, username: username)
    case .grantAccess(let project, let username):
        return try state.grantAccess(project: project, username: username, body: body, failingGateway: failing)
    case .revokeAccess(let project, let username):
        return try state.revokeAccess(project: project, username: username, body: body, failingGateway: failing)
    }
}

/// As SandboxEngine.handleAdmin, without authentication and statistics.
private func dispatchAdmin(_ operation: AdminOperation, state: inout SandboxState, body: Data?) throws(APIError) -> SandboxAnswer {
    switch operation {
    case .dump:
        return SandboxAnswer(status: 200, data: state.seed.fileData)
    case .stats, .resetStats:
        return .ok(["success": true])
    case .seed:
        try state.mergeSeed(body: body)
        return .ok(["success": true, "credentialCount": .int(state.credentials.count)])
    case .reset:
        state = SandboxState(seed: initialSeed)
        return .ok(["success": true])
    case .faults:
        return SandboxAnswer(status: 200, data: try! JSONEncoder().encode(SandboxFaults()))
    case .setFaults:
        _ = try RequestBody.object(body)
        let faults: SandboxFaults
        do {
            faults = try JSONDecoder().decode(SandboxFaults.self, from: body ?? Data())
        } catch {
            throw .badRequest("Invalid faults: \(error)")
        }
        if !faults.problems.isEmpty { throw .badRequest("Invalid faults: \(faults.problems.joined(separator: "; "))") }
        return SandboxAnswer(status: 200, data: try! JSONEncoder().encode(faults))
    }
}

private func checkAnswer(_ answer: SandboxAnswer, _ request: String) {
    fuzzCheck([200, 400, 401, 404, 405, 500].contains(answer.status), "status \(answer.status) for \(request)")
    let object = try? JSONSerialization.jsonObject(with: answer.body)
    fuzzCheck(object is [String: Any], "the answer to \(request) is not a JSON object: \(String(decoding: answer.body.prefix(500), as: UTF8.self))")
    fuzzCheck(JSONValue.parse(answer.body) != nil, "JSONValue cannot read the answer to \(request)")
    for (name, value) in answer.headers {
        fuzzCheck(!name.isEmpty && !value.utf8.contains(where: { $0 == 10 || $0 == 13 }), "bad header \(visible(name)): \(visible(value))")
    }
}

/// The state is one the sandbox can save and start again from.
private func checkState(_ state: SandboxState, after request: String) {
    var sequences = Set<Int>()
    for (key, entry) in state.credentials {
        fuzzCheck(key == entry.credential.username, "credential stored under \(visible(key)) is \(visible(entry.credential.username))")
        fuzzCheck(entry.sequence < state.nextSequence && sequences.insert(entry.sequence).inserted, "sequence \(entry.sequence) reused or ahead")
        fuzzCheck(state.projectExists(entry.credential.project), "credential in unknown project \(visible(entry.credential.project))")
    }
    let seed = state.seed
    // The data-file restore path (SandboxEngine.init): decode, restore, check the credentials.
    let file = seed.fileData
    let saved: SandboxSeed
    do {
        saved = try JSONDecoder().decode(SandboxSeed.self, from: file)
    } catch {
        fuzzCheck(false, "the data file after \(request) does not read back: \(error)\n\(String(decoding: file.prefix(2000), as: UTF8.self))")
        return
    }
    fuzzCheck(saved == seed, "the data file after \(request) reads back as another seed")
    var restored = SandboxState.restoring(configured: initialSeed, saved: saved)
    var catalog = restored
    catalog.credentials = [:]
    do {
        let checked = try catalog.checkedSeedCredentials(saved.credentials)
        fuzzCheck(checked == saved.credentials, "the seed checks change stored credentials after \(request)")
        restored.credentials = [:]
        for credential in checked { restored.put(credential) }
    } catch {
        fuzzCheck(false, "a sandbox could not restart from its data file after \(request): \(error.message)")
    }
    fuzzCheck(restored.seed.credentials == seed.credentials, "restoring the data file changes the credentials after \(request)")
}

/// JSONValue's writer and reader agree: a value written and read again is written the same way.
private func checkJSONValue(_ body: Data) {
    guard let value = JSONValue.parse(body) else { return }
    let once = value.serialized
    fuzzCheck((try? JSONSerialization.jsonObject(with: once, options: .fragmentsAllowed)) != nil,
              "JSONValue wrote invalid JSON: \(String(decoding: once.prefix(500), as: UTF8.self))")
    guard let reread = JSONValue.parse(once) else {
        fuzzCheck(false, "JSONValue cannot read what it wrote: \(String(decoding: once.prefix(500), as: UTF8.self))")
        return
    }
    let twice = reread.serialized
    fuzzCheck(once == twice, "JSONValue round trip differs: \(String(decoding: once.prefix(300), as: UTF8.self)) vs \(String(decoding: twice.prefix(300), as: UTF8.self))")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    var state = SandboxState(seed: initialSeed)
    for chunk in bytes.split(separator: 0, maxSplits: 7, omittingEmptySubsequences: false) {
        let parts = chunk.split(separator: 10, maxSplits: 2, omittingEmptySubsequences: false)
        var method = String(decoding: parts[0], as: UTF8.self)
        let rawPath = parts.count > 1 ? String(decoding: parts[1], as: UTF8.self) : "/"
        let body: Data? = parts.count > 2 && !parts[2].isEmpty ? Data(parts[2]) : nil
        var failing: String?
        if method.hasSuffix("!") { method.removeLast(); failing = "staging" }
        let request = "\(visible(method)) \(visible(rawPath))"

        if let body { checkJSONValue(body) }
        if method == "YAMLSEED" {
            if let body, let text = String(data: body, encoding: .utf8), let seed = try? SandboxSeed.parse(yaml: text) {
                _ = SandboxState(seed: seed).seed.fileData
            }
            continue
        }

        let path = SandboxRouter.pathOnly(rawPath)
        let answer: SandboxAnswer
        if path == "/__sandbox" || path.hasPrefix("/__sandbox/") {
            do throws(APIError) {
                answer = try dispatchAdmin(try SandboxRouter.matchAdmin(method: method, path: rawPath).get(), state: &state, body: body)
            } catch {
                answer = error.answer
            }
        } else {
            let match = SandboxRouter.matchAPI(method: method, path: rawPath)
            let before = state
            do throws(APIError) {
                answer = try dispatch(try match.outcome.get(), state: &state, body: body, failing: failing)
            } catch {
                answer = error.answer
                fuzzCheck(state.credentials.count == before.credentials.count && state.nextSequence == before.nextSequence,
                          "a refused \(request) changed the state")
            }
            // What a successful write must have done.
            if answer.status == 200, case .success(let operation) = match.outcome {
                switch operation {
                case .createCredential(let project), .updateCredential(let project):
                    let username = (try? CredentialInput.parse(body))?.username ?? ""
                    fuzzCheck(state.credentials(through: project).contains { $0.username == username },
                              "\(request): \(visible(username)) is not listed after a successful write")
                case .deleteCredential(let project, let username):
                    fuzzCheck(state.credential(username, through: project) == nil, "\(request): still there after delete")
                default:
                    break
                }
            }
        }
        checkAnswer(answer, request)
        checkState(state, after: request)
    }
    return 0
}

/// One-time set-up outside the 1 s budget: the first use of ICU, Foundation's JSON and date
/// formatters, the Swift runtime's metadata caches takes seconds under ASan.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let warmUp = Array("POST\n/apiops/projects/payments/credentials/\n{\"username\":\"w\",\"password\":\"pw-123456\",\"email\":\"w@example.com\",\"fullName\":\"W\",\"expireDate\":\"2027-06-30T23:59:59Z\",\"ipList\":[\"::1\"]}\u{0}GET\n/__sandbox/dump\n\u{0}YAMLSEED\n-\nprojects: [a]\n".utf8)
    for _ in 0..<2 { _ = warmUp.withUnsafeBufferPointer { fuzz($0.baseAddress!, $0.count) } }
    return 0
}
