import Foundation
import Logging

/// The emulated manager behind the HTTP layer: state, authentication, request counts, fault
/// decisions and the data file.
///
/// An actor, so every call sees and leaves a consistent state; each API call runs as one
/// synchronous step on it. Saving is write-behind and coalesced: a change marks the state dirty
/// and a single background task writes the latest snapshot, then the next one if more changes
/// came in meanwhile. Answers do not wait for the disk, so a long run of writes costs one save
/// per save-duration rather than one per write (a store of n credentials filled by n
/// sequential writes is not O(n²)); `flush()` and `SandboxServer.stop()` wait for the last one.
actor SandboxEngine {
    private let configuredSeed: SandboxSeed
    /// SHA-256 digests of the configured tokens: a presented token is compared by digest, in
    /// constant time, so how long a check takes says nothing about how much of a guess matched.
    private let configuredTokens: [[UInt8]]
    private var state: SandboxState
    /// Tokens issued by the token call, by digest, with their expiry.
    private var issuedTokens: [[UInt8]: ContinuousClock.Instant] = [:]
    private var stats = RequestStats()
    private var injector: FaultInjector
    private var isStopping = false
    private let logger: Logger
    private let clock = ContinuousClock()

    private let dataFile: DataFile?
    private var generation = 0
    private var savedGeneration = 0
    private var isSaving = false
    /// Saves completed (for tests of coalescing).
    private(set) var saveCount = 0
    private var flushWaiters: [(generation: Int, continuation: CheckedContinuation<SandboxError?, Never>)] = []

    /// A sandbox state from the configured seed, or from the data file when it exists.
    ///
    /// - Throws: `SandboxError` for an inconsistent seed or an unreadable data file.
    init(configuration: SandboxConfiguration, logger: Logger) throws(SandboxError) {
        let seed = try configuration.seed.validated()
        self.configuredSeed = seed
        self.configuredTokens = configuration.tokens.filter { !$0.isEmpty }.map(TokenDigest.of)
        self.logger = logger
        self.dataFile = configuration.dataFile.map(DataFile.init(path:))
        if let problem = configuration.faults.problems.first {
            throw SandboxError(.startup, "faults: \(problem)")
        }
        self.injector = FaultInjector(configuration.faults, now: clock.now)
        if let saved = try dataFile?.load() {
            var restored = SandboxState.restoring(configured: seed, saved: saved)
            var catalog = restored
            catalog.credentials = [:]
            do {
                let checked = try catalog.checkedSeedCredentials(saved.credentials)
                restored.credentials = [:]
                for credential in checked { restored.put(credential) }
            } catch {
                throw SandboxError(.dataFile, "\(configuration.dataFile ?? ""): \(error.message)")
            }
            self.state = restored
        } else {
            self.state = SandboxState(seed: seed)
            if dataFile != nil { generation = 1 }  // write the initial file soon
        }
    }

    // MARK: API calls

    /// Counts an API request and decides its fault.
    func admit(method: String, template: String, isWrite: Bool) -> FaultInjector.Decision {
        stats.record(method: method, template: template, isWrite: isWrite)
        return injector.decide(isWrite: isWrite, now: clock.now)
    }

    /// Answers an API request that was admitted without a fault.
    ///
    /// Every call but the token call is authenticated first, before its route is checked.
    func handle(_ match: Result<APIOperation, APIError>, authorization: String?, contentType: String?, body: Data?) -> SandboxAnswer {
        do throws(APIError) {
            if case .success(.issueToken) = match {
                return try issueToken(contentType: contentType, body: body)
            }
            try authenticate(authorization)
            let operation = try match.get()
            let failing = injector.faults.failingGateway
            let answer: SandboxAnswer
            switch operation {
            case .issueToken:
                answer = try issueToken(contentType: contentType, body: body)
            case .listProjects:
                answer = state.listProjects()
            case .listEnvironments(let project):
                answer = try state.listEnvironments(project: project, failingGateway: failing)
            case .listCredentials(let project):
                answer = try state.listCredentials(project: project)
            case .createCredential(let project):
                answer = try state.createCredential(project: project, body: body, failingGateway: failing)
            case .updateCredential(let project):
                answer = try state.updateCredential(project: project, body: body, failingGateway: failing)
            case .changePassword(let project, let username):
                answer = try state.changePassword(project: project, username: username, body: body, failingGateway: failing)
            case .deleteCredential(let project, let username):
                answer = try state.deleteCredential(project: project, username: username, failingGateway: failing)
            case .listAccess(let project, let username):
                answer = try state.listAccess(project: project, username: username)
            case .grantAccess(let project, let username):
                answer = try state.grantAccess(project: project, username: username, body: body, failingGateway: failing)
            case .revokeAccess(let project, let username):
                answer = try state.revokeAccess(project: project, username: username, body: body, failingGateway: failing)
            }
            if answer.committed { changed() }
            return answer
        } catch {
            return error.answer
        }
    }

    /// The 401 answer for a request whose token does not check out, nil when it does: the
    /// responder asks before it reads a body, so an unauthenticated client cannot make the
    /// sandbox hold megabytes for it.
    func authenticationFailure(_ authorization: String?) -> SandboxAnswer? {
        do throws(APIError) {
            try authenticate(authorization)
            return nil
        } catch {
            return error.answer
        }
    }

    /// Checks `Authorization: Bearer T` against configured, seeded and issued tokens.
    ///
    /// - Throws: 401 `unauthorized_client` (missing or not a bearer token), `invalid_token`
    ///   (unknown), `token_expired` (an issued token past its lifetime).
    func authenticate(_ authorization: String?) throws(APIError) {
        guard let authorization else {
            throw .unauthorized("unauthorized_client", "Full authentication is required to access this resource")
        }
        let parts = authorization.split(separator: " ", maxSplits: 1, omittingEmptySubsequences: true)
        guard parts.count == 2, parts[0].lowercased() == "bearer" else {
            throw .unauthorized("unauthorized_client", "Full authentication is required to access this resource (use a bearer token)")
        }
        let digest = TokenDigest.of(parts[1].trimmingCharacters(in: .whitespaces))
        // Every known token is compared (no early exit), each in constant time.
        var known = false
        for candidate in configuredTokens + state.tokens.names.map(TokenDigest.of) {
            known = TokenDigest.equal(candidate, digest) || known
        }
        if known { return }
        if let expiry = issuedTokens[digest] {
            guard clock.now < expiry else { throw .unauthorized("token_expired", "Access token expired") }
            return
        }
        throw .unauthorized("invalid_token", "Invalid access token")
    }

    /// `POST /apiops/auth/token` with a client-credentials form.
    private func issueToken(contentType: String?, body: Data?) throws(APIError) -> SandboxAnswer {
        let text = body.map { String(decoding: $0, as: UTF8.self) } ?? ""
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        if contentType?.lowercased().contains("json") == true || trimmed.hasPrefix("{") || trimmed.hasPrefix("[") {
            throw .invalidParameter("The token request must be application/x-www-form-urlencoded, not JSON")
        }
        var form: [String: String] = [:]
        for pair in trimmed.split(separator: "&") {
            let pieces = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? {
                SandboxRouter.percentDecode(Substring(s.replacingOccurrences(of: "+", with: " ")))
            }
            guard let key = decode(pieces[0]), let value = decode(pieces.count > 1 ? pieces[1] : "") else {
                throw .invalidParameter("The token request form is malformed")
            }
            form[key] = value
        }
        guard let grant = form["grant_type"], !grant.isEmpty else {
            throw .invalidParameter("Missing grant_type: use grant_type=client_credentials")
        }
        guard grant == "client_credentials" else {
            throw .invalidParameter("Unsupported grant_type '\(grant)': use client_credentials")
        }
        // The secret is compared by digest in constant time, also for an unknown client id.
        let id = form["client_id"] ?? ""
        let presented = TokenDigest.of(form["client_secret"] ?? "")
        let expected = state.clients[id].map(TokenDigest.of) ?? TokenDigest.of("\u{0}no such client")
        guard TokenDigest.equal(expected, presented), state.clients[id] != nil, form["client_secret"] != nil else {
            throw .unauthorized("unauthorized_client", "Bad credentials")
        }
        let now = clock.now
        issuedTokens = issuedTokens.filter { now < $0.value + .seconds(86_400) }  // forget long-dead tokens
        var bytes = SystemRandomNumberGenerator()
        let token = "sbx_" + (0..<4).map { _ in String(bytes.next() as UInt64, radix: 16).leftPadded(to: 16) }.joined()
        issuedTokens[TokenDigest.of(token)] = now + .seconds(state.tokenTTLSeconds)
        return .ok(.object(JSONObject([
            (key: "access_token", value: .string(token)),
            (key: "token_type", value: "Bearer"),
            (key: "expires_in", value: .int(state.tokenTTLSeconds)),
        ])))
    }

    // MARK: Test-only calls

    /// Answers a `/__sandbox/` call (authenticated like the API; never counted or faulted).
    func handleAdmin(_ match: Result<AdminOperation, APIError>, authorization: String?, body: Data?) -> SandboxAnswer {
        do throws(APIError) {
            try authenticate(authorization)
            switch try match.get() {
            case .dump:
                return SandboxAnswer(status: 200, data: state.seed.fileData)
            case .stats:
                return .ok(stats.json)
            case .resetStats:
                stats = RequestStats()
                return .ok(["success": true])
            case .seed:
                try state.mergeSeed(body: body)
                changed()
                return .ok(["success": true, "credentialCount": .int(state.credentials.count)])
            case .reset:
                state = SandboxState(seed: configuredSeed)
                stats = RequestStats()
                changed()
                return .ok(["success": true])
            case .faults:
                return try encoded(injector.faults)
            case .setFaults:
                _ = try RequestBody.object(body)
                let faults: SandboxFaults
                do {
                    faults = try JSONDecoder().decode(SandboxFaults.self, from: body ?? Data())
                } catch let error as DecodingError {
                    throw .badRequest("Invalid faults: \(SandboxSeed.describe(error))")
                } catch {
                    throw .badRequest("Invalid faults: \(error)")
                }
                if !faults.problems.isEmpty { throw .badRequest("Invalid faults: \(faults.problems.joined(separator: "; "))") }
                setFaults(faults)
                return try encoded(faults)
            }
        } catch {
            return error.answer
        }
    }

    private func encoded(_ value: some Encodable) throws(APIError) -> SandboxAnswer {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        do {
            return SandboxAnswer(status: 200, data: try encoder.encode(value))
        } catch {
            throw .internalError("Cannot encode the answer: \(error)")
        }
    }

    // MARK: Faults and lifecycle

    /// Replaces the faults (and restarts their random sequence and rate budget).
    func setFaults(_ faults: SandboxFaults) {
        injector = FaultInjector(faults, now: clock.now)
    }

    var faults: SandboxFaults { injector.faults }

    /// True while a hung request should stay hung: `hang` is on and the sandbox is not stopping.
    var keepsHanging: Bool { injector.faults.hang && !isStopping }

    /// Marks the sandbox as stopping: hung requests are let go (dropped).
    func beginStopping() {
        isStopping = true
    }

    /// The whole state as a seed (passwords and grants included).
    func snapshot() -> SandboxSeed {
        state.seed
    }

    // MARK: Persistence

    /// Records a change and starts a save unless one is running (it will pick this change up).
    private func changed() {
        generation += 1
        startSaving()
    }

    private func startSaving() {
        guard let dataFile, !isSaving, savedGeneration < generation else { return }
        isSaving = true
        Task.detached { [self] in await self.saveLoop(dataFile) }
    }

    /// Writes snapshots until the file holds the latest state (or a write fails).
    private nonisolated func saveLoop(_ file: DataFile) async {
        while let (snapshot, generation) = await nextSnapshot() {
            let failure = await Self.offExecutor { () -> SandboxError? in
                do throws(SandboxError) {
                    try file.write(snapshot.seed.fileData)
                    return nil
                } catch {
                    return error
                }
            }
            guard await didSave(generation: generation, error: failure) else { return }
            // Each save writes the whole state: while changes keep coming, save at most every
            // `saveInterval` (a flush or a stop does not wait for the pause), so that a busy
            // sandbox does not spend its time re-encoding thousands of credentials per answer.
            if await !isFlushRequested { try? await Task.sleep(for: Self.saveInterval) }
        }
    }

    /// The shortest time between two saves while changes keep coming.
    static let saveInterval: Duration = .milliseconds(100)

    /// True when someone waits for the file (`flush()`, `stop()`).
    private var isFlushRequested: Bool { !flushWaiters.isEmpty || isStopping }

    /// Runs `body` on a thread of its own and returns its result.
    ///
    /// A save encodes the whole state and waits for `fsync`: done on the global executor, it would
    /// hold one of its few threads (as many as cores) for that long, delaying every task of the
    /// process, the sandbox's own answers and shutdown among them.
    private static func offExecutor<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: body()) }.start()
        }
    }

    private func nextSnapshot() -> (SandboxState, Int)? {
        guard savedGeneration < generation else {
            isSaving = false
            return nil
        }
        return (state, generation)
    }

    /// Records a finished save; false ends the save loop (after a failure).
    private func didSave(generation saved: Int, error: SandboxError?) -> Bool {
        if let error {
            logger.error("sandbox data file not saved: \(error.message)")
            isSaving = false
            let waiters = flushWaiters
            flushWaiters = []
            for waiter in waiters { waiter.continuation.resume(returning: error) }
            return false
        }
        savedGeneration = max(savedGeneration, saved)
        saveCount += 1
        let done = flushWaiters.filter { $0.generation <= savedGeneration }
        flushWaiters.removeAll { $0.generation <= savedGeneration }
        for waiter in done { waiter.continuation.resume(returning: nil) }
        return true
    }

    /// Waits until the data file holds every change made so far.
    ///
    /// - Returns: the error of the save that failed, or nil.
    func flush() async -> SandboxError? {
        guard dataFile != nil, savedGeneration < generation else { return nil }
        startSaving()
        let target = generation
        return await withCheckedContinuation { continuation in
            flushWaiters.append((target, continuation))
        }
    }
}

extension String {
    /// The string with leading zeros up to `width` characters.
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}
