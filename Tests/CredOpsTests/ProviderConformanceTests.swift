import ApinizerProvider
@testable import ApinizerSandbox
import CredOps
import CredOpsTestSupport
import Foundation
import LeadConduitProvider
import LeadVibeProvider
import Testing

/// One provider under the conformance suite: how to open a session to a fresh server, read
/// that server's truth behind the API's back, and make it fail.
protocol ConformanceSubject: Sendable {
    var name: String { get }
    var schema: ResourceSchema { get }
    var project: ProjectName { get }
    /// A session to a fresh, empty server; `badAuth` presents credentials the server refuses.
    func open(badAuth: Bool) async throws -> ConformanceServer
}

/// A running server of a subject, with the session the suite drives.
struct ConformanceServer: Sendable {
    var session: any ProviderSession
    /// True when the server holds exactly this secret for the credential (nil: holds a
    /// credential of that key at all, for a secret the server generated and whose answer was lost).
    var holds: @Sendable (CredentialKey, Secret?) async -> Bool
    /// The next write is stored and its answer lost (or answered with an error after storing).
    var loseNextWriteAnswer: @Sendable () async -> Void
    /// Makes the server rate-limit (429 with Retry-After) from now on, or stop (nil: the
    /// provider has no HTTP server, so no rate limit to meet).
    var rateLimit: (@Sendable (Bool) async -> Void)? = nil
    var close: @Sendable () async -> Void
}

/// What the HTTP subjects share: an environment at `url`, a small client, quick retries.
enum ConformanceHTTP {
    static func environment(_ provider: String, url: String, projects: [ProjectName: ProjectName] = [:]) -> EnvironmentConfig {
        var env = EnvironmentConfig(name: "dev", file: "dev.yaml", location: SourceLocation(file: "dev.yaml", line: 1, column: 1),
                                    provider: provider, endpoint: .url(url), endpointLocation: SourceLocation(file: "dev.yaml", line: 1, column: 1))
        env.projects = projects
        return env
    }

    static var retry: RetrySettings {
        var retry = RetrySettings()
        retry.initialBackoffMilliseconds = 10
        retry.maxBackoffMilliseconds = 50
        return retry
    }
}

/// The in-memory reference provider, with the key as the id or with ids it assigns.
struct MemorySubject: ConformanceSubject {
    var assignsIDs = false
    var name: String { assignsIDs ? "memory (server-assigned ids)" : "memory" }
    var schema: ResourceSchema {
        var schema = ApplyEngineTests.schema
        schema.capabilities.identity = assignsIDs ? .serverAssigned : .keyIsID
        return schema
    }
    let project: ProjectName = "payments"

    func open(badAuth: Bool) async throws -> ConformanceServer {
        let server = MemoryServer(assignsIDs: assignsIDs)
        if badAuth { server.inject(.refuse(status: 401), on: .list) }
        let provider = MemoryProvider(schema: schema, server: server)
        let env = EnvironmentConfig(name: "dev", file: "dev.yaml", location: SourceLocation(file: "dev.yaml", line: 1, column: 1),
                                    provider: "memory", endpoint: .url("https://memory.invalid"),
                                    endpointLocation: SourceLocation(file: "dev.yaml", line: 1, column: 1))
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 2))
        let session = provider.session(for: env, connection: Connection(baseURL: "https://memory.invalid", credentials: .bearer(Secret("t")),
                                                                        retry: RetrySettings()), http: http)
        return ConformanceServer(session: session, holds: { id, secret in server.holds(project: project, id: id, secret: secret ?? Secret("")) },
                                 loseNextWriteAnswer: { server.inject(.loseAnswer, on: .create) }, close: { http.shutdown() })
    }
}

/// Apinizer through its emulator, over HTTP on a loopback port.
struct ApinizerSubject: ConformanceSubject {
    let name = "apinizer"
    var schema: ResourceSchema { ApinizerProvider.credentialSchema }
    let project: ProjectName = "MyProject"

