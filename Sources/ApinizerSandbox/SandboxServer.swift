import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// A running sandbox: an HTTP server emulating Apinizer's Management API credential calls.
///
/// Start one with `SandboxServer.start(_:)`, talk to it over HTTP at `baseURL`, and call
/// `stop()` when done. Many sandboxes can run in one process, each on its own port.
///
/// What it answers follows apinizer-api.md; where that leaves a choice, the sandbox:
/// - authenticates before routing: any call but the token call without a valid bearer token is
///   401, even to an unknown path;
/// - answers 404 `not_found` for a documented path without its trailing slash, and 405
///   `method_not_allowed` (with `Allow`) for a known path with another method;
/// - answers an unknown username with 400 `bad_request` (the documented failures are 400
///   unless noted; only an unknown project is 404);
/// - with a failing gateway, answers 200 with top-level `success: true` and
///   `deploymentResult.success: false` (see `DeploymentResult`);
/// - keeps the data file write-behind: answers do not wait for the disk, `flush()` and
///   `stop()` do (see `SandboxEngine`).
public final class SandboxServer: Sendable {
    /// The bound port (the one picked when the configuration asked for port 0).
    public let port: Int
    /// `http://127.0.0.1:PORT` (a wildcard bind address is given as its loopback address).
    public let baseURL: String

    private let engine: SandboxEngine
    private let serviceGroup: ServiceGroup
    private let runTask: Task<Void, Never>

    private init(port: Int, baseURL: String, engine: SandboxEngine, serviceGroup: ServiceGroup, runTask: Task<Void, Never>) {
        self.port = port
        self.baseURL = baseURL
        self.engine = engine
        self.serviceGroup = serviceGroup
        self.runTask = runTask
    }

    /// Starts a sandbox and returns once it accepts connections.
    ///
    /// With a data file that exists, the state is read from it (credentials from the file, the
    /// catalog from the file and the configured seed); otherwise it starts from the seed and
    /// the file is written at once.
    ///
    /// - Throws: `SandboxError` for a bad seed or faults (`.invalidSeed`, `.startup`), an
    ///   unreadable or unwritable data file (`.dataFile`), or a server that cannot bind
    ///   (`.startup`).
    public static func start(_ configuration: SandboxConfiguration) async throws -> SandboxServer {
        let logger = configuration.logger ?? Logger(label: "credops.sandbox", factory: { _ in SwiftLogNoOpLogHandler() })
        let engine = try SandboxEngine(configuration: configuration, logger: logger)
        if let error = await engine.flush() { throw error }

        let started = StartSignal()
        let application = Application(
            responder: SandboxResponder(engine: engine),
            // A connection that goes quiet is closed: unauthenticated clients cannot hold
            // descriptors open for ever (the longest injected latency is far below this).
            server: .http1(configuration: .init(idleTimeout: .seconds(60))),
            configuration: ApplicationConfiguration(address: .hostname(configuration.host, port: configuration.port)),
            onServerRunning: { channel in started.succeed(port: channel.localAddress?.port ?? 0) },
            logger: logger
        )
        var groupConfiguration = ServiceGroupConfiguration(services: [application], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = configuration.shutdownGrace
        let serviceGroup = ServiceGroup(configuration: groupConfiguration)
        let runTask = Task {
            do {
                try await serviceGroup.run()
                started.fail(SandboxError(.startup, "the sandbox server stopped before it started"))
            } catch {
                started.fail(SandboxError(.startup, "the sandbox server on \(configuration.host):\(configuration.port) did not start: \(error)"))
            }
        }
        let port: Int
        do {
            port = try await started.wait()
        } catch {
            await serviceGroup.triggerGracefulShutdown()
            await runTask.value
            throw error
        }
        let host: String
        switch configuration.host {
        case "0.0.0.0", "": host = "127.0.0.1"
        case "::", "[::]": host = "[::1]"
        case let other where other.contains(":") && !other.hasPrefix("["): host = "[\(other)]"
        case let other: host = other
        }
        return SandboxServer(port: port, baseURL: "http://\(host):\(port)", engine: engine, serviceGroup: serviceGroup, runTask: runTask)
    }

    /// Replaces the injected faults; takes effect with the next request.
    public func setFaults(_ faults: SandboxFaults) async {
        await engine.setFaults(faults)
    }

    /// The faults injected now.
    public func faults() async -> SandboxFaults {
        await engine.faults
    }

    /// The whole state (catalog, tokens, credentials with passwords and grants), as
    /// `GET /__sandbox/dump` gives it.
    public func snapshot() async -> SandboxSeed {
        await engine.snapshot()
    }

    /// Waits until the data file holds every change made so far (no-op without a data file).
    ///
    /// - Throws: `SandboxError` (`.dataFile`) when the last save failed.
    public func flush() async throws {
        if let error = await engine.flush() { throw error }
    }

    /// How many times the data file was written (tests check that saves coalesce).
    func saveCount() async -> Int {
        await engine.saveCount
    }

    /// Stops the server gracefully and writes the data file a last time.
    ///
    /// Requests in flight are answered (hung ones are dropped); calling it again is harmless.
    public func stop() async {
        await engine.beginStopping()
        await serviceGroup.triggerGracefulShutdown()
        await runTask.value
        _ = await engine.flush()
    }
}

/// The bound port, handed from the server's `onServerRunning` to `start`, once.
///
/// Invariant: `result` and `waiter` are touched only with `lock` held; the waiter is resumed once.
private final class StartSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Int, SandboxError>?
    private var waiter: CheckedContinuation<Int, any Error>?

    func succeed(port: Int) { finish(.success(port)) }

    func fail(_ error: SandboxError) { finish(.failure(error)) }

    private func finish(_ outcome: Result<Int, SandboxError>) {
        lock.lock()
        guard result == nil else { lock.unlock(); return }
        result = outcome
        let waiter = self.waiter
        self.waiter = nil
        lock.unlock()
        waiter?.resume(with: outcome.mapError { $0 as any Error })
    }

    func wait() async throws -> Int {
        try await withCheckedThrowingContinuation { continuation in
            lock.lock()
            if let result {
                lock.unlock()
                continuation.resume(with: result.mapError { $0 as any Error })
            } else {
                waiter = continuation
                lock.unlock()
            }
        }
    }
}
