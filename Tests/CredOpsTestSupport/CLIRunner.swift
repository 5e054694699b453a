import Foundation

/// Runs the built `credops` binary as a user would, capturing its output.
public struct CLIRunner: Sendable {
    public struct Result: Sendable, CustomStringConvertible {
        public var exitCode: Int32
        public var stdout: String
        public var stderr: String
        public var description: String { "exit \(exitCode)\n--- stdout\n\(stdout)\n--- stderr\n\(stderr)" }
    }

    /// The binary beside the test bundle (both are products of the same build).
    public static let binary: String = {
        let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
        // swift-testing may run from inside an .xctest bundle directory.
        while dir.path != "/" && !FileManager.default.isExecutableFile(atPath: dir.appendingPathComponent("credops").path) {
            dir.deleteLastPathComponent()
        }
        return dir.appendingPathComponent("credops").path
    }()

    public var directory: String
    public var environment: [String: String]

    /// - Parameters:
    ///   - directory: the working directory (state and sandbox data go under `.credops/` there).
    ///   - environment: variables on top of PATH and HOME (HOME is the working directory).
    public init(directory: String, environment: [String: String] = [:]) {
        signal(SIGPIPE, SIG_IGN)
        self.directory = directory
        var env = ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": directory, "NO_COLOR": "1"]
        for (k, v) in environment { env[k] = v }
        self.environment = env
    }

    /// Runs `credops ARGS` off the cooperative pool (see `offCooperativePool`).
    public func run(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(120)) async -> Result {
        let runner = self
        return (try? await offCooperativePool { runner.runBlocking(arguments, input: input, timeout: timeout) })
            ?? Result(exitCode: -1, stdout: "", stderr: "runner failed")
    }

    /// Runs `credops ARGS`, with `input` on stdin, killed after `timeout`; blocks the calling thread.
    public func runBlocking(_ arguments: [String], input: String? = nil, timeout: Duration = .seconds(120)) -> Result {
        let o = ChildProcess.pipe(), e = ChildProcess.pipe(), i = ChildProcess.pipe()
        let outPipe = [o.read, o.write], errPipe = [e.read, e.write], inPipe = [i.read, i.write]
        let child: ChildProcess
        do {
            child = try ChildProcess(Self.binary, arguments, environment: environment, directory: directory,
                                     stdin: inPipe[0], stdout: outPipe[1], stderr: errPipe[1])
        } catch {
            for fd in outPipe + errPipe + inPipe { close(fd) }
            return Result(exitCode: -1, stdout: "", stderr: "\(error)")
        }
        close(outPipe[1])
        close(errPipe[1])
        close(inPipe[0])
        let collected = Collected()
        let group = DispatchGroup()
        for (fd, isOut) in [(outPipe[0], true), (errPipe[0], false)] {
            group.enter()
            detachedThread {
                let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
                collected.set(handle.readDataToEndOfFile(), isOut: isOut)
                group.leave()
            }
        }
        let writer = FileHandle(fileDescriptor: inPipe[1], closeOnDealloc: true)
        if let input { writer.write(Data(input.utf8)) }
        try? writer.close()
        var code = child.waitBlocking(timeout: timeout)
        if code == nil {
            child.signal(SIGKILL)
            code = child.waitBlocking(timeout: .seconds(10))
        }
        group.wait()
        let (stdout, stderr) = collected.get()
        return Result(exitCode: code ?? -1, stdout: stdout, stderr: stderr)
    }

    private final class Collected: @unchecked Sendable {
        private let lock = NSLock()
        private var out = Data(), err = Data()
        func set(_ data: Data, isOut: Bool) { lock.withLock { if isOut { out = data } else { err = data } } }
        func get() -> (String, String) { lock.withLock { (String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self)) } }
    }
}