    func open(badAuth: Bool) async throws -> ConformanceServer {
        let token = "conformance-token-\(UInt32.random(in: 0...UInt32.max))"
        var seed = SandboxSeed.default
        seed.credentials = []
        let server = try await SandboxServer.start(SandboxConfiguration(tokens: [token], seed: seed))
        let env = ConformanceHTTP.environment("apinizer", url: server.baseURL)
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 4))
        let retry = ConformanceHTTP.retry
        let session = ApinizerProvider().session(for: env, connection: Connection(baseURL: server.baseURL,
                                                                                  credentials: .bearer(Secret(badAuth ? "wrong-token" : token)),
                                                                                  retry: retry), http: http)
        let project = project
        return ConformanceServer(
            session: session,
            holds: { id, secret in
                await server.snapshot().credentials.first { $0.project == project.rawValue && $0.username == id.rawValue }?.password == secret?.reveal()
            },
            loseNextWriteAnswer: { await server.setFaults(SandboxFaults(commitThenFailRate: 1)) },
            rateLimit: { on in await server.setFaults(on ? SandboxFaults(rateLimit: .init(requestsPerSecond: 2, retryAfterSeconds: 1)) : SandboxFaults()) },
            close: {
                http.shutdown()
                await server.stop()
            })
    }
}

/// LeadConduit through its emulator, over HTTP on a loopback port.
struct LeadConduitSubject: ConformanceSubject {
    let name = "leadconduit"
    var schema: ResourceSchema { LeadConduitProvider.credentialSchema }
    let project: ProjectName = "lead-intake"

    func open(badAuth: Bool) async throws -> ConformanceServer {
        let key = "conformance-key-\(UInt32.random(in: 0...UInt32.max))"
        let server = try await LeadConduitServer.start(LeadConduitConfiguration(apiKeys: [key]))
        let env = ConformanceHTTP.environment("leadconduit", url: server.baseURL)
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 4))
        let retry = ConformanceHTTP.retry
        let credentials = Connection.Credentials.basic(username: Connection.Credentials.apiKeyUser, password: Secret(badAuth ? "wrong-key" : key))
        let session = LeadConduitProvider().session(for: env, connection: Connection(baseURL: server.baseURL, credentials: credentials, retry: retry),
                                                    http: http)
        return ConformanceServer(
            session: session,
            holds: { id, secret in await server.credentials().first { $0.name == id.rawValue }?.password == secret?.reveal() },
            loseNextWriteAnswer: { await server.setFaults(SandboxFaults(commitThenFailRate: 1)) },
            rateLimit: { on in await server.setFaults(on ? SandboxFaults(rateLimit: .init(requestsPerSecond: 2, retryAfterSeconds: 1)) : SandboxFaults()) },
            close: {
                http.shutdown()
                await server.stop()
            })
    }
}

/// LeadVibe through its emulator: a unit selected by cookie, secrets the server generates.
struct LeadVibeSubject: ConformanceSubject {
    let name = "leadvibe"
    var schema: ResourceSchema { LeadVibeProvider.credentialSchema }
    let project: ProjectName = "unit_emea"

    func open(badAuth: Bool) async throws -> ConformanceServer {
        let token = "conformance-token-\(UInt32.random(in: 0...UInt32.max))"
        let server = try await LeadVibeServer.start(LeadVibeConfiguration(tokens: [token], units: LeadVibeConfiguration.units(["unit_main", "unit_emea"])))
        let env = ConformanceHTTP.environment("leadvibe", url: server.baseURL, projects: ["feeds": "unit_emea"])
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 4))
        let retry = ConformanceHTTP.retry
        let session = LeadVibeProvider().session(for: env, connection: Connection(baseURL: server.baseURL,
                                                                                  credentials: .bearer(Secret(badAuth ? "wrong-token" : token)),
                                                                                  retry: retry), http: http)
        let project = project
        return ConformanceServer(
            session: session,
            holds: { id, secret in
                let found = await server.secrets().filter { $0.name == id.rawValue && $0.unitID == project.rawValue }
                guard let secret else { return !found.isEmpty }
                for credential in found where await server.check(clientID: credential.clientID, clientSecret: secret.reveal()) { return true }
                return false
            },
            loseNextWriteAnswer: { await server.setFaults(SandboxFaults(commitThenFailRate: 1)) },
            rateLimit: { on in await server.setFaults(on ? SandboxFaults(rateLimit: .init(requestsPerSecond: 2, retryAfterSeconds: 1)) : SandboxFaults()) },
            close: {
                http.shutdown()
                await server.stop()
            })
    }
}

