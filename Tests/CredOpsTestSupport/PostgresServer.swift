import Foundation

/// A real PostgreSQL server for the tests: `initdb` in a temporary directory (as the `postgres`
/// user when the tests run as root, since PostgreSQL refuses root), `pg_ctl` on a free loopback
/// port. One per test process, a database per test. A watchdog process stops the server and
/// removes its directory once the test process is gone, however it ended (even SIGKILL).
public final class PostgresServer: @unchecked Sendable {
    public let port: Int
    let bin: String
    let dataDirectory: String
    let runAs: [String]
    /// Kept: a `ChildProcess` that goes away kills its process.
    private var watchdog: ChildProcess?
    public let user = "credops"
    /// The server's self-signed certificate (for 127.0.0.1 and localhost), which is its own CA;
    /// nil when openssl is missing and the server runs without TLS.
    public let caFile: String?

    /// The shared server, started on first use; nil with a reason when it cannot start.
    public static let shared: Result<PostgresServer, PostgresServerError> = {
        do {
            return .success(try PostgresServer())
        } catch let error as PostgresServerError {
            return .failure(error)
        } catch {
            return .failure(PostgresServerError(description: "\(error)"))
        }
    }()

    /// The shared server, started off the cooperative pool (initdb and pg_ctl block for seconds).
    public static func get() async throws -> PostgresServer {
        try await offCooperativePool { try PostgresServer.shared.get() }
    }

    /// A new, empty database of the shared server, as a state URL.
    public static func database() async throws -> String {
        let server = try await get()
        return try await offCooperativePool { try server.makeDatabase() }
    }

    /// The binaries of the newest PostgreSQL installed from Debian's packages.
    static func binDirectory() -> String? {
        let base = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: base)) ?? []).compactMap(Int.init).sorted()
        guard let newest = versions.last else { return nil }
        let bin = "\(base)/\(newest)/bin"
        return FileManager.default.isExecutableFile(atPath: bin + "/initdb") ? bin : nil
    }

    init() throws {
        guard let bin = Self.binDirectory() else {
            throw PostgresServerError(description: "PostgreSQL is not installed (apt-get install postgresql; .ci/run does it)")
        }
        self.bin = bin
        var template = Array("/tmp/credops-pg.XXXXXX".utf8CString)
        guard let made = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
            throw PostgresServerError(description: "cannot make a temporary directory")
        }
        let root = String(cString: made)
        dataDirectory = root + "/data"
        if getuid() == 0 {
            // PostgreSQL will not run as root: hand the directory to its own user.
            guard getpwnam("postgres") != nil else { throw PostgresServerError(description: "running as root, and there is no postgres user") }
            chmod(root, 0o755)
            runAs = ["/usr/sbin/runuser", "-u", "postgres", "--"]
            _ = try Self.run(["/bin/chown", "postgres:postgres", root], runAs: [])
        } else {
            runAs = []
        }
        _ = try Self.run(["\(bin)/initdb", "-D", dataDirectory, "-U", user, "--auth=trust", "-E", "UTF8", "--no-sync"], runAs: runAs)
        var options = "-c listen_addresses=127.0.0.1 -c unix_socket_directories=\(root) -c fsync=off -c max_connections=400"
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/openssl") {
            let cert = root + "/server.crt", key = root + "/server.key"
            _ = try Self.run(["/usr/bin/openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                              "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"], runAs: [])
            chmod(key, 0o600)
            if !runAs.isEmpty { _ = try Self.run(["/bin/chown", "postgres:postgres", cert, key], runAs: []) }
            options += " -c ssl=on -c ssl_cert_file=\(cert) -c ssl_key_file=\(key)"
            caFile = cert
        } else {
            caFile = nil
        }
        // A free port, found by binding to port 0 and letting go: another process (an outgoing
        // connection of a parallel test takes its port from the same range) may take it before
        // the server binds it, so a start that finds it taken tries another.
        var started: Int?
        for attempt in 1...5 {
            let probe = try RawHTTPServer { _ in nil }
            let candidate = probe.port
            probe.stop()
            do {
                _ = try Self.run(["\(bin)/pg_ctl", "-D", dataDirectory, "-o", "-p \(candidate) " + options, "-l", root + "/log", "-w", "-t", "60", "start"],
                                 runAs: runAs)
                started = candidate
                break
            } catch {
                let log = (try? String(contentsOfFile: root + "/log", encoding: .utf8)) ?? ""
                guard attempt < 5, log.contains("Address already in use") else { throw error }
            }
        }
        guard let started else { throw PostgresServerError(description: "PostgreSQL found no free port") }
        port = started
        let stop = (runAs + ["\(bin)/pg_ctl", "-D", dataDirectory, "-m", "immediate", "-w", "stop"]).map { "'\($0)'" }.joined(separator: " ")
        let watchdog = "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; \(stop) >/dev/null 2>&1; rm -rf '\(root)'"
        self.watchdog = try ChildProcess("/bin/sh", ["-c", watchdog])
    }

    /// A new, empty database, as a state URL.
    public func makeDatabase() throws -> String {
        let name = "credops_\(UInt32.random(in: 0...UInt32.max))"
        _ = try psql("CREATE DATABASE \(name)")
        return "postgres://\(user)@127.0.0.1:\(port)/\(name)?sslmode=disable"
    }

    /// Runs SQL with psql and returns its unaligned output.
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try Self.run(["/usr/bin/psql", "-h", "127.0.0.1", "-p", "\(port)", "-U", user, "-d", database, "-X", "-A", "-t", "-c", sql], runAs: [])
    }

    @discardableResult
    static func run(_ arguments: [String], runAs: [String]) throws -> String {
        let out = ChildProcess.pipe()
        let all = runAs + arguments
        let child = try ChildProcess(all[0], Array(all.dropFirst()), directory: "/tmp", stdout: out.write, stderr: out.write)
        close(out.write)
        let text = String(decoding: FileHandle(fileDescriptor: out.read, closeOnDealloc: true).readDataToEndOfFile(), as: UTF8.self)
        let code = child.waitBlocking(timeout: .seconds(120))
        guard code == 0 else { throw PostgresServerError(description: "\(arguments.joined(separator: " ")) failed (\(code ?? -1)): \(text.suffix(600))") }
        return text
    }
}

public struct PostgresServerError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
