import Logging

/// How to run a sandbox: where it listens, who may call it, what it holds at first, where it
/// keeps its data, and which faults it injects.
public struct SandboxConfiguration: Sendable {
    /// The address to bind; `127.0.0.1` keeps the sandbox on this machine.
    public var host: String = "127.0.0.1"
    /// The port; 0 picks a free one (read it back from `SandboxServer.port`).
    public var port: Int = 0
    /// Accepted bearer tokens besides `seed.tokens`.
    public var tokens: [String] = []
    /// The initial data (and the state `POST /__sandbox/reset` returns to).
    public var seed: SandboxSeed = .default
    /// The JSON file the state is kept in; nil keeps it in memory only.
    public var dataFile: String? = nil
    /// The faults injected from the start.
    public var faults: SandboxFaults = .init()
    /// Where the server's and the sandbox's own messages go; nil discards them.
    public var logger: Logger? = nil
    /// How long `stop()` lets open connections finish before it cuts them.
    public var shutdownGrace: Duration = .seconds(5)

    /// A configuration; the defaults give an in-memory sandbox with the default seed on a free
    /// loopback port, without faults.
    public init(host: String = "127.0.0.1", port: Int = 0, tokens: [String] = [], seed: SandboxSeed = .default,
                dataFile: String? = nil, faults: SandboxFaults = .init(), logger: Logger? = nil) {
        self.host = host
        self.port = port
        self.tokens = tokens
        self.seed = seed
        self.dataFile = dataFile
        self.faults = faults
        self.logger = logger
    }
}