/// A provider profile through the generic emulator, which serves the same profile.
struct ProfileSubject: ConformanceSubject {
    let text: String
    let project: ProjectName
    var profile: ProviderProfile { (try? ProfileFixtures.profile(text))! }
    var name: String { "profile \(profile.name)" }
    var schema: ResourceSchema { profile.schema }

    init(_ text: String, project: ProjectName = "team-a") {
        self.text = text
        self.project = project
    }

    func open(badAuth: Bool) async throws -> ConformanceServer {
        let profile = try ProfileFixtures.profile(text)
        let key = "conformance-key-\(UInt32.random(in: 0...UInt32.max))"
        var configuration = ProfileEmulatorConfiguration(profile: profile, keys: [key])
        configuration.namespaces = ["team-a", "team-b"]
        let server = try await ProfileServer.start(configuration)
        let env = ConformanceHTTP.environment(profile.name, url: server.baseURL)
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 4))
        let credentials = ProfileEmulatorConfiguration.credentials(for: profile, key: badAuth ? "wrong-key" : key)
        let session = ProfileProvider(profile).session(for: env, connection: Connection(baseURL: server.baseURL, credentials: credentials,
                                                                                        retry: ConformanceHTTP.retry), http: http)
        return ConformanceServer(
            session: session,
            holds: { id, secret in
                guard let secret else { return await server.records().contains { $0.object[profile.key.pointer]?.string == id.rawValue } }
                return await server.holds(key: id.rawValue, secret: secret.reveal())
            },
            loseNextWriteAnswer: { await server.setFaults(SandboxFaults(commitThenFailRate: 1)) },
            rateLimit: { on in await server.setFaults(on ? SandboxFaults(rateLimit: .init(requestsPerSecond: 2, retryAfterSeconds: 1)) : SandboxFaults()) },
            close: {
                http.shutdown()
                await server.stop()
            })
    }
}

/// LeadConduit written as a profile, against the LeadConduit emulator (the API as
/// ActiveProspect documents it), not the generic one: the profile language must say all the
/// Swift provider says.
struct LeadConduitProfileSubject: ConformanceSubject {
    let name = "profile leadconduit-profile against the LeadConduit emulator"
    var schema: ResourceSchema { (try? ProfileFixtures.profile(ProfileFixtures.leadConduit))!.schema }
    let project: ProjectName = "lead-intake"

    func open(badAuth: Bool) async throws -> ConformanceServer {
        let profile = try ProfileFixtures.profile(ProfileFixtures.leadConduit)
        let key = "conformance-key-\(UInt32.random(in: 0...UInt32.max))"
        let server = try await LeadConduitServer.start(LeadConduitConfiguration(apiKeys: [key]))
        let env = ConformanceHTTP.environment(profile.name, url: server.baseURL)
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 4))
        let credentials = Connection.Credentials.basic(username: Connection.Credentials.apiKeyUser, password: Secret(badAuth ? "wrong-key" : key))
        let session = ProfileProvider(profile).session(for: env, connection: Connection(baseURL: server.baseURL, credentials: credentials,
                                                                                        retry: ConformanceHTTP.retry), http: http)
        return ConformanceServer(
            session: session,
            holds: { id, secret in await server.credentials().first { $0.name == id.rawValue }?.password == secret?.reveal() },
            loseNextWriteAnswer: { await server.setFaults(SandboxFaults(commitThenFailRate: 1)) },
            rateLimit: { on in await server.setFaults(on ? SandboxFaults(rateLimit: .init(requestsPerSecond: 2, retryAfterSeconds: 1)) : SandboxFaults()) },
            close: {
                http.shutdown()
                await server.stop()
            })
    }
}

