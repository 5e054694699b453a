import ApinizerProvider
import CredOps
import CredOpsRender
import CredOpsTestSupport
import Foundation
import Testing

/// Rendered outputs compared with golden files in Golden/ (set CREDOPS_UPDATE_GOLDEN=1 to rewrite them).
@Suite struct RenderTests {
    static let schemas = ["apinizer": ApinizerProvider.credentialSchema]
    static let key = FingerprintKey(bytes: [UInt8](repeating: 3, count: 32))
    static let fp = Secret("pw").fingerprint(key: key, context: "c")

    static func resource(_ id: String, _ fields: [String: FieldValue] = [:]) -> Resource {
        var r = PlannerTests.resource(id)
        for (k, v) in fields { r.fields[k] = v }
        return r
    }

    static func change(_ id: String, _ action: Action, reason: ChangeReason? = nil) -> Change {
        Change(project: "payments", serverProject: "payments", key: CredentialKey(id), action: action, reason: reason)
    }

    /// Two environments: staging with one change of every kind, production in sync.
    static var samplePlan: Plan {
        let staging = ProjectPlan(project: "payments", serverProject: "payments", prune: .managed, changes: [
            change("checkout-service", .create(after: resource("checkout-service", ["ipList": .set(["10.0.0.0/8"]),
                                                                                      "expireDate": .instant(Timestamp.parse("2027-06-30T23:59:59Z"))]),
                                               secret: fp)),
            change("checkout-service", .grant([AccessGrant(type: "API_PROXY", name: "PaymentAPI")])),
            change("reporting-bot", .update(before: resource("reporting-bot", ["ipList": .set(["10.2.0.0/16"])]),
                                            after: resource("reporting-bot", ["enabled": .bool(false), "ipList": .set(["10.1.0.0/16"])]),
                                            fields: [FieldChange(field: "enabled", before: .bool(true), after: .bool(false)),
                                                     FieldChange(field: "ipList", before: .set(["10.2.0.0/16"]), after: .set(["10.1.0.0/16"]))],
                                            secret: fp, secretChanged: false)),
            change("billing-bot", .setSecret(fp), reason: .secret(.changedSinceLastApply)),
            change("old-bot", .delete(before: resource("old-bot")), reason: .noLongerDeclared),
        ], leftAlone: ["legacy-user"], inSync: 2, liveCount: 5)
        return Plan(environments: [
            EnvironmentPlan(environment: "production", provider: "apinizer", endpoint: "https://prod", isProtected: true,
                            projects: [ProjectPlan(project: "payments", serverProject: "Payments-Prod", prune: .managed, inSync: 5, liveCount: 5)]),
            EnvironmentPlan(environment: "staging", provider: "apinizer", endpoint: "https://staging", isProtected: false, projects: [staging]),
        ], createdAt: Date(timeIntervalSince1970: 1_800_000_000))
    }

    static var sampleReport: ApplyReport {
        var staging = ReportCounts()
        staging.created = 2
        staging.granted = 1
        return ApplyReport(runID: "7f3c9a12", environments: [
            EnvironmentReport(environmentName: "production", results: [
                OperationResult(project: "payments", key: "checkout-service", action: .create, status: .applied),
                OperationResult(project: "payments", key: "billing-bot", action: .update, status: .failed,
                                failure: .provider("PUT /apiops/projects/payments/credentials/ → 400 bad_request: Credential role (AUDITOR) was not found!")),
                OperationResult(project: "payments", key: "billing-bot", action: .grant, status: .skipped,
                                skipReason: .earlierStepFailed(.update)),
            ]).with(durationMilliseconds: 1250),
            EnvironmentReport(environmentName: "staging", changes: staging, operations: [], durationMilliseconds: 830),
        ])
    }

