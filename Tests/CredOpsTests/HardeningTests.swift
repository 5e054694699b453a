import ApinizerProvider
import CCurl
@testable import CredOps
import CredOpsTestSupport
import Foundation
import Testing

/// Secret sources: how values are read and what is refused (issue 10, items 7, 8 and 9).
@Suite struct SecretSourceTests {
    let dir = TemporaryDirectory(prefix: "credops-secrets")

    func resolver(_ environment: [String: String] = [:]) -> SecretResolver {
        SecretResolver(environment: environment, secretsRoot: dir.path)
    }

    func file(_ name: String, _ bytes: [UInt8], mode: mode_t = 0o600) -> SecretReference {
        let path = dir.write(name, data: Data(bytes))
        chmod(path, mode)
        return SecretReference(.file(path: name, resolvedPath: path))
    }

    func problem(_ reference: SecretReference, use: SecretUse = .body, _ env: [String: String] = [:]) -> String {
        do {
            _ = try resolver(env).resolve(reference, use: use)
            return "resolved"
        } catch {
            return error.problem
        }
    }

    @Test(arguments: [
        ("abcdefgh", "abcdefgh"), ("abcdefgh\n", "abcdefgh"), ("abcdefgh\r\n", "abcdefgh"), ("abcdefgh\r", "abcdefgh"),
        ("abcdefgh\n\n", "abcdefgh\n"), ("pass word\t", "pass word\t"),
    ])
    func secretFilesLoseOneTrailingLineEndingOnly(_ content: String, _ expected: String) throws {
        let secret = try resolver().resolve(file("s.txt", Array(content.utf8)))
        #expect(secret.reveal() == expected)
    }

    @Test(arguments: [("abc\r\n", "abc"), ("abc\n", "abc"), ("abc", "abc")])
    func environmentValuesLoseOneTrailingLineEndingToo(_ value: String, _ expected: String) throws {
        #expect(try resolver(["PW": value]).resolve(SecretReference(.environment("PW"))).reveal() == expected)
    }

    @Test func secretsOfOnlyWhiteSpaceAreRefused() {
        #expect(problem(file("blank.txt", Array(" \t \r\n".utf8))) == "secret file blank.txt holds only white space")
        #expect(problem(SecretReference(.environment("PW")), ["PW": "  \n"]) == "environment variable PW holds only white space")
        #expect(problem(file("empty.txt", Array("\n".utf8))) == "secret file empty.txt is empty")
    }

    @Test func secretFilesOutsideTheRepositoryAreRefused() throws {
        let outside = TemporaryDirectory(prefix: "credops-outside")
        let target = outside.write("real.txt", "outside-secret")
        chmod(target, 0o600)
        symlink(target, dir.url("link.txt"))
        for (path, resolved) in [("/etc/hostname", "/etc/hostname"), ("../x/real.txt", target), ("link.txt", dir.url("link.txt")),
                                 ("/proc/self/environ", "/proc/self/environ")] {
            let message = problem(SecretReference(.file(path: path, resolvedPath: resolved)))
            #expect(message == "secret file \(path) is outside the repository (\(SecureFiles.canonicalPath(dir.path)!)); keep secret files inside it, or pass --secrets-root DIR")
        }
        // A link inside the repository to a file inside it is fine.
        let inner = dir.write("real.txt", "inside-secret")
        chmod(inner, 0o600)
        symlink(inner, dir.url("inner-link.txt"))
        #expect(try resolver().resolve(SecretReference(.file(path: "inner-link.txt", resolvedPath: dir.url("inner-link.txt")))).reveal() == "inside-secret")
    }

    @Test func aFIFOIsRefusedWithoutWaitingForAWriter() throws {
        let fifo = dir.url("pipe.txt")
        #expect(mkfifo(fifo, 0o600) == 0)
        // Opening a FIFO for reading blocks until a writer comes, unless non-blocking.
        #expect(problem(SecretReference(.file(path: "pipe.txt", resolvedPath: fifo))) == "secret file pipe.txt is not a regular file")
        try FileManager.default.createDirectory(atPath: dir.url("folder"), withIntermediateDirectories: true)
        #expect(problem(SecretReference(.file(path: "folder", resolvedPath: dir.url("folder")))) == "secret file folder is not a regular file")
    }