/// The provider contract, the same for every provider: what the engine relies on.
@Suite struct ProviderConformanceTests {
    static let subjects: [any ConformanceSubject] = [MemorySubject(), MemorySubject(assignsIDs: true), ApinizerSubject(), LeadConduitSubject(),
                                                     LeadVibeSubject(), LeadConduitProfileSubject(), ProfileSubject(ProfileFixtures.leadConduit),
                                                     ProfileSubject(ProfileFixtures.leadExec), ProfileSubject(ProfileFixtures.vault),
                                                     ProfileSubject(ProfileFixtures.units), ProfileSubject(ProfileFixtures.header),
                                                     ProfileSubject(ProfileFixtures.query)]

    /// The secret a credential holds after a create: the declared one, or the one the server
    /// generated and answered with.
    static func secret(_ declared: String, _ made: CreatedCredential?, schema: ResourceSchema) -> Secret? {
        schema.capabilities.secret == .generated ? made?.generated.values.first : Secret(declared)
    }

    /// A valid credential for any schema: each field's value from its kind, format and rules;
    /// `variant` changes every value.
    static func resource(_ id: String, schema: ResourceSchema, variant: Int = 0) -> Resource {
        var fields: [String: FieldValue] = [:]
        for spec in schema.declarableFields {
            let value: FieldValue
            switch spec.kind {
            case .string:
                if let allowed = spec.oneOf {
                    value = .string(allowed[variant % allowed.count])
                } else if spec.format == .email {
                    value = .string("user\(variant)@example.com")
                } else {
                    value = .string("Value \(variant)")
                }
            case .bool: value = .bool(variant % 2 == 0)
            case .stringSet:
                if let allowed = spec.oneOf { value = .set([allowed[variant % allowed.count]]) } else if spec.format == .ipOrCIDR {
                    value = .set(["10.\(variant % 250).0.0/16"])
                } else {
                    // Values the server must already know (Apinizer roles) come from its seed.
                    value = spec.name == "roleNameList" ? .set([variant % 2 == 0 ? "ADMIN" : "API_USER"]) : .set(["item-\(variant)"])
                }
            case .instant: value = .instant(Timestamp.parse("2030-0\(1 + variant % 9)-01T00:00:00.000Z"))
            }
            fields[spec.name] = spec.canonical(value)
        }
        return Resource(id: CredentialKey(id), fields: fields)
    }

    static func failure(_ body: () async throws(ProviderError) -> Void) async -> ProviderError? {
        do throws(ProviderError) {
            try await body()
            return nil
        } catch {
            return error
        }
    }

