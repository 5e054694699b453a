import CredOps
import CredOpsTestSupport
import Foundation
import LeadVibeProvider
import Testing

final class OpenCount: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}

/// `deliver:`, `rotateAfter:` and `overlap:` as the loader checks them, the sinks as they
/// write and run, and what the planner decides for a generated secret.
@Suite struct DeliveryTests {
    static let schemas = ["leadvibe": LeadVibeProvider.credentialSchema]

    func load(_ manifest: String, roots: [String] = []) -> (Inputs?, [String], TemporaryDirectory) {
        let dir = TemporaryDirectory()
        dir.write("environments/lv.yaml", "provider: leadvibe\nurl: sandbox://lv\n")
        dir.write("repo/.git/HEAD", "ref: refs/heads/main\n")
        dir.write("repo/m/feeds.yaml", manifest)
        let (inputs, diagnostics) = InputLoader(schemas: Self.schemas, options: LoadOptions(deliveryRoots: roots))
            .load(paths: [dir.url("repo/m")], environmentsDirectory: dir.url("environments"))
        let root = dir.url("repo/m/")
        return (inputs, diagnostics.map { $0.description.replacingOccurrences(of: root, with: "") }, dir)
    }

    static func manifest(_ body: String, top: String = "") -> String {
        "apiVersion: credops/v1\nkind: CredentialSet\nprovider: leadvibe\nproject: feeds\n\(top)credentials:\n\(body)"
    }

    @Test func sinksAreCheckedWhenManifestsLoad() {
        let (_, problems, _) = load(Self.manifest("""
              - name: A
                deliver: { file: "out/{enviroment}/{name}.env" }
              - name: B
                deliver: { file: out/b.txt }
              - name: C
                deliver: { file: ../../elsewhere/c.env }
              - name: D
                deliver: { command: [no-such-program-credops-test, "{name}"] }
              - name: E
              - name: \(String(repeating: "n", count: 51))
                deliver: { file: out/n.env }
              - name: F
                rotateAfter: 10x
                deliver: { file: out/f.env, timeout: 5 }
            """))
        #expect(problems.contains { $0.hasPrefix("feeds.yaml:7:22: error: unknown placeholder {enviroment} (did you mean {environment}?)") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("feeds.yaml:9:22: error: file must end in .env") }, "\(problems)")
        #expect(problems.contains { $0.contains("feeds.yaml:11:22: error: file must be inside the repository") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("feeds.yaml:13:26: error: command 'no-such-program-credops-test' is not found on PATH") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("feeds.yaml:14:5: error: credential 'E' has a secret the server generates and nowhere to deliver it") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("feeds.yaml:15:11: error: name must be 1–50 characters long, found 51") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("feeds.yaml:18:18: error: rotateAfter must be a duration such as 90d") }, "\(problems)")
        #expect(problems.contains { $0.hasPrefix("feeds.yaml:19:33: error: timeout is for a command") }, "\(problems)")
        #expect(problems.count == 8, "\(problems)")
    }

    @Test func aFileOutsideTheRepositoryIsAllowedUnderADeliveryRootAndDefaultsApplyPerEnvironment() throws {
        let outside = TemporaryDirectory()
        let (inputs, problems, _) = load(Self.manifest("""
              - name: Partner Feed
              - name: Own
                rotateAfter: 30d
                overlap: 0s
                deliver: { command: [sh, -c, "cat", "{project}"], timeout: 2m }
            """, top: "deliver: { file: \"\(outside.path)/{environment}/{name}.json\" }\nrotateAfter: 90d\noverlap: 24h\n"),
                                         roots: [outside.path])
        #expect(problems.isEmpty, "\(problems)")
        let env = try #require(inputs?.environments.first)
        let desired = try #require(inputs?.desired(for: env, schema: LeadVibeProvider.credentialSchema).projects.first?.credentials)
        let feed = try #require(desired.first { $0.key == "Partner Feed" })
        guard case .file(let path, let format, let roots)? = feed.delivery?.sink else { Issue.record("not a file"); return }
        #expect(path == "\(outside.path)/lv/Partner Feed.json" && format == .json && roots.contains(outside.path))
        #expect(feed.delivery?.overlapSeconds == 86_400 && feed.rotateAfter == 90 * 86_400)
        let own = try #require(desired.first { $0.key == "Own" })
        guard case .command(let argv, let timeout, _, _)? = own.delivery?.sink else { Issue.record("not a command"); return }
        #expect(argv == ["sh", "-c", "cat", "feeds"] && timeout == 120)
        #expect(own.delivery?.overlapSeconds == 0 && own.rotateAfter == 30 * 86_400)
    }