    @Test func bigSecretFilesAreRefusedAndReadableOnesWarn() throws {
        #expect(problem(file("big.txt", [UInt8](repeating: 65, count: 64 * 1024 + 1)))
            == "secret file big.txt is larger than 64 KiB; it should hold only the secret")
        var warnings: [String] = []
        let reference = file("shared.txt", Array("shared-secret".utf8), mode: 0o644)
        #expect(try resolver().resolve(reference, use: .body, warnings: &warnings).reveal() == "shared-secret")
        #expect(warnings == ["secret file shared.txt can be read by other users (mode 644); run chmod 600 shared.txt"])
    }

    @Test func aTokenWithALineBreakIsRefusedNamingItsSourceNotItsValue() {
        let message = problem(SecretReference(.environment("TOKEN")), use: .header, ["TOKEN": "abc\r\nX-Injected: 1"])
        #expect(message == "environment variable TOKEN holds a control character (a line break or the like), which cannot go into an HTTP header; remove it")
        #expect(!message.contains("Injected"))
        // In a body (a password) the same characters are fine.
        #expect(problem(SecretReference(.environment("TOKEN")), use: .body, ["TOKEN": "abc\r\nX"]) == "resolved")
    }

    @Test func theHTTPClientRefusesHeaderValuesWithLineBreaks() async throws {
        let server = try RawHTTPServer { _ in Data("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".utf8) }
        defer { server.stop() }
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1))
        defer { client.shutdown() }
        let request = HTTPRequest(method: .get, url: server.url + "/x", headers: HTTPHeaders([("Authorization", "Bearer a\r\nX-Evil: 1")]))
        do {
            _ = try await client.send(request)
            Issue.record("sent")
        } catch {
            #expect(error.kind == .invalidRequest)
            #expect(error.message.contains("Authorization"))
            #expect(!error.message.contains("Evil"))
        }
        #expect(server.received.isEmpty)
    }
}

/// Names that go into paths and state keys (items 2 and 6).
@Suite struct NameSafetyTests {
    static let schemas = ["apinizer": ApinizerProvider.credentialSchema]
    static let corpus = PackagePaths.path("Tests/CredOpsTests/Corpus")

    @Test func dotSegmentsAreEncoded() {
        #expect(URLParts.encodeSegment(".") == "%2E")
        #expect(URLParts.encodeSegment("..") == "%2E%2E")
        #expect(URLParts.encodeSegment("...") == "%2E%2E%2E")
        #expect(URLParts.encodeSegment("a.b") == "a.b")
        #expect(URLParts.encodeSegment("../x") == "..%2Fx")
    }

