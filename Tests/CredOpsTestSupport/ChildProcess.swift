import Foundation

/// A child process started with posix_spawn and reaped with waitpid: exact exit codes and
/// signals, no run loop (Foundation's `Process` is late to notice some exits on Linux).
public final class ChildProcess: @unchecked Sendable {
    public let pid: pid_t
    private let lock = NSLock()
    private var status: Int32?
    private var usage = rusage()

    /// - Parameters:
    ///   - stdin/stdout/stderr: file descriptors for the child (nil: /dev/null).
    public init(_ executable: String, _ arguments: [String], environment: [String: String]? = nil, directory: String? = nil,
                stdin: Int32? = nil, stdout: Int32? = nil, stderr: Int32? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        let devnull = open("/dev/null", O_RDWR)
        defer { close(devnull) }
        posix_spawn_file_actions_adddup2(&actions, stdin ?? devnull, 0)
        posix_spawn_file_actions_adddup2(&actions, stdout ?? devnull, 1)
        posix_spawn_file_actions_adddup2(&actions, stderr ?? devnull, 2)
        // Nothing else passes to the child. NIO opens its sockets without close-on-exec: a child
        // that inherited a test sandbox's listening socket kept it in LISTEN after the sandbox
        // stopped (connections then queued unanswered until the child exited).
        if let closeFrom = Self.addCloseFrom { _ = closeFrom(&actions, 3) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Default signal handling in the child, whatever the test runner set.
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGINT, SIGTERM, SIGPIPE, SIGCHLD] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        // The working directory is set by a shell that then execs the program (glibc's
        // posix_spawn_file_actions_addchdir_np is not visible to Swift); arguments pass untouched.
        let (program, programArguments) = directory.map { ("/bin/sh", ["-c", "cd \"$0\" && exec \"$@\"", $0, executable] + arguments) }
            ?? (executable, arguments)
        let argv = ([program] + programArguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        let env = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { env.forEach { free($0) } }
        var child: pid_t = 0
        let rc = Self.spawnLock.withLock { posix_spawn(&child, program, &actions, &attributes, argv, env) }
        guard rc == 0 else { throw NSError(domain: "ChildProcess", code: Int(rc), userInfo: [NSLocalizedDescriptionKey: "cannot start \(executable): \(String(cString: strerror(rc)))"]) }
        pid = child
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34+), which its headers hide from
    /// Swift; nil where the C library lacks it.
    private static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32)? = {
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32).self)
    }()

    deinit {
        if exitStatus == nil { kill(pid, SIGKILL); _ = waitBlocking(timeout: .seconds(5)) }
    }

    public func signal(_ sig: Int32) { kill(pid, sig) }

    /// A pipe whose ends close on exec, so that no other child inherits them (a child that
    /// holds a write end would keep a reader from ever seeing end-of-file).
    public static func pipe() -> (read: Int32, write: Int32) {
        // pipe2 is not visible to Swift; pipe + FD_CLOEXEC under the spawn lock is as good.
        spawnLock.withLock {
            var fds: [Int32] = [0, 0]
            _ = Glibc.pipe(&fds)
            for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
            return (fds[0], fds[1])
        }
    }

    /// Held while spawning and while making close-on-exec descriptors, so that no child is
    /// spawned between a descriptor's creation and its FD_CLOEXEC flag.
    static let spawnLock = NSLock()

    /// CPU seconds (user + system) and peak resident memory in bytes, once reaped.
    public var resources: (cpuSeconds: Double, maxRSSBytes: Int) {
        lock.withLock {
            let cpu = Double(usage.ru_utime.tv_sec) + Double(usage.ru_utime.tv_usec) / 1e6
                + Double(usage.ru_stime.tv_sec) + Double(usage.ru_stime.tv_usec) / 1e6
            return (cpu, Int(usage.ru_maxrss) * 1024)
        }
    }

    /// The raw wait status once reaped.
    public var exitStatus: Int32? { lock.withLock { status } }

    /// Exit code, or 128 + signal number when killed by a signal (as shells report it).
    public static func code(_ status: Int32) -> Int32 {
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : 128 + signal
    }

    /// Waits (polling, on the calling thread) until the child exits or `timeout` passes.
    /// - Returns: the exit code (see `code`), or nil on timeout.
    public func waitBlocking(timeout: Duration) -> Int32? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let s = exitStatus { return Self.code(s) }
            var raw: Int32 = 0
            var used = rusage()
            let r = wait4(pid, &raw, WNOHANG, &used)
            if r == pid {
                lock.withLock {
                    status = raw
                    usage = used
                }
                return Self.code(raw)
            }
            if r < 0 { return exitStatus.map(Self.code) ?? -1 }
            if ContinuousClock.now >= deadline { return nil }
            usleep(5_000)
        }
    }

    /// Waits off the cooperative pool.
    public func wait(timeout: Duration) async -> Int32? {
        let me = self
        return (try? await offCooperativePool { me.waitBlocking(timeout: timeout) }) ?? nil
    }
}