    static let payload = DeliveryPayload(values: ["client_id": "cli_1", "name": "Partner \"Feed\" $HOME `id`", "secret_id": "sec_1"],
                                         secrets: ["client_secret": Secret("lvs_secret-value_1")])

    /// A killed run's temporary files are removed by the next delivery of the same file; the
    /// directory is listed once per run, and a temporary file that appears later (another
    /// run's write in progress) is left alone.
    @Test func leftoverTemporaryFilesOfAKilledRunAreRemovedOnce() async throws {
        let dir = TemporaryDirectory()
        let deliverer = Deliverer()
        let first = Delivery(sink: .file(path: dir.url("out/a.env"), format: .env, roots: [dir.path]), shown: "out/a.env")
        _ = try await deliverer.deliver(Self.payload, to: first)
        dir.write("out/.a.env.4242.ab12.tmp", "half a pair")
        dir.write("out/.b.env.4242.cd34.tmp", "half another")
        let next = Deliverer()
        _ = try await next.deliver(Self.payload, to: first)
        var left = try FileManager.default.contentsOfDirectory(atPath: dir.url("out")).sorted()
        #expect(left == [".b.env.4242.cd34.tmp", ".gitignore", "a.env"], "\(left)")
        dir.write("out/.a.env.777.ef56.tmp", "another run, writing now")
        _ = try await next.deliver(Self.payload, to: first)
        _ = try await next.deliver(Self.payload, to: Delivery(sink: .file(path: dir.url("out/b.env"), format: .env, roots: [dir.path]), shown: "out/b.env"))
        left = try FileManager.default.contentsOfDirectory(atPath: dir.url("out")).sorted()
        #expect(left == [".a.env.777.ef56.tmp", ".gitignore", "a.env", "b.env"], "\(left)")
    }

    @Test func aFileSinkWritesAPrivateFileAtomicallyInAPrivateDirectory() async throws {
        let dir = TemporaryDirectory()
        let path = dir.url("out/lv/feed.env")
        let delivery = Delivery(sink: .file(path: path, format: .env, roots: [dir.path]), shown: "out/lv/feed.env")
        _ = try await Deliverer().deliver(Self.payload, to: delivery)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == "CLIENT_ID=cli_1\nCLIENT_SECRET=lvs_secret-value_1\nNAME=\"Partner \\\"Feed\\\" \\$HOME \\`id\\`\"\nSECRET_ID=sec_1\n")
        #expect((try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: dir.url("out/lv"))[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        #expect(FileManager.default.fileExists(atPath: dir.url("out/lv/.gitignore")))
        // Nothing else was left beside it.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url("out/lv")).sorted() == [".gitignore", "feed.env"])