    @Test(arguments: subjects.indices)
    func createReadBackUpdateEachFieldChangeTheSecretAndDelete(_ index: Int) async throws {
        let subject = Self.subjects[index]
        let server = try await subject.open(badAuth: false)
        defer { Task { await server.close() } }
        let session = server.session
        let created = Self.resource("conformance-a", schema: subject.schema)
        let made = try await session.create(created, in: subject.project, secret: Secret("first-secret-1"))
        // The id the server assigned comes back from the create, and the list says the same.
        let assigns = subject.schema.capabilities.identity == .serverAssigned
        #expect((made.serverID != nil) == assigns, "\(subject.name): assigned id \(String(describing: made.serverID))")
        let address = CredentialAddress(namespace: subject.project, key: created.id, serverID: made.serverID)
        var live = try await session.list(namespace: subject.project)
        let read = try #require(live.first { $0.id == created.id }, "\(subject.name): created, not listed")
        #expect(read.serverID == made.serverID, "\(subject.name)")
        #expect(Planner(schema: subject.schema).fieldChanges(live: read, desired: created).isEmpty, "\(subject.name): read back differs")
        let generated = subject.schema.capabilities.secret == .generated
        #expect(!generated || !made.generated.isEmpty, "\(subject.name): a generated secret comes with the create")
        #expect(await server.holds(created.id, Self.secret("first-secret-1", made, schema: subject.schema)), "\(subject.name)")

        // Each field on its own: the server takes it, and reads it back.
        let other = Self.resource("conformance-a", schema: subject.schema, variant: 1)
        var current = created
        for spec in subject.schema.declarableFields where !spec.isImmutable {
            let before = current
            current[spec.name] = other[spec.name]
            let changes = Planner(schema: subject.schema).fieldChanges(live: before, desired: current)
            #expect(changes.map(\.field) == [spec.name])
            try await session.update(address, to: current, changes: changes, secret: Secret("first-secret-1"))
            live = try await session.list(namespace: subject.project)
            let after = try #require(live.first { $0.id == created.id })
            #expect(Planner(schema: subject.schema).fieldChanges(live: after, desired: current).isEmpty, "\(subject.name): \(spec.name) not updated")
        }

        if generated {
            // A generated secret is renewed by a replace, never set.
            #expect(await Self.failure { () async throws(ProviderError) in try await session.setSecret(address, secret: Secret("x")) } != nil)
        } else {
            try await session.setSecret(address, secret: Secret("second-secret-2"))
            #expect(await server.holds(created.id, Secret("second-secret-2")), "\(subject.name)")
        }

        try await session.delete(address)
        #expect(try await session.list(namespace: subject.project).contains { $0.id == created.id } == false, "\(subject.name)")
    }

    /// Where the key is the id, a second create of a key is refused and changes nothing; where
    /// the server assigns ids, it makes a second credential of that name with an id of its own
    /// (the engine pins its own by id, so it must be able to tell them apart).
    @Test(arguments: subjects.indices)
    func aSecondCreateOfOneKeyIsRefusedOrGetsItsOwnID(_ index: Int) async throws {
        let subject = Self.subjects[index]
        let server = try await subject.open(badAuth: false)
        defer { Task { await server.close() } }
        let first = Self.resource("conformance-dup", schema: subject.schema)
        let made = try await server.session.create(first, in: subject.project, secret: Secret("first-secret-1"))
        var second: CreatedCredential?
        let error = await Self.failure { () async throws(ProviderError) in
            second = try await server.session.create(Self.resource("conformance-dup", schema: subject.schema, variant: 1), in: subject.project,
                                                     secret: Secret("other-secret-2"))
        }
        if subject.schema.capabilities.identity == .keyIsID {
            #expect(error != nil && error?.outcomeUnknown == false, "\(subject.name): \(String(describing: error))")
        } else {
            #expect(error == nil && second?.serverID != nil && second?.serverID != made.serverID, "\(subject.name)")
            let ids = try await server.session.list(namespace: subject.project).filter { $0.id == first.id }.compactMap(\.serverID)
            #expect(Set(ids) == Set([made.serverID, second?.serverID].compactMap { $0 }), "\(subject.name)")
        }
        #expect(await server.holds(first.id, Self.secret("first-secret-1", made, schema: subject.schema)), "\(subject.name)")
    }

    /// A write whose answer is lost says so (`outcomeUnknown`), so that the engine reads back
    /// instead of sending it again; reading back finds it.
    @Test(arguments: subjects.indices)
    func aLostCreateAnswerIsReportedAsUnknownAndFoundByReadingBack(_ index: Int) async throws {
        let subject = Self.subjects[index]
        let server = try await subject.open(badAuth: false)
        defer { Task { await server.close() } }
        await server.loseNextWriteAnswer()
        let resource = Self.resource("conformance-lost", schema: subject.schema)
        let error = await Self.failure { () async throws(ProviderError) in
            _ = try await server.session.create(resource, in: subject.project, secret: Secret("lost-secret-1"))
        }
        #expect(error?.outcomeUnknown == true, "\(subject.name): \(String(describing: error))")
        #expect(await server.holds(resource.id, Self.secret("lost-secret-1", nil, schema: subject.schema)), "\(subject.name)")
    }

