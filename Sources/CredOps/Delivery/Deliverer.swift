import Foundation
import Subprocess
import Synchronization
#if canImport(System)
import System
#else
import SystemPackage
#endif

/// Why a delivery failed, for the report (redacted by the engine before it is shown).
public struct DeliveryError: Error, Sendable, CustomStringConvertible {
    public var description: String
}

/// Hands a generated secret to its sink: a private file written atomically, or a command that
/// reads it on stdin. Nothing here keeps, logs or returns the secret.
public struct Deliverer: Sendable {
    /// The most a command may print on stdout or stderr; more is a failure.
    public static let outputLimit = 64 * 1024

    /// Temporary files a killed run left, by directory, listed once per run (a directory of a
    /// thousand delivered files is not listed a thousand times).
    private let leftovers = LeftoverTemporaries()

    public init() {}

    /// Delivers `payload` to `delivery`.
    /// - Returns: what a command printed (stdout then stderr, trimmed), for the report; nil
    ///   for a file. The caller redacts it.
    public func deliver(_ payload: DeliveryPayload, to delivery: Delivery) async throws(DeliveryError) -> String? {
        switch delivery.sink {
        case .file(let path, let format, let roots):
            // Not on the caller's executor, which may be an environment's HTTP thread: the
            // write ends with an fsync, and every transfer there would wait for the disk.
            try await withTaskExecutorPreference(globalConcurrentExecutor) { () async throws(DeliveryError) in
                try write(payload, to: path, format: format, roots: roots, shown: delivery.shown)
            }
            return nil
        case .command(let argv, let timeout, let directory, let names):
            return try await run(argv, input: payload.json(), timeoutSeconds: timeout, directory: directory,
                                 environment: Self.environment(passing: names))
        }
    }

    /// Mode 0600, in a directory of mode 0700 that nobody else can read, written to a new
    /// file beside it and renamed over the old one: a reader sees the old pair or the new one.
    private func write(_ payload: DeliveryPayload, to path: String, format: Delivery.FileFormat, roots: [String], shown: String) throws(DeliveryError) {
        let directory = (path as NSString).deletingLastPathComponent
        var isDir: ObjCBool = false
        let existed = FileManager.default.fileExists(atPath: directory, isDirectory: &isDir)
        // Links followed, the file must stay inside the repository (or an allowed root): a
        // committed symbolic link must not carry a secret elsewhere. Checked before anything is
        // created, and again once the directory exists.
        try checkInside(directory, roots: roots, shown: shown)
        do {
            try SecureFiles.ensureDirectory(directory)
        } catch {
            throw DeliveryError(description: "cannot deliver to \(shown): \(error)")
        }
        try checkInside(directory, roots: roots, shown: shown)
        var info = stat()
        guard lstat(directory, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
            throw DeliveryError(description: "cannot deliver to \(shown): \(directory) is not a directory")
        }
        if info.st_mode & 0o077 != 0 {
            throw DeliveryError(description: "not delivered to \(shown): its directory \(directory) can be read by others "
                                + "(mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 700 \(directory)")
        }
        if info.st_uid != geteuid() {
            throw DeliveryError(description: "not delivered to \(shown): its directory \(directory) belongs to another user")
        }
        if !existed {
            // A directory credops made for secrets is never committed by mistake.
            try? SecureFiles.writeAtomically(Data("# Secrets delivered by credops: never commit them.\n*\n".utf8),
                                             to: (directory as NSString).appendingPathComponent(".gitignore"))
        }
        // A run killed mid-write leaves its temporary file (`.NAME.PID.RANDOM.tmp`): gone now.
        for name in leftovers.take(in: directory, for: (path as NSString).lastPathComponent) {
            unlink((directory as NSString).appendingPathComponent(name))
        }
        do {
            try SecureFiles.writeAtomically(format == .json ? payload.json() : payload.env(), to: path)
        } catch {
            throw DeliveryError(description: "cannot deliver to \(shown): \(error)")
        }
        // The rename itself made durable before the credential it replaces is deleted.
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if fd >= 0 {
            fsync(fd)
            close(fd)
        }
    }

    /// Throws unless `directory`, or its nearest existing ancestor, resolves inside a root.
    private func checkInside(_ directory: String, roots: [String], shown: String) throws(DeliveryError) {
        var probe = directory
        while !FileManager.default.fileExists(atPath: probe) {
            let parent = (probe as NSString).deletingLastPathComponent
            if parent == probe || parent.isEmpty { break }
            probe = parent
        }
        let real = SecureFiles.canonicalPath(probe) ?? probe
        let inside = roots.compactMap(SecureFiles.canonicalPath).contains { real == $0 || SecureFiles.isInside(real, directory: $0) }
        guard inside else {
            throw DeliveryError(description: "not delivered to \(shown): it resolves to \(real), outside the repository and CREDOPS_DELIVERY_ROOTS "
                                + "(through a symbolic link, or a placeholder value)")
        }
    }

