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

        // A connection that goes quiet is closed (see `SandboxHTTP.serve`): unauthenticated
        // clients cannot hold descriptors open for ever.
        let (port, serviceGroup, runTask) = try await SandboxHTTP.serve(responder: SandboxResponder(engine: engine), host: configuration.host,
                                                                        port: configuration.port, grace: configuration.shutdownGrace, logger: logger)
        return SandboxServer(port: port, baseURL: SandboxHTTP.baseURL(host: configuration.host, port: port), engine: engine,
                             serviceGroup: serviceGroup, runTask: runTask)
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