    @Test func pathsAreSentAsBuiltWithoutDotSquashing() async throws {
        let server = try RawHTTPServer { _ in Data("HTTP/1.1 204 No Content\r\n\r\n".utf8) }
        defer { server.stop() }
        let client = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1))
        defer { client.shutdown() }
        _ = try await client.send(HTTPRequest(method: .delete, url: server.url + "/apiops/projects/A/credentials/../"))
        #expect(server.received.first?.hasPrefix("DELETE /apiops/projects/A/credentials/../ HTTP/1.1") == true, "\(server.received)")
    }

    @Test(arguments: [".", "..", "svc\u{0}evil", "tab\there", "bell\u{7}", "esc\u{1B}[2J", "c1\u{9B}", "line\u{2028}break", "rtl\u{202E}x", " lead"])
    func unsafeNamesAreRefusedInManifests(_ name: String) throws {
        let dir = TemporaryDirectory()
        let quoted = "\"" + name.unicodeScalars.map { $0.value < 0x20 || $0.value >= 0x7F ? String(format: "\\U%08X", $0.value) : String($0) }.joined() + "\""
        for (field, manifest) in [
            ("username", "apiVersion: credops/v1\nkind: CredentialSet\nproject: payments\ncredentials:\n  - username: \(quoted)\n    fullName: F\n    email: a@example.com\n    password: { fromEnv: P }\n"),
            ("project", "apiVersion: credops/v1\nkind: CredentialSet\nproject: \(quoted)\ncredentials: []\n"),
            ("name", "apiVersion: credops/v1\nkind: CredentialSet\nproject: payments\ncredentials:\n  - username: u\n    fullName: F\n    email: a@example.com\n    password: { fromEnv: P }\n    access: [{ name: \(quoted), type: API_PROXY }]\n"),
        ] {
            let file = dir.write("\(field).yaml", manifest)
            let (inputs, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [file], environmentsDirectory: "\(Self.corpus)/environments")
            #expect(inputs == nil, "\(field) \(name.debugDescription)")
            let message = diagnostics.filter(\.isError).map(\.message).joined(separator: "; ")
            #expect(message.contains("\(field) ") && (message.contains("control or invisible") || message.contains("directory step") || message.contains("white space")),
                    "\(field): \(message)")
        }
    }

    @Test func liveNamesThatCannotBeAddressedAreReportedAndNeverActedOn() {
        let schema = ApinizerProvider.credentialSchema
        func live(_ id: String) -> Resource {
            Resource(id: CredentialKey(id), fields: ["fullName": .string("F"), "email": .string("a@example.com")])
        }
        let project = DesiredProject(project: "payments", serverProject: "payments", prune: .all, credentials: [],
                                     location: SourceLocation(file: "m.yaml", line: 1, column: 1))
        let plan = Planner(schema: schema).plan(Planner.ProjectInput(
            desired: project, live: [live(".."), live("."), live("svc\u{0}evil"), live("ok")], liveGrants: [:],
            managed: [CredentialKey("svc\u{0}evil"): ManagedCredential(environment: "e", namespace: "payments", key: "svc\u{0}evil",
                                                                  secretFingerprint: nil, grants: [], lastAction: "adopt",
                                                                  lastRunID: "r", lastChangedAt: Date())],
            secrets: [:]))
        #expect(plan.changes.map(\.key) == ["ok"])
        #expect(plan.unaddressable.map(\.name) == ["..", ".", "svc\u{0}evil"])
        #expect(plan.unaddressable[0].problem.contains("directory step"))
    }
}

/// Redaction of every secret in every form (item 3) and terminal safety (item 10).
@Suite struct RedactionTests {
    let redactor = Redactor(secrets: [Secret("Sup3r\"Secret/é"), Secret("pw1"), Secret("tok en+1&2<3>")])