    /// Runs `argv` (no shell) with `input` on stdin; it must exit 0 within `timeoutSeconds`,
    /// else it is killed (SIGTERM, then SIGKILL after 2 s) and the delivery fails.
    /// Variables every command gets from credops' environment; any other (a token, the state
    /// key, a database password) only when the manifest names it under `env:`.
    public static let basicVariables = ["PATH", "HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "XDG_CONFIG_HOME"]

    /// The variables a delivery command runs with.
    public static func environment(passing names: [String], from all: [String: String] = ProcessInfo.processInfo.environment) -> [String: String] {
        var chosen: [String: String] = [:]
        for name in basicVariables + names { if let value = all[name] { chosen[name] = value } }
        return chosen
    }

    private func run(_ argv: [String], input: Data, timeoutSeconds: Int, directory: String,
                     environment: [String: String]) async throws(DeliveryError) -> String? {
        guard let first = argv.first else { throw DeliveryError(description: "the delivery command is empty") }
        let shown = (first as NSString).lastPathComponent
        // The payload goes into a pipe before the command starts (it is far smaller than a
        // pipe's buffer), and the command reads it from there: nothing is written while it
        // runs, so a command that exits without reading stdin cannot break the write, and the
        // secret never touches a disk.
        guard input.count <= 16 * 1024 else {
            throw DeliveryError(description: "the delivery command \(shown) was not run: its input would be \(input.count) bytes, over 16 KiB")
        }
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            throw DeliveryError(description: "the delivery command \(shown) could not be given its input: \(String(cString: strerror(errno)))")
        }
        // Never blocks: a pipe takes at least a page at once; if it cannot, the delivery fails.
        _ = fcntl(ends[1], F_SETFL, fcntl(ends[1], F_GETFL) | O_NONBLOCK)
        let written = SecureFiles.writeAll(input, to: ends[1])
        close(ends[1])
        guard written else {
            close(ends[0])
            throw DeliveryError(description: "the delivery command \(shown) could not be given its input")
        }
        let readEnd = ends[0]
        _ = fcntl(readEnd, F_SETFD, FD_CLOEXEC)
        let outcome: Result<ExecutionRecord, DeliveryError> = await withTaskGroup(of: Result<ExecutionRecord, DeliveryError>?.self) { group in
            group.addTask {
                let executable: Executable = first.contains("/") ? .path(FilePath(first)) : .name(first)
                var options = PlatformOptions()
                // Its own session, so that a timeout stops whatever it started too.
                options.createSession = true
                options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: .seconds(2))]
                do {
                    var variables: [Subprocess.Environment.Key: String] = [:]
                    for (name, value) in environment { if let key = Subprocess.Environment.Key(rawValue: name) { variables[key] = value } }
                    let result = try await Subprocess.run(executable, arguments: Arguments(Array(argv.dropFirst())),
                                                          environment: .custom(variables), workingDirectory: FilePath(directory), platformOptions: options,
                                                          input: .fileDescriptor(FileDescriptor(rawValue: readEnd), closeAfterSpawningProcess: true),
                                                          output: .string(limit: Self.outputLimit), error: .string(limit: Self.outputLimit))
                    return .success(ExecutionRecord(status: result.terminationStatus, output: result.standardOutput,
                                                    errors: result.standardError))
                } catch {
                    if Task.isCancelled { return nil }
                    return .failure(DeliveryError(description: "the delivery command \(shown) could not run: \(error)"))
                }
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(timeoutSeconds))
                if Task.isCancelled { return nil }
                return .failure(DeliveryError(description: "the delivery command \(shown) did not finish within \(timeoutSeconds) s and was stopped"))
            }
            var first: Result<ExecutionRecord, DeliveryError>?
            for await result in group {
                if let result, first == nil {
                    first = result
                    group.cancelAll()
                } else if first == nil {
                    continue
                }
            }
            return first ?? .failure(DeliveryError(description: "the delivery command \(shown) was stopped"))
        }
        let record = try outcome.get()
        let printed = [record.output, record.errors].map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }.filter { !$0.isEmpty }
            .joined(separator: "\n")
        guard case .exited(0) = record.status else {
            let how: String = switch record.status {
            case .exited(let code): "exited with \(code)"
            case .signaled(let signal): "was killed by signal \(signal)"
            }
            throw DeliveryError(description: "the delivery command \(shown) \(how)" + (printed.isEmpty ? "" : ": \(printed)"))
        }
        return printed.isEmpty ? nil : printed
    }

    private struct ExecutionRecord: Sendable {
        var status: TerminationStatus
        var output: String
        var errors: String
    }
}

/// The leftover temporary files (`.NAME.PID.RANDOM.tmp`) of each directory as it was when this
/// run first wrote there. Files made later (another run's writes in progress) are never taken.
final class LeftoverTemporaries: Sendable {
    private let listed = Mutex<[String: [String]]>([:])

    /// The leftovers of `file` in `directory`, each handed out once.
    func take(in directory: String, for file: String) -> [String] {
        let prefix = "." + file + "."
        return listed.withLock { listed in
            if listed[directory] == nil {
                listed[directory] = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                    .filter { $0.hasPrefix(".") && $0.hasSuffix(".tmp") }
            }
            let mine = listed[directory]!.filter { $0.hasPrefix(prefix) }
            if !mine.isEmpty { listed[directory]!.removeAll { $0.hasPrefix(prefix) } }
            return mine
        }
    }
}
