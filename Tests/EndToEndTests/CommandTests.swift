import CredOpsTestSupport
import Foundation
import Testing

@Suite struct CommandTests {
    @Test func validateReportsEveryProblemWithItsPlaceAndExitsOne() async throws {
        let dir = TemporaryDirectory()
        dir.write("environments/staging.yaml", "provider: apinizer\nurl: http://apinizer.example.com\nauth: { bearer: { fromEnv: T } }\n")
        dir.write("manifests/payments.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            project: payments
            credentials:
              - username: checkout
                fullName: Checkout
                email: not-an-email
                password: literal-canary-pw
                roleNameLists: [API_USER]
            """)
        let result = await CLIRunner(directory: dir.path).run(["validate", "manifests"])
        #expect(result.exitCode == 1)
        #expect(result.stderr == """
            environments/staging.yaml:2:6: error: http:// to a non-loopback host; use https, or set allowInsecureHTTP: true
            manifests/payments.yaml:7:12: error: 'not-an-email' is not an email address
            manifests/payments.yaml:8:15: error: password is written in the file; use { fromEnv: NAME } or { fromFile: PATH } (or pass --allow-plaintext-secrets)
            manifests/payments.yaml:9:5: error: unknown key 'roleNameLists' in credential 'checkout' (did you mean 'roleNameList'?)
            4 errors in 2 files; nothing was sent to any environment.

            """)
        #expect(!result.stderr.contains("literal-canary-pw"))
    }

    @Test func validateOfTheExamplesPasses() async throws {
        let result = await CLIRunner(directory: PackagePaths.root).run(["validate", "examples"])
        #expect(result.exitCode == 0, "\(result)")
        #expect(result.stdout == "5 manifests (5 projects, 11 credentials), 1 provider profile, 4 policies and 6 environments are valid.\n")
    }

    @Test func quickStartAppliesToTheBuiltInSandboxesAndThenHasNoChanges() async throws {
        let dir = TemporaryDirectory()
        for folder in ["examples", "environments", "providers", "policies"] {
            try FileManager.default.copyItem(atPath: PackagePaths.path(folder), toPath: dir.url(folder))
        }
        let runner = CLIRunner(directory: dir.path)
        let apply = await runner.run(["apply", "examples", "--auto-approve"])
        #expect(apply.exitCode == 0, "\(apply)")
        // Apinizer's dev, staging and production, the LeadConduit account lc-dev, the LeadVibe
        // account lv-dev and the LeadExec-style account le-dev (a provider profile), whose
        // generated secrets went to private files.
        #expect(apply.stdout.contains("Apply complete in 6 environments."))
        #expect(apply.stdout.contains("✓ le-dev: Deployed successfully: 2 created"), "\(apply)")
        #expect(apply.stdout.contains("✓ lc-dev: Deployed successfully: 2 created"), "\(apply)")
        #expect(apply.stdout.contains("✓ lv-dev: Deployed successfully: 2 created"), "\(apply)")
        let plan = await runner.run(["plan", "examples", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
        #expect(plan.stdout.hasSuffix("No changes. 6 environments are in sync with the manifests.\n"))
        let exec = try String(contentsOfFile: dir.url(".credops/delivered/le-dev/lead-delivery/Posting Partner A.env"), encoding: .utf8)
        #expect(exec.contains("CLIENT_ID=") && exec.contains("CLIENT_SECRET=sk_"), "\(exec)")
        let delivered = dir.url(".credops/delivered/lv-dev/partner-feeds/Partner Feed.env")
        let pair = try String(contentsOfFile: delivered, encoding: .utf8)
        #expect(pair.contains("CLIENT_ID=cli_") && pair.contains("CLIENT_SECRET=lvs_"), "\(pair)")
        #expect((try FileManager.default.attributesOfItem(atPath: delivered)[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        #expect((try FileManager.default.attributesOfItem(atPath: (delivered as NSString).deletingLastPathComponent)[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        for name in ["dev", "staging", "production", "lc-dev.leadconduit", "lv-dev.leadvibe", "le-dev.leadexec"] {
            let attributes = try FileManager.default.attributesOfItem(atPath: dir.url(".credops/sandbox/\(name).json"))
            #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        }
        let state = try FileManager.default.attributesOfItem(atPath: dir.url(".credops/state.db"))
        #expect((state[.posixPermissions] as? NSNumber)?.intValue == 0o600)
        let folder = try FileManager.default.attributesOfItem(atPath: dir.url(".credops"))
        #expect((folder[.posixPermissions] as? NSNumber)?.intValue == 0o700)
    }

    @Test func unknownEnvironmentNameIsRefusedWithASuggestion() async throws {
        let result = await CLIRunner(directory: PackagePaths.root).run(["plan", "examples", "-e", "prod"])
        #expect(result.exitCode == 1)
        #expect(result.stderr.contains("prod: error: no environment named 'prod' (did you mean 'production'?); known: dev, lc-dev, le-dev, lv-dev, production, staging"), "\(result)")
    }

    /// Without --token the sandbox makes one for the run and says so next to its URL; bound to
    /// an address other machines can reach, it warns (its admin calls read stored passwords).
    @Test func sandboxServeMakesARandomTokenAndWarnsOffLoopback() async throws {
        let out = ChildProcess.pipe(), err = ChildProcess.pipe()
        let child = try ChildProcess(CLIRunner.binary, ["sandbox", "serve", "--host", "0.0.0.0", "--port", "0"],
                                     environment: ["PATH": "/usr/bin:/bin"], stdout: out.write, stderr: err.write)
        close(out.write)
        close(err.write)
        let (url, stderr) = try await offCooperativePool { () -> (String, String) in
            func line(_ fd: Int32) -> String {
                var bytes: [UInt8] = []
                var byte: UInt8 = 0
                while read(fd, &byte, 1) == 1, byte != 10 { bytes.append(byte) }
                return String(decoding: bytes, as: UTF8.self)
            }
            let url = line(out.read)
            return (url, line(err.read) + "\n" + line(err.read))
        }
        child.signal(SIGTERM)
        _ = await child.wait(timeout: .seconds(10))
        close(out.read)
        close(err.read)
        #expect(url.hasPrefix("http://127.0.0.1:"), "\(url)")
        #expect(stderr.contains("warning: listening on 0.0.0.0, not a loopback address"), "\(stderr)")
        let token = try #require(stderr.split(separator: "\n").first { $0.hasPrefix("token: ") }?.dropFirst("token: ".count).split(separator: " ").first)
        #expect(token.count == 32 && token != "demo-token", "\(stderr)")
    }

    @Test func anAbsurdTimeoutIsRefusedNotATrap() async throws {
        let result = await CLIRunner(directory: PackagePaths.root).run(["apply", "examples", "--timeout", "99999999999999999999h"])
        #expect(result.exitCode == 64, "\(result)")
        #expect(result.stderr.contains("--timeout takes a duration up to a year"), "\(result)")
    }

    @Test func sandboxServePrintsItsURLFirstAndStopsOnSIGTERM() async throws {
        let out = ChildProcess.pipe()
        let child = try ChildProcess(CLIRunner.binary, ["sandbox", "serve", "--port", "0", "--token", "t-123"], stdout: out.write)
        close(out.write)
        let line = try await offCooperativePool { () -> String in
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while read(out.read, &byte, 1) == 1, byte != 10 { bytes.append(byte) }
            return String(decoding: bytes, as: UTF8.self)
        }
        close(out.read)
        #expect(line.hasPrefix("http://127.0.0.1:"))
        child.signal(SIGTERM)
        let code = await child.wait(timeout: .seconds(10))
        #expect(code == 0)
    }

    /// The LeadConduit emulator as its own process: credops applies to it, the masked-password
    /// switch makes reads answer null, and the plan after the apply has nothing to do.
    @Test func sandboxServeRunsTheLeadConduitEmulatorForAnotherProcess() async throws {
        let out = ChildProcess.pipe()
        let data = TemporaryDirectory()
        let child = try ChildProcess(CLIRunner.binary, ["sandbox", "serve", "--provider", "leadconduit", "--port", "0", "--token", "lc-key-42",
                                                        "--mask-passwords", "--data", data.url("lc.json")], stdout: out.write)
        close(out.write)
        let url = try await offCooperativePool { () -> String in
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while read(out.read, &byte, 1) == 1, byte != 10 { bytes.append(byte) }
            return String(decoding: bytes, as: UTF8.self)
        }
        close(out.read)
        #expect(url.hasPrefix("http://127.0.0.1:"), "\(url)")
        let w = E2EWorkspace()
        w.variables["LC_KEY"] = "lc-key-42"
        w.variables["LC_PW"] = "posted-password-1"
        w.environment("lc", "provider: leadconduit\nurl: \(url)\nauth: { apiKey: { fromEnv: LC_KEY } }\n")
        w.manifest("lc.yaml", """
            apiVersion: credops/v1
            kind: CredentialSet
            provider: leadconduit
            project: intake
            credentials:
              - { name: Acme, package: acme, username: poster, password: { fromEnv: LC_PW } }
            """)
        let apply = await w.run(["apply", "manifests", "--auto-approve"])
        #expect(apply.exitCode == 0, "\(apply)")
        let plan = await w.run(["plan", "manifests", "--detailed-exitcode"])
        #expect(plan.exitCode == 0, "\(plan)")
        child.signal(SIGTERM)
        #expect(await child.wait(timeout: .seconds(10)) == 0)
        // The data file holds what was created, readable only by its owner.
        let saved = try String(contentsOfFile: data.url("lc.json"), encoding: .utf8)
        #expect(saved.contains("\"name\":\"Acme\""))
        let attributes = try FileManager.default.attributesOfItem(atPath: data.url("lc.json"))
        #expect((attributes[.posixPermissions] as? NSNumber)?.intValue == 0o600)
    }
}