    @Test func longSecretsAreFoundInEveryEncoding() {
        let forms = [
            #"Sup3r"Secret/é"#,                          // raw
            #"Sup3r\"Secret\/\u00e9"#,                   // JSON-escaped, as Jackson writes it
            #"Sup3r\"Secret/é"#,                         // JSON-escaped, as Foundation writes it
            "Sup3r%22Secret%2F%C3%A9",                   // percent-encoded
            "Sup3r%22Secret%2f%c3%a9",                   // lower-case hex
            "Sup3r&quot;Secret/&#233;",                  // HTML
            "Sup3r&#x22;Secret&#47;é",                   // HTML numeric
            Data(#"Sup3r"Secret/é"#.utf8).base64EncodedString(),
            "tok+en%2B1%262%3C3%3E",                     // form encoding: + for the space
            "tok en+1&amp;2&lt;3&gt;",
        ]
        for form in forms {
            let text = "error: \(form) is not allowed"
            #expect(redactor.redact(text) == "error: (redacted) is not allowed", "\(form)")
        }
        // Inside a longer base64 string, at any alignment.
        for prefix in ["", "a", "ab", "abc"] {
            let encoded = Data((prefix + "Basic:Sup3r\"Secret/é:tail").utf8).base64EncodedString()
            #expect(!redactor.redact(encoded).contains(Data("Sup3r\"Secret/é".utf8).base64EncodedString().dropFirst(4).prefix(8)), "\(prefix)")
        }
    }

    /// Found by fuzz-provider-json: a secret that itself looks like an escape was only looked
    /// for in decoded text.
    @Test(arguments: ["pass\\nword1", "ab%41cdef", "x&amp;y-secret", "q\\u0041zzzz"])
    func secretsThatLookLikeEscapesAreFoundAsTheyAre(_ secret: String) {
        #expect(Redactor(secrets: [Secret(secret)]).redact("before \(secret) after") == "before (redacted) after")
        #expect(Redactor(secrets: [Secret(secret)]).serverText("\(secret)") == "(redacted)")
    }

    /// Found by the attacker review: what a server may do to a secret before echoing it.
    @Test func serverEchoesInOtherShapesAreRedacted() {
        let r = Redactor(secrets: [Secret("p@ss w0rd/x!yz"), Secret("pwCANARYxyz123"), Secret("Café-Secret-9"), Secret("correct\thorse battery")])
        for echoed in ["p%2540ss%2520w0rd%252Fx%2521yz", "\\x70\\x77\\x43\\x41\\x4e\\x41\\x52\\x59xyz123",
                       Hex.encode(Array("pwCANARYxyz123".utf8)), "PWCANARYXYZ123", "Cafe\u{301}-Secret-9", "correct\thorse battery",
                       "Cafe\\u0301-Secret-9"] {
            #expect(r.serverText("value \(echoed) end") == "value (redacted) end", "\(echoed)")
        }
        // Split over two fields: each long run of the secret goes.
        #expect(!r.serverText("400 pwCA: NARYxyz123 (pwCAN: ARYxyz123)").contains("NARYxyz"))
        #expect(!r.serverText("400 pwCA: NARYxyz123 (pwCAN: ARYxyz123)").contains("ARYxyz123"))
        // A secret at the end of a long text is found before the text is cut.
        let padded = String(repeating: "A", count: 1990) + "pwCANARYxyz123"
        #expect(!r.serverText(padded, limit: 2000).contains("pwCANARY"))
        #expect(!r.serverText(padded, limit: 2000).contains("pwCA"))
    }

    /// What credops shows of data is not changed by the final redaction: only secrets go.
    @Test func theFinalRedactionTouchesNothingButSecrets() {
        let r = Redactor(secrets: [Secret("top-secret-value")])
        for text in [#""summary": {"password": 3, "token": 1}"#, "call it with token=abc and password=xyz", "client_secret=1"] {
            #expect(r.redact(text) == text)
        }
        #expect(r.redact("x top-secret-value y") == "x (redacted) y")
    }

    @Test func manySecretsWithOnePrefixAreCheap() {
        let secrets = (0..<10_000).map { Secret("pw-\($0)-\($0 * 7919 % 10_007)") }
        let r = Redactor(secrets: secrets)
        var text = ""
        for i in 0..<20_000 { text += "  ~ user-\(i)    update    description: pw-\(i % 7) → pw \n" }
        let clock = ContinuousClock()
        let start = clock.now
        #expect(r.redact(text) == text)
        #expect(r.redact("x pw-42-\(42 * 7919 % 10_007) y") == "x (redacted) y")
        print("FIGURE redaction: 10,000 secrets of one prefix over \(text.utf8.count / 1024) KiB in \(start.duration(to: clock.now))")
    }

    @Test func shortSecretsAreRedactedOnlyInServerText() {
        #expect(redactor.redact("pw1 of 2 failed") == "pw1 of 2 failed")
        #expect(redactor.serverText("field pw1 is wrong") == "field (redacted) is wrong")
        #expect(redactor.serverText("code pw%31") == "code (redacted)")
        #expect(Redactor(secrets: [Secret("1")]).redact("1 of 2 failed at line 1") == "1 of 2 failed at line 1")
    }

    @Test func redactingTwiceChangesNothingMore() {
        let r = Redactor(secrets: [Secret("redacted")])
        let once = r.redact("a redacted b")
        #expect(once == "a (redacted) b")
        #expect(r.redact(once) == once)
    }

    @Test func serverTextLosesControlCharactersAndLength() {
        let text = Redactor().serverText("\u{1B}]0;owned\u{7}\u{1B}[2Jclean\u{9B}31m" + String(repeating: "x", count: 5000), limit: 100)
        #expect(!text.unicodeScalars.contains { TextSafety.isUnsafe($0) })
        #expect(text.hasPrefix("\u{FFFD}]0;owned\u{FFFD}\u{FFFD}[2Jclean\u{FFFD}31m"))
        #expect(text.count == 101)
    }

    @Test func terminalOutputKeepsOwnColoursAndEscapesEverythingElse() {
        #expect(TextSafety.forTerminal("\u{1B}[31mred\u{1B}[0m\n") == "\u{1B}[31mred\u{1B}[0m\n")
        #expect(TextSafety.forTerminal("a\u{1B}[1A\u{1B}[2Kb\u{1B}[8m") == "a\\u{1B}[1A\\u{1B}[2Kb\\u{1B}[8m")
        #expect(TextSafety.forTerminal("osc\u{1B}]52;c;Zm9v\u{7}") == "osc\\u{1B}]52;c;Zm9v\\u{7}")
        #expect(TextSafety.escaped("line\u{2028}two\r\n") == "line\\u{2028}two\\r\\n")
        #expect(TextSafety.escaped("svc\u{200B}\u{E0041}\u{61C}") == "svc\\u{200B}\\u{E0041}\\u{61C}")
        #expect(TextSafety.nameProblem("svc\u{200B}") != nil)
        #expect(TextSafety.escaped("naïve 漢字 😀") == "naïve 漢字 😀")
        #expect(String(decoding: TextSafety.jsonSafe(Data("{\"a\":\"x\u{85}y\u{202E}\"}".utf8)), as: UTF8.self) == #"{"a":"x\u0085y\u202e"}"#)
    }

    @Test func commandLinesAreStoredWithoutPasswords() {
        let line = CommandLineText.redacted(["credops", "apply", "m", "--state", "postgres://ci:S3cr%40t@db:5432/credops?sslmode=require&password=x2",
                                             "--token", "tok-1", "--client-secret=cs-1", "--secrets-root", "/repo", "--allow-delete", "-e", "prod"])
        #expect(line == "credops apply m --state postgres://ci:(redacted)@db:5432/credops?sslmode=require&password=(redacted) --token (redacted) --client-secret=(redacted) --secrets-root /repo --allow-delete -e prod")
        #expect(CommandLineText.urlPasswords("postgres://ci:S3cr%40t@db/x").map { $0.reveal() } == ["S3cr%40t", "S3cr@t"])
        // What older versions stored as typed is redacted when shown.
        let holder = LockInfo(environment: "e", lockID: "l", user: "u", host: "h", pid: 1,
                              command: "credops apply --state postgres://u:PW@db/x", since: Date(timeIntervalSince1970: 0))
        #expect(!holder.holderDescription.contains("PW@"))
    }
}

/// The libcurl handle between jobs (item 14).
@Suite struct CurlHandleTests {
    @Test func aReusedHandleKeepsNoPointerIntoAFinishedJob() async throws {
        let server = try RawHTTPServer { _ in Data("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".utf8) }
        defer { server.stop() }
        let configuration = HTTPClientConfiguration(concurrency: 1)
        let handle = try #require(curl_easy_init())
        defer { curl_easy_cleanup(handle) }
        for _ in 0..<3 {
            let request = HTTPRequest(method: .get, url: server.url + "/x", headers: HTTPHeaders([("Accept", "application/json")]))
            let job = CurlJob(request: request, target: RequestTarget(host: "127.0.0.1", port: server.port, isLoopback: true),
                              timeout: .seconds(5), maxBody: 1024)
            _ = job.start()
            // The transfer thread's steps, with the easy interface in place of the multi one.
            let transfer = CurlTransfer(handle: handle, job: job, configuration: configuration)
            try transfer.prepare().get()
            let response = try transfer.complete(curl_easy_perform(handle)).get()
            #expect(response.status == 200)
            // The transfer buffers, header list and error buffer belong to the job and go with it.
            #expect(ccurl_private(handle) == nil)
        }
    }
}

/// Inputs the fuzzers found (issue 10, part 2), kept as regression tests.
@Suite struct FuzzFindingsTests {
    /// fuzz-saved-plan, fuzz-manifest, fuzz-provider-json: `count..<3` trapped for 4 to 9
    /// fraction digits, in any manifest, server answer or saved plan holding such a time.
    @Test(arguments: ["2027-06-30T23:59:59.0000Z", "2027-06-30T23:59:59.123000000Z", "2027-06-30T23:59:59.1Z"])
    func fractionsOfAnyLengthParse(_ text: String) {
        #expect(Timestamp.parse(text).map(Timestamp.format) == "2027-06-30T23:59:59.\(text.contains(".1Z") ? "100" : text.contains("123") ? "123" : "000")Z")
        #expect(Timestamp.parse("2027-06-30T23:59:59.1234Z") == nil)
    }

