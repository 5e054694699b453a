import CredOps
import Foundation
import Testing
@testable import ApinizerSandbox

@Suite("Persistence")
struct PersistenceTests {
    typealias H = SandboxHarness

    /// A fresh directory under the temporary directory, removed after `body`.
    private func withTemporaryDirectory<T>(_ body: (String) async throws -> T) async throws -> T {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sandbox-tests-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        return try await body(path)
    }

    private func mode(_ path: String) throws -> Int {
        try (FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue ?? -1
    }

    @Test func stateSurvivesARestartFromTheDataFile() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory + "/nested/sandbox.json"
            let before = try await H.with(H.configuration(dataFile: file)) { h async throws in
                try await h.create("alice", extra: #", "roleNameList": ["API_USER"], "expireDate": "2031-05-06T07:08:09.123Z""#)
                try await h.create("bob", in: "payments")
                let grant = try await h.send(.put, H.credentialsPath("MyProject", "alice", access: true),
                                             json: #"{"credentialAccessList":[{"name":"MyAPIGroup","type":"API_PROXY_GROUP"}]}"#)
                #expect(grant.status == 200)
                return await h.server.snapshot()
            }
            #expect(FileManager.default.fileExists(atPath: file))
            try await H.with(H.configuration(dataFile: file)) { h async throws in
                let after = await h.server.snapshot()
                #expect(after == before)
                #expect(await h.stored("alice")?.password == "secret-1")
                #expect(await h.stored("alice")?.access == [SandboxAccess(name: "MyAPIGroup", type: "API_PROXY_GROUP")])
                let list = try await h.send(.get, H.credentialsPath("admin"))
                #expect(list.json["resultList"]?.arrayValue?.compactMap { $0["username"]?.stringValue } == ["alice", "bob"])
            }
        }
    }

    @Test func dataFileHasMode0600AndANewDirectory0700() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory + "/data/sandbox.json"
            try await H.with(H.configuration(dataFile: file)) { h async throws in
                #expect(FileManager.default.fileExists(atPath: file), "written at start")
                try await h.create("alice")
                try await h.server.flush()
                #expect(try mode(file) == 0o600)
                #expect(try mode(directory + "/data") == 0o700)
            }
            #expect(try mode(file) == 0o600)
            // No temporary files are left behind.
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory + "/data") == ["sandbox.json"])
        }
    }

    @Test func savesOfManyConcurrentWritesAreCoalesced() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory + "/sandbox.json"
            let writes = 300
            try await H.with(H.configuration(dataFile: file)) { h async throws in
                let initialSaves = await h.server.saveCount()
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for worker in 0..<4 {
                        group.addTask {
                            for i in stride(from: worker, to: writes, by: 4) { try await h.create("user-\(i)") }
                        }
                    }
                    try await group.waitForAll()
                }
                try await h.server.flush()
                let saves = await h.server.saveCount() - initialSaves
                #expect(saves >= 1)
                #expect(saves < writes, "\(saves) saves for \(writes) writes")
            }
            let saved = try JSONDecoder().decode(SandboxSeed.self, from: Data(contentsOf: URL(fileURLWithPath: file)))
            #expect(saved.credentials.count == writes)
        }
    }

    @Test func damagedDataFileIsAnErrorAtStart() async throws {
        try await withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let file = directory + "/sandbox.json"
            try Data("{not json".utf8).write(to: URL(fileURLWithPath: file))
            await #expect {
                _ = try await SandboxServer.start(H.configuration(dataFile: file))
            } throws: { error in
                (error as? SandboxError)?.kind == .dataFile
            }
        }
    }

    @Test func configuredSeedAddsToTheCatalogOfAnExistingDataFile() async throws {
        try await withTemporaryDirectory { directory in
            let file = directory + "/sandbox.json"
            try await H.with(H.configuration(dataFile: file)) { h async throws in try await h.create("alice") }
            var seed = H.testSeed
            seed.roles.append("AUDITOR")
            try await H.with(H.configuration(seed: seed, dataFile: file)) { h async throws in
                #expect(await h.stored("alice") != nil)
                let update = try await h.send(.put, H.credentialsPath("MyProject"), json: """
                {"username":"alice","password":"p","email":"a@b.io","fullName":"A","roleNameList":["AUDITOR"],"enabled":true,"ipList":[]}
                """)
                #expect(update.status == 200)
            }
        }
    }

    @Test func withoutADataFileNothingIsKept() async throws {
        try await H.with { h async throws in try await h.create("alice") }
        try await H.with { h async throws in #expect(await h.server.snapshot().credentials.isEmpty) }
    }
}