    /// Refused credentials are an authentication failure the engine reports at once.
    @Test(arguments: subjects.indices)
    func refusedCredentialsAreAnAuthenticationFailure(_ index: Int) async throws {
        let subject = Self.subjects[index]
        let server = try await subject.open(badAuth: true)
        defer { Task { await server.close() } }
        let error = await Self.failure { () async throws(ProviderError) in _ = try await server.session.list(namespace: subject.project) }
        #expect(error?.kind == .authentication, "\(subject.name): \(String(describing: error))")
        #expect(error?.outcomeUnknown == false)
    }

    /// A replace as the engine makes it: where the key is the id, delete then create the same
    /// key again; where the server assigns ids, create the new one first, then delete the old by
    /// its id. Either way one credential is left, with the new fields and secret.
    @Test(arguments: subjects.indices)
    func aReplaceInTheEnginesOrderLeavesOneNewCredential(_ index: Int) async throws {
        let subject = Self.subjects[index]
        let server = try await subject.open(badAuth: false)
        defer { Task { await server.close() } }
        let session = server.session
        let old = Self.resource("conformance-r", schema: subject.schema)
        let new = Self.resource("conformance-r", schema: subject.schema, variant: 1)
        let first = try await session.create(old, in: subject.project, secret: Secret("old-secret-1"))
        let oldAddress = CredentialAddress(namespace: subject.project, key: old.id, serverID: first.serverID)
        let made: CreatedCredential
        if subject.schema.capabilities.identity == .keyIsID {
            try await session.delete(oldAddress)
            made = try await session.create(new, in: subject.project, secret: Secret("new-secret-2"))
        } else {
            made = try await session.create(new, in: subject.project, secret: Secret("new-secret-2"))
            #expect(made.serverID != first.serverID)
            try await session.delete(oldAddress)
        }
        let live = try await session.list(namespace: subject.project).filter { $0.id == old.id }
        #expect(live.count == 1, "\(subject.name)")
        #expect(Planner(schema: subject.schema).fieldChanges(live: try #require(live.first), desired: new).isEmpty, "\(subject.name)")
        #expect(await server.holds(old.id, Self.secret("new-secret-2", made, schema: subject.schema)), "\(subject.name)")
        if subject.schema.capabilities.secret == .generated {
            #expect(await server.holds(old.id, Self.secret("", first, schema: subject.schema)) == false, "\(subject.name): the old secret still works")
        }
    }

    /// A server that rate-limits (429 with Retry-After) is waited out, not failed on.
    @Test(arguments: subjects.indices)
    func aRateLimitIsWaitedOut(_ index: Int) async throws {
        let subject = Self.subjects[index]
        let server = try await subject.open(badAuth: false)
        defer { Task { await server.close() } }
        guard let rateLimit = server.rateLimit else { return }  // no HTTP server, no rate limit
        // Token, selection and connections first, so that the six below go out together.
        _ = try await server.session.list(namespace: subject.project)
        await rateLimit(true)
        // Six at once against a budget of two: some meet the 429. On a loaded machine the six
        // may spread over seconds and stay within the budget, so the burst is sent again (at
        // most five times) until one was limited; every call must succeed all the same.
        let session = server.session
        let project = subject.project
        for _ in 0..<5 where session.statistics.retries == 0 {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<6 { group.addTask { _ = try await session.list(namespace: project) } }
                try await group.waitForAll()
            }
        }
        await rateLimit(false)
        #expect(server.session.statistics.retries > 0, "\(subject.name): \(server.session.statistics)")
    }
}