    /// fuzz-provider-json: a DateFormatter per Retry-After date leaked inside Foundation; the
    /// date is parsed on bytes now.
    @Test func retryAfterDatesParseWithoutAFormatter() {
        #expect(RetryPolicy.httpDate("Sun, 06 Nov 1994 08:49:37 GMT")?.timeIntervalSince1970 == 784_111_777)
        #expect(RetryPolicy.httpDate("Fri, 15 Jan 2027 08:00:00 GMT")?.timeIntervalSince1970 == 1_800_000_000)
        for bad in ["Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT", "Xyz, 06 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT", ""] {
            #expect(RetryPolicy.httpDate(bad) == nil, "\(bad)")
        }
    }

    /// Found by hand while checking a fuzz property: year 0 in another zone is year -1 in UTC,
    /// which was written back as 0001.
    @Test func instantsOutsideYearsOneToNineThousandNineHundredNinetyNineAreRefused() {
        #expect(Timestamp.parse("0000-01-01T00:00:00+01:00") == nil)
        #expect(Timestamp.parse("0001-01-01T00:30:00+01:00") == nil)
        #expect(Timestamp.parse("9999-12-31T23:59:59-01:00") == nil)
        #expect(Timestamp.parse("0001-01-01T00:00:00Z").map(Timestamp.format) == "0001-01-01T00:00:00.000Z")
        #expect(Timestamp.parse("9999-12-31T23:59:59.999Z").map(Timestamp.format) == "9999-12-31T23:59:59.999Z")
    }
}

/// Hosts a pull-request build may send credentials to (item 15).
@Suite struct HostPolicyTests {
    func environment(_ url: String, insecureHTTP: Bool = false, skipVerify: Bool = false) -> EnvironmentConfig {
        var env = EnvironmentConfig(name: "staging", file: "environments/staging.yaml", location: SourceLocation(file: "e", line: 1, column: 1),
                                    provider: "apinizer", endpoint: .url(url), endpointLocation: SourceLocation(file: "e", line: 1, column: 1))
        env.allowInsecureHTTP = insecureHTTP
        env.tls.insecureSkipVerify = skipVerify
        return env
    }