    /// The report document keeps Apinizer's `deploymentResult` shape and its words, whatever
    /// the engine's values look like.
    @Test func reportDocumentHasTheDeploymentResultShapeAndMessages() throws {
        let json = try JSONSerialization.jsonObject(with: ReportJSONRenderer.render(Self.sampleReport)) as? [String: Any]
        let result = json?["deploymentResult"] as? [String: Any]
        #expect(json?["success"] as? Bool == false)
        #expect(json?["runId"] as? String == "7f3c9a12")
        #expect(result?["message"] as? String == "Deployment failed in 1 of 2 environments")
        let envs = result?["environmentResults"] as? [[String: Any]] ?? []
        #expect(envs.map { $0["environmentName"] as? String } == ["production", "staging"])
        #expect(envs.first?["message"] as? String
            == "1 of 3 operations failed: billing-bot update: PUT /apiops/projects/payments/credentials/ → 400 bad_request: Credential role (AUDITOR) was not found!")
        #expect(envs.last?["message"] as? String == "Deployed successfully: 2 created, 1 granted")
        let ops = envs.first?["operations"] as? [[String: Any]] ?? []
        #expect(ops.map { $0["error"] as? String } == [nil, "PUT /apiops/projects/payments/credentials/ → 400 bad_request: Credential role (AUDITOR) was not found!",
                                                       "skipped: the update of this credential failed"])
        #expect((envs.first?["changes"] as? [String: Int])?["created"] == 1)
    }

    /// Outcomes are typed: the count of changed secrets comes from a note, not from matching words.
    @Test func secretChangedByAnUpdateIsCountedFromItsNote() {
        let env = EnvironmentReport(environmentName: "dev", results: [
            OperationResult(project: "p", key: "a", action: .update, status: .applied, notes: [.secretChanged]),
            OperationResult(project: "p", key: "b", action: .update, status: .applied,
                            notes: [.answerLost(times: 1, lastError: "password changed", then: .foundCreated)]),
            OperationResult(project: "p", key: "c", action: .secret, status: .applied),
        ])
        #expect(env.changes.updated == 2)
        #expect(env.changes.passwordChanged == 2)
        #expect(ReportWording.message(env) == "Deployed successfully: 2 updated, 2 password changed")
        #expect(ReportWording.remark(env.operations[0]) == nil)
        #expect(ReportWording.remark(env.operations[1]) == "answer lost (password changed); found created on read-back")
    }

    func golden(_ name: String, _ text: String, sourceLocation: Testing.SourceLocation = #_sourceLocation) throws {
        let path = PackagePaths.path("Tests/CredOpsTests/Golden/\(name)")
        if ProcessInfo.processInfo.environment["CREDOPS_UPDATE_GOLDEN"] == "1" {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        }
        let expected = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text == expected, "differs from Golden/\(name)", sourceLocation: sourceLocation)
    }

    @Test func planAsText() throws {
        try golden("plan.txt", PlanTextRenderer(style: .plain, schemas: Self.schemas).render(Self.samplePlan) + "\n")
    }

    @Test func planAsMarkdown() throws {
        try golden("plan.md", MarkdownRenderer(schemas: Self.schemas).render(Self.samplePlan) + "\n")
    }

    @Test func reportAsMarkdown() throws {
        try golden("report.md", MarkdownRenderer(schemas: Self.schemas).render(Self.sampleReport) + "\n")
    }

    @Test func reportAsJUnit() throws {
        try golden("report.junit.xml", JUnitRenderer.render(Self.sampleReport) + "\n")
    }

    @Test func hugePlanIsShortenedCleanlyUnderTheCommentLimit() {
        let changes = (0..<10_000).map { i in
            Self.change(String(format: "user-%05d", i), .create(after: Self.resource("user-\(i)"), secret: Self.fp))
        }
        let plan = Plan(environments: ["dev", "staging", "production"].map { name in
            EnvironmentPlan(environment: EnvironmentName(name), provider: "apinizer", endpoint: "x", isProtected: false,
                            projects: [ProjectPlan(project: "payments", serverProject: "payments", prune: .managed, changes: changes)])
        })
        let full = MarkdownRenderer(schemas: Self.schemas, limit: .max).render(plan)
        let short = MarkdownRenderer(schemas: Self.schemas).render(plan)
        #expect(full.count > 1_000_000)
        #expect(short.count <= 60_000)
        // Clean: every section and code block is closed, and the footer is there.
        #expect(short.components(separatedBy: "<details>").count == short.components(separatedBy: "</details>").count)
        #expect(short.components(separatedBy: "```").count % 2 == 1)
        #expect(short.hasSuffix("3 environments · 3 with changes · 0 without · 0 failed"))
        #expect(short.contains("more lines; run `credops plan` or see the saved plan for all of them"))
        print("FIGURE markdown: a 30,000-change plan renders to \(full.count) characters in full, \(short.count) shortened")
    }

    @Test func junitEscapesWhatXMLCannotHold() {
        let report = ApplyReport(runID: "r", environments: [
            EnvironmentReport(environmentName: "a<b>&\"c\"", problem: .notPlanned("bad \u{1} <tag> & 'quote'")),
        ])
        let xml = JUnitRenderer.render(report)
        #expect(xml.contains(#"name="a&lt;b&gt;&amp;&quot;c&quot;""#))
        #expect(xml.contains("bad  &lt;tag&gt; &amp; &apos;quote&apos;"))
    }

    /// Server text in a pull-request comment is inert: no link, image, mention or tag; in a
    /// terminal it cannot move the cursor or hide what follows.
    @Test func serverTextCannotFormatACommentOrDriveATerminal() {
        let hostile = "x`) [click](https://evil.example) ![i](https://evil.example/i.png) @org/team <img src=x> \u{1B}[8m\n```\n# done"
        let plan = Plan(environments: [
            EnvironmentPlan(environment: "staging", provider: "apinizer", endpoint: "https://s", isProtected: false, failure: hostile),
            EnvironmentPlan(environment: "dev", provider: "apinizer", endpoint: "https://d", isProtected: false, projects: [
                ProjectPlan(project: "payments", serverProject: "payments", prune: .managed, changes: [
                    Self.change("a", .update(before: Self.resource("a", ["description": .string(hostile)]), after: Self.resource("a"),
                                             fields: [FieldChange(field: "description", before: .string(hostile), after: .string(""))],
                                             secret: Self.fp, secretChanged: false)),
                ], unaddressable: [UnaddressableCredential(name: hostile, problem: "holds a control character")]),
            ]),
        ])
        let markdown = MarkdownRenderer(schemas: Self.schemas).render(plan)
        for line in markdown.split(separator: "\n") where line.contains("evil.example") {
            // Outside a fenced block, server text sits in one code span: an odd number of
            // backticks before it opens the span, and it has no backtick of its own.
            let before = line[..<line.range(of: "evil.example")!.lowerBound]
            #expect(line.hasPrefix(" ") || line.hasPrefix("~") || before.filter { $0 == "`" }.count % 2 == 1, "\(line)")
        }
        #expect(markdown.components(separatedBy: "```").count % 2 == 1, "\(markdown)")
        #expect(!markdown.contains("\u{1B}"))
        let text = PlanTextRenderer(style: .plain, schemas: Self.schemas).render(plan)
        #expect(!text.unicodeScalars.contains("\u{1B}"))
        #expect(text.contains("\\u{1B}[8m\\n"))
    }

    @Test func savedPlanRoundTripsWithoutLosingAnything() throws {
        let saved = SavedPlan(plan: Self.samplePlan, inputs: .init(paths: ["m"], environmentsDirectory: "environments",
                                                                  allowPlaintextSecrets: false, files: [], selectedEnvironments: []),
                              options: PlanOptions(allowDelete: true))
        let read = try SavedPlan.read(saved.json())
        #expect(read.plan.environments.map { $0.changes.map(\.signature) } == Self.samplePlan.environments.map { $0.changes.map(\.signature) })
        #expect(read.options.allowDelete)
        #expect(read.plan.createdAt == Self.samplePlan.createdAt)
        #expect(MarkdownRenderer(schemas: Self.schemas).render(read.plan) == MarkdownRenderer(schemas: Self.schemas).render(Self.samplePlan))
    }
}
