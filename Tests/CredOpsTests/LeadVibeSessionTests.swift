@testable import ApinizerSandbox
import CredOps
import Foundation
import LeadVibeProvider
import Testing

/// The LeadVibe session against its emulator: one cookie per unit, never mixed, selected once;
/// a project mapped to a unit, or to the default one; an unknown unit named with the real ones.
@Suite struct LeadVibeSessionTests {
    static let token = "lv-session-token-0123456789"

    func open(projects: [ProjectName: ProjectName] = [:], ttl: Duration? = nil)
        async throws -> (LeadVibeServer, any ProviderSession, HTTPClient) {
        var configuration = LeadVibeConfiguration(tokens: [Self.token], units: LeadVibeConfiguration.units(["unit_main", "unit_emea", "unit_apac"]))
        configuration.unitSessionTTL = ttl
        let server = try await LeadVibeServer.start(configuration)
        var env = EnvironmentConfig(name: "lv", file: "lv.yaml", location: SourceLocation(file: "lv.yaml", line: 1, column: 1),
                                    provider: "leadvibe", endpoint: .url(server.baseURL),
                                    endpointLocation: SourceLocation(file: "lv.yaml", line: 1, column: 1))
        env.projects = projects
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 8))
        let session = LeadVibeProvider().session(for: env, connection: Connection(baseURL: server.baseURL, credentials: .bearer(Secret(Self.token)),
                                                                                  retry: RetrySettings()), http: http)
        return (server, session, http)
    }

    @Test func concurrentWorkOnTwoUnitsNeverMixesTheirCookies() async throws {
        let (server, session, http) = try await open()
        defer { http.shutdown(); Task { await server.stop() } }
        // Forty creates and lists at once, on two units of one session.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<40 {
                let unit: ProjectName = i % 2 == 0 ? "unit_main" : "unit_emea"
                group.addTask {
                    _ = try await session.create(Resource(id: CredentialKey("\(unit.rawValue)-\(i)"), fields: ["trust_upstream_consent": .bool(false)]),
                                                 in: unit, secret: nil)
                    _ = try await session.list(namespace: unit)
                }
            }
            try await group.waitForAll()
        }
        let held = await server.secrets()
        #expect(held.count == 40)
        for secret in held { #expect(secret.name.hasPrefix(secret.unitID + "-"), "\(secret.name) landed in \(secret.unitID)") }
        let main = try await session.list(namespace: "unit_main")
        #expect(main.count == 20 && main.allSatisfy { $0.id.rawValue.hasPrefix("unit_main-") })
        // Each unit selected once, however many calls wanted it at the same moment.
        #expect(await server.stats().byRoute["POST /org-units/active"] == 2)
    }

    @Test func aProjectGoesToItsMappedUnitOrTheDefaultOneAndAnUnknownUnitIsNamed() async throws {
        let (server, session, http) = try await open(projects: ["feeds": "unit_apac", "typo": "unit_emae"])
        defer { http.shutdown(); Task { await server.stop() } }
        _ = try await session.create(Resource(id: "Default one", fields: [:]), in: "intake", secret: nil)
        _ = try await session.create(Resource(id: "Mapped one", fields: [:]), in: "unit_apac", secret: nil)
        let held = await server.secrets()
        #expect(held.first { $0.name == "Default one" }?.unitID == "unit_main")
        #expect(held.first { $0.name == "Mapped one" }?.unitID == "unit_apac")
        do {
            _ = try await session.list(namespace: "unit_emae")
            Issue.record("an unknown unit was listed")
        } catch {
            #expect(error.message.contains("unit 'unit_emae'") && error.message.contains("unit_main (default), unit_emea, unit_apac"), "\(error)")
        }
    }

    @Test func anExpiredUnitCookieIsSelectedAgainOnce() async throws {
        let (server, session, http) = try await open()
        defer { http.shutdown(); Task { await server.stop() } }
        _ = try await session.list(namespace: "unit_emea")
        await server.endUnitSessions()
        let made = try await session.create(Resource(id: "After expiry", fields: [:]), in: "unit_emea", secret: nil)
        #expect(made.generated["client_secret"] != nil && made.delivered["client_id"] != nil)
        #expect(await server.stats().byRoute["POST /org-units/active"] == 2)
        #expect(await server.check(clientID: made.delivered["client_id"] ?? "", clientSecret: made.generated["client_secret"]?.reveal() ?? ""))
    }

    @Test func aNameOutsideOneToFiftyCharactersIsRefusedAsTheServerSaysIt() async throws {
        let (server, session, http) = try await open()
        defer { http.shutdown(); Task { await server.stop() } }
        do {
            _ = try await session.create(Resource(id: CredentialKey(String(repeating: "x", count: 51)), fields: [:]), in: "unit_main", secret: nil)
            Issue.record("a 51-character name was taken")
        } catch {
            #expect(error.message.contains("400 Name must be 1-50 characters") && !error.outcomeUnknown, "\(error)")
        }
    }
}