    @Test func onlyListedHostsOnTheirPortsPass() throws {
        let policy = try HostPolicy.parse("api.example.com, [::1]:8443\n# comment\nother.example.com:444").get()
        #expect(policy.violation(for: environment("https://API.example.com")) == nil)
        #expect(policy.violation(for: environment("https://api.example.com:443/base")) == nil)
        #expect(policy.violation(for: environment("https://api.example.com:8443")) != nil)  // another port
        #expect(policy.violation(for: environment("https://[::1]:8443")) == nil)
        #expect(policy.violation(for: environment("https://other.example.com:444")) == nil)
        #expect(policy.violation(for: environment("https://evil.example.com")) != nil)
        #expect(policy.violation(for: environment("https://api.example.com.evil.example")) != nil)
        #expect(policy.violation(for: environment("http://api.example.com", insecureHTTP: true))?.contains("allowInsecureHTTP") == true)
        #expect(policy.violation(for: environment("https://api.example.com", skipVerify: true))?.contains("insecureSkipVerify") == true)
        #expect(throws: HostPolicy.ParseError.self) { try HostPolicy.parse("https://api.example.com").get() }
    }

    @Test func pullRequestBuildsAreRecognised() {
        for env in [["GITHUB_EVENT_NAME": "pull_request_target"], ["CI_MERGE_REQUEST_IID": "7"], ["CI_EXTERNAL_PULL_REQUEST_IID": "3"],
                    ["CIRCLE_PULL_REQUEST": "https://github.com/o/r/pull/1"], ["TRAVIS_PULL_REQUEST": "12"], ["DRONE_BUILD_EVENT": "pull_request"],
                    ["CI_PIPELINE_EVENT": "pull_request"], ["BUILDKITE_PULL_REQUEST": "5"], ["SYSTEM_PULLREQUEST_PULLREQUESTID": "9"]] {
            #expect(HostPolicy.pullRequestBuild(env) != nil, "\(env)")
        }
        #expect(HostPolicy.pullRequestBuild(["GITHUB_EVENT_NAME": "push", "TRAVIS_PULL_REQUEST": "false", "BUILDKITE_PULL_REQUEST": "false"]) == nil)
    }
}

/// Findings of the attacker review, kept.
@Suite struct ReviewFindingsTests {
    static let schemas = ["apinizer": ApinizerProvider.credentialSchema]