        // A directory others can read is refused, and nothing is written there.
        try FileManager.default.createDirectory(atPath: dir.url("open"), withIntermediateDirectories: true)
        chmod(dir.url("open"), 0o755)
        do {
            _ = try await Deliverer().deliver(Self.payload, to: Delivery(sink: .file(path: dir.url("open/x.json"), format: .json, roots: [dir.path]), shown: "open/x.json"))
            Issue.record("delivered into a directory others can read")
        } catch {
            #expect(error.description.contains("can be read by others (mode 755); run chmod 700"), "\(error)")
        }
        #expect(!FileManager.default.fileExists(atPath: dir.url("open/x.json")))
    }

    /// Many deliveries at once into one directory none of them found: every one lands (the
    /// directory is never seen open between its creation and its narrowing).
    @Test func deliveriesAtOnceIntoANewDirectoryAllLand() async throws {
        let dir = TemporaryDirectory()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<32 {
                let delivery = Delivery(sink: .file(path: dir.url("out/lv/alpha/feed \(i).json"), format: .json, roots: [dir.path]),
                                        shown: "feed \(i).json")
                group.addTask { _ = try await Deliverer().deliver(Self.payload, to: delivery) }
            }
            try await group.waitForAll()
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.url("out/lv/alpha")).filter { $0.hasSuffix(".json") }.count == 32)
        // The race itself, on threads: whoever finds the directory made never finds it open.
        let open = OpenCount()
        for round in 0..<300 {
            let path = dir.url("race/\(round)/a/b")
            DispatchQueue.concurrentPerform(iterations: 6) { _ in
                try? SecureFiles.ensureDirectory(path)
                var info = stat()
                if stat(path, &info) == 0, info.st_mode & 0o077 != 0 { open.add() }
            }
        }
        #expect(open.value == 0, "a new directory was seen open \(open.value) times")
    }

    @Test func aFileIsNeverWrittenThroughALinkOutOfItsRoots() async throws {
        let dir = TemporaryDirectory()
        let outside = TemporaryDirectory()
        try FileManager.default.createDirectory(atPath: dir.url("repo"), withIntermediateDirectories: true)
        try FileManager.default.createSymbolicLink(atPath: dir.url("repo/out"), withDestinationPath: outside.path)
        let delivery = Delivery(sink: .file(path: dir.url("repo/out/lv/x.env"), format: .env, roots: [dir.url("repo")]), shown: "out/lv/x.env")
        await #expect { try await Deliverer().deliver(Self.payload, to: delivery) } throws: { "\($0)".contains("outside the repository") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: outside.path).isEmpty, "nothing is created through the link")
    }

    @Test func twoUnmappedProjectsWouldShareTheDefaultUnitAndAreRefused() {
        let dir = TemporaryDirectory()
        dir.write("environments/lv.yaml", "provider: leadvibe\nurl: sandbox://lv\nprojects: { mapped: unit_b }\n")
        for project in ["feeds", "orders", "mapped"] {
            dir.write("m/\(project).yaml", "apiVersion: credops/v1\nkind: CredentialSet\nprovider: leadvibe\nproject: \(project)\n"
                      + "deliver: { file: \"out/{project}/{name}.env\" }\ncredentials:\n  - name: A\n")
        }
        let (_, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [dir.url("m")], environmentsDirectory: dir.url("environments"))
        let problems = diagnostics.map(\.description)
        #expect(problems.count == 1 && problems[0].contains("projects feeds (at") && problems[0].contains("and orders are mapped to nothing in environment lv"),
                "\(problems)")
    }

    @Test func twoCredentialsCannotShareADeliveryFile() {
        let (_, problems, _) = load(Self.manifest("  - name: A\n  - name: B\n", top: "deliver: { file: \"out/{environment}.env\" }\n"))
        #expect(problems.count == 1 && problems[0].contains("credential 'B' would deliver to the same file as 'A'"), "\(problems)")
    }

    @Test func aCommandGetsOnlyBasicVariablesAndThoseItNames() {
        let all = ["PATH": "/bin", "HOME": "/h", "CREDOPS_STATE_KEY": "k", "LEADVIBE_TOKEN": "t", "GH_TOKEN": "g"]
        #expect(Deliverer.environment(passing: [], from: all) == ["PATH": "/bin", "HOME": "/h"])
        #expect(Deliverer.environment(passing: ["GH_TOKEN"], from: all) == ["PATH": "/bin", "HOME": "/h", "GH_TOKEN": "g"])
    }

    @Test func aCommandSinkGetsOneJSONObjectOnStdinAndMustExitZeroInTime() async throws {
        let dir = TemporaryDirectory()
        let out = dir.url("got.json")
        let ok = Delivery(sink: .command(argv: ["sh", "-c", "cat > '\(out)'; echo stored it", "x"], timeoutSeconds: 120, directory: dir.path), shown: "sh")
        let said = try await Deliverer().deliver(Self.payload, to: ok)
        #expect(said == "stored it")
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: String]
        #expect(object?["client_secret"] == "lvs_secret-value_1" && object?["client_id"] == "cli_1")

        let failing = Delivery(sink: .command(argv: ["sh", "-c", "echo refused >&2; exit 4"], timeoutSeconds: 120, directory: dir.path), shown: "sh")
        await #expect { try await Deliverer().deliver(Self.payload, to: failing) } throws: { "\($0)".contains("exited with 4: refused") }

        let slow = Delivery(sink: .command(argv: ["sh", "-c", "sleep 30"], timeoutSeconds: 1, directory: dir.path), shown: "sh")
        let started = ContinuousClock.now
        await #expect { try await Deliverer().deliver(Self.payload, to: slow) } throws: { "\($0)".contains("did not finish within 1 s") }
        #expect(ContinuousClock.now - started < .seconds(20), "the slow command was not stopped")
    }

    // MARK: Planning

    static let schema = LeadVibeProvider.credentialSchema
    static let delivery = Delivery(sink: .file(path: "/tmp/x.env", format: .env, roots: ["/tmp"]), shown: "x.env")

    func input(managed: ManagedCredential?, live: Resource?, rotateAfter: Int? = nil, rotate: Bool = false,
               retiring: [Resource] = []) -> Planner.ProjectInput {
        let desired = DesiredCredential(resource: Resource(id: "Feed", fields: ["trust_upstream_consent": .bool(false)]), secret: nil, grants: nil,
                                        location: SourceLocation(file: "m.yaml", line: 3, column: 5), delivery: Self.delivery, rotateAfter: rotateAfter)
        var input = Planner.ProjectInput(desired: DesiredProject(project: "feeds", serverProject: "unit_emea", prune: .managed, credentials: [desired],
                                                                 location: SourceLocation(file: "m.yaml", line: 1, column: 1)),
                                         live: live.map { [$0] } ?? [], liveGrants: [:], managed: managed.map { ["Feed": $0] } ?? [:], secrets: [:])
        if rotate { input.rotate = ["Feed"] }
        input.retiring = retiring.isEmpty ? [:] : ["Feed": retiring]
        return input
    }

    static func record(_ delivery: SecretDelivery, retiring: [RetiringCredential] = []) -> ManagedCredential {
        ManagedCredential(environment: "lv", namespace: "unit_emea", key: "Feed", serverID: "sec_new", secretFingerprint: nil, grants: [],
                          delivery: delivery, lastAction: "create", lastRunID: "r", lastChangedAt: Date(), retiring: retiring)
    }

    static func live(_ id: String = "sec_new", daysOld: Int = 1) -> Resource {
        let created = Timestamp.format(Int64(Date().addingTimeInterval(-Double(daysOld) * 86_400 - 60).timeIntervalSince1970 * 1000))
        return Resource(id: "Feed", fields: FieldMap(["trust_upstream_consent": .bool(false), "created_at": .string(created)]), serverID: id)
    }

    @Test func theSecretOfAGeneratedCredentialDecidesItsReplace() throws {
        let planner = Planner(schema: Self.schema)
        // Not on the server: created, with its delivery.
        let create = planner.plan(input(managed: nil, live: nil)).changes
        #expect(create.count == 1 && create[0].action.kind == .create && create[0].delivery == Self.delivery && create[0].action.secretFingerprint == nil)
        // Delivered and young: nothing.
        #expect(planner.plan(input(managed: Self.record(.delivered), live: Self.live(), rotateAfter: 90 * 86_400)).changes.isEmpty)
        // Never delivered: replaced.
        let undelivered = planner.plan(input(managed: Self.record(.undelivered), live: Self.live())).changes
        #expect(undelivered.map(\.action.kind) == [.replace] && undelivered[0].reason == .secretNeverDelivered)
        // Older than rotateAfter: replaced, saying how old.
        let old = planner.plan(input(managed: Self.record(.delivered), live: Self.live(daysOld: 97), rotateAfter: 90 * 86_400)).changes
        #expect(old.first?.reason == .rotationDue(ageDays: 97, afterDays: 90), "\(old)")
        // Made by someone else: adopted once with a word about it, then left alone even when old.
        let adopt = planner.plan(input(managed: nil, live: Self.live(daysOld: 200), rotateAfter: 90 * 86_400)).changes
        #expect(adopt.map(\.action.kind) == [.adopt] && adopt[0].reason == .secretNotDeliveredByCredops)
        #expect(planner.plan(input(managed: Self.record(.external), live: Self.live(daysOld: 200), rotateAfter: 90 * 86_400)).changes.isEmpty)
        // ... unless rotation is asked for.
        let asked = planner.plan(input(managed: Self.record(.external), live: Self.live(), rotate: true)).changes
        #expect(asked.first?.reason == .rotationRequested && asked.first?.action.kind == .replace)
    }

    @Test func aReplacedCredentialIsDeletedWhenItsOverlapEndsAndNotCountedAsAMassDelete() throws {
        let planner = Planner(schema: Self.schema)
        let waiting = Self.record(.delivered, retiring: [RetiringCredential(serverID: "sec_old", deleteAfter: Date().addingTimeInterval(3600))])
        let kept = planner.plan(input(managed: waiting, live: Self.live(), retiring: [Self.live("sec_old")]))
        #expect(kept.changes.isEmpty && kept.retiring.map(\.serverID) == ["sec_old"])
        let due = Self.record(.delivered, retiring: [RetiringCredential(serverID: "sec_old", deleteAfter: Date().addingTimeInterval(-1)),
                                                     RetiringCredential(serverID: "sec_gone", deleteAfter: nil)])
        let plan = planner.plan(input(managed: due, live: Self.live(), retiring: [Self.live("sec_old")]))
        #expect(plan.changes.map(\.action.kind) == [.delete] && plan.changes[0].serverID == "sec_old")
        #expect(plan.retiredGone["Feed"] == ["sec_gone"] && plan.retirements == 1)
        var env = EnvironmentPlan(environment: "lv", provider: "leadvibe", endpoint: "x", isProtected: true, projects: [plan])
        env.projects[0].liveCount = 2
        #expect(env.guardRailRefusals(options: PlanOptions()).isEmpty, "a retirement is not a removal")
    }
}
