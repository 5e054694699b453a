import CredOpsTestSupport
import Foundation
import Testing

/// The deployment examples in deploy/: checked with the tools this machine has (systemd's own
/// verifier, a YAML parser with the structure Kubernetes needs), and their credops command
/// lines parsed by the built binary.
@Suite struct DeploymentExampleTests {
    func run(_ executable: String, _ arguments: [String], directory: String = PackagePaths.root) async throws -> (code: Int32, output: String) {
        let out = ChildProcess.pipe()
        let child = try ChildProcess(executable, arguments, directory: directory, stdout: out.write, stderr: out.write)
        close(out.write)
        let output = try await offCooperativePool { String(decoding: FileHandle(fileDescriptor: out.read, closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self) }
        return (await child.wait(timeout: .seconds(60)) ?? -1, output)
    }

    /// The binary parses `arguments` (a parse error exits 64); it then stops at the missing
    /// webhook variable, before touching any state.
    func expectParses(_ arguments: [String]) async {
        let dir = TemporaryDirectory()
        let result = await CLIRunner(directory: dir.path).run(arguments)
        withExtendedLifetime(dir) {}
        #expect(result.exitCode == 1 && result.stderr.contains("the variable is not set"), "\(arguments): \(result)")
    }

    @Test func theSystemdUnitVerifiesAndItsCommandParses() async throws {
        let unit = try String(contentsOfFile: PackagePaths.path("deploy/credops-reconcile.service"), encoding: .utf8)
        let line = try #require(unit.split(separator: "\n").first { $0.hasPrefix("ExecStart=") })
        let words = line.dropFirst("ExecStart=".count).split(separator: " ").map(String.init)
        #expect(words.first == "/usr/local/bin/credops")
        await expectParses(Array(words.dropFirst()))
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") {
            let dir = TemporaryDirectory()
            let local = unit.replacingOccurrences(of: "/usr/local/bin/credops", with: CLIRunner.binary)
                .replacingOccurrences(of: "/srv/credops/repo", with: dir.path)
            let path = dir.write("credops-reconcile.service", local)
            let verified = try await run("/usr/bin/systemd-analyze", ["verify", path])
            #expect(verified.code == 0 && !verified.output.contains("credops-reconcile.service:"), "\(verified.output)")
        }
    }

    @Test func theKubernetesDeploymentHasTwoReplicasProbesAndSecrets() async throws {
        let script = """
            import sys, yaml
            docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
            kinds = {d["kind"]: d for d in docs}
            deployment = kinds["Deployment"]
            assert deployment["apiVersion"] == "apps/v1" and kinds["Service"]["apiVersion"] == "v1"
            spec = deployment["spec"]
            assert spec["replicas"] == 2
            assert spec["selector"]["matchLabels"].items() <= spec["template"]["metadata"]["labels"].items()
            pod = spec["template"]["spec"]
            containers = {c["name"]: c for c in pod["containers"]}
            credops = containers["credops"]
            ports = {p["name"]: p["containerPort"] for p in credops["ports"]}
            assert credops["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
            assert credops["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
            assert any(a == "--listen=0.0.0.0:%d" % ports["metrics"] for a in credops["args"])
            assert credops["envFrom"][0]["secretRef"]["name"] == "credops"
            volumes = {v["name"] for v in pod["volumes"]}
            for c in pod["containers"]:
                for m in c.get("volumeMounts", []):
                    assert m["name"] in volumes, m
            assert any(m["name"] == "repo" for m in containers["git-sync"]["volumeMounts"])
            # Every path goes through the git-sync link, never into a worktree that gets deleted.
            assert not credops["workingDir"].startswith("/repo"), credops["workingDir"]
            assert "/repo/current/manifests" in credops["args"] and "--environments=/repo/current/environments" in credops["args"]
            assert pod["automountServiceAccountToken"] is False
            assert kinds["NetworkPolicy"]["spec"]["ingress"][0]["ports"][0]["port"] == ports["metrics"]
            assert pod["terminationGracePeriodSeconds"] >= 120
            print(" ".join(credops["args"]))
            """
        let dir = TemporaryDirectory()
        let checker = dir.write("check.py", script)
        let checked = try await run("/usr/bin/env", ["python3", checker, PackagePaths.path("deploy/kubernetes/reconcile.yaml")])
        #expect(checked.code == 0, "\(checked.output)")
        let arguments = checked.output.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        await expectParses(arguments)
    }

    @Test func theContainerfileBuildsTheCommandItRuns() throws {
        let text = try String(contentsOfFile: PackagePaths.path("deploy/Containerfile"), encoding: .utf8)
        let lines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(lines.filter { $0.hasPrefix("FROM ") }.count == 2)
        #expect(lines.contains { $0.hasPrefix("USER ") && !$0.contains("root") })
        #expect(text.contains("--product credops") && text.contains("EXPOSE 9464") && text.contains("\"--listen\", \"0.0.0.0:9464\""))
    }
}