    @Test func kernelFilesAreNeverSecretsWhateverTheRoot() {
        let resolver = SecretResolver(environment: [:], secretsRoot: "/")
        for path in ["/proc/self/environ", "/sys/devices", "/dev/null"] {
            do {
                _ = try resolver.resolve(SecretReference(.file(path: path, resolvedPath: path)))
                Issue.record("\(path) was read")
            } catch {
                #expect(error.problem.contains("holds no secret files"), "\(error.problem)")
            }
        }
    }

    @Test func twoProjectsOnOneServerProjectAreRefused() {
        let dir = TemporaryDirectory()
        dir.write("environments/dev.yaml", "url: sandbox://dev\nprojects: { payments: Shared, reporting: Shared }\n")
        for project in ["payments", "reporting"] {
            dir.write("m/\(project).yaml", "apiVersion: credops/v1\nkind: CredentialSet\nproject: \(project)\ncredentials: []\n")
        }
        let (inputs, diagnostics) = InputLoader(schemas: Self.schemas).load(paths: [dir.url("m")], environmentsDirectory: dir.url("environments"))
        #expect(inputs == nil)
        #expect(diagnostics.contains { $0.message.contains("are both Shared in environment dev") }, "\(diagnostics)")
    }

    @Test func environmentFileNamesMustBeNames() {
        let dir = TemporaryDirectory()
        dir.write("environments/dev\u{1B}]0;x\u{7}.yaml", "url: sandbox://dev\n")
        let (_, diagnostics) = InputLoader(schemas: Self.schemas).loadEnvironments(directory: dir.url("environments"))
        #expect(diagnostics.contains { $0.isError && $0.message.contains("is not an environment name") }, "\(diagnostics)")
    }

    @Test func aPlantedLegacyKeyIsNotAdopted() throws {
        let dir = TemporaryDirectory()
        let state = dir.url(".credops/state.db")
        dir.write(".credops/state.key", data: Data(repeating: 0x41, count: 32))
        chmod(dir.url(".credops/state.key"), 0o644)
        let env = ["HOME": dir.path]
        let (key, notes) = try StateKey.loadLocal(statePath: state, environment: env, allowLocalKeyInCI: false)
        #expect(notes.isEmpty)
        #expect(key.withBytes { $0 } != [UInt8](repeating: 0x41, count: 32))
        #expect(FileManager.default.fileExists(atPath: dir.url(".credops/state.key")))
    }
}

/// Secrets learnt one at a time during a run (a server's generated secrets) are all redacted,
/// whatever the layering that keeps adding them cheap.
@Suite struct RunSecretsGrowthTests {
    @Test func aThousandSecretsAddedOneByOneAreEachRedacted() {
        let secrets = RunSecrets([Secret("first-password-0001")])
        let made = (0..<1000).map { Secret("generated-secret-\(String($0, radix: 16))-\(UInt32.random(in: 0...UInt32.max))") }
        for secret in made { secrets.add([secret]) }
        let redactor = secrets.redactor
        for secret in made + [Secret("first-password-0001")] {
            #expect(redactor.redact("the server said \(secret.reveal()) twice: \(secret.reveal())") == "the server said (redacted) twice: (redacted)")
        }
    }
}
