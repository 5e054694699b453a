import Foundation
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

/// An emulator's running HTTP server: where it listens, and how to stop it.
struct ServedHTTP: Sendable {
    let port: Int
    let baseURL: String
    let group: ServiceGroup
    let task: Task<Void, Never>

    /// Stops accepting, lets answers in flight finish (within the grace period), and returns
    /// once the server is gone.
    func stop() async {
        await group.triggerGracefulShutdown()
        await task.value
    }
}

/// Starting a Hummingbird server for an emulator: shared by the emulators of every provider.
enum SandboxHTTP {
    /// Serves `responder` on `host:port` (0: a free port); returns once it accepts connections.
    static func start<R: HTTPResponder>(responder: R, host: String, port: Int, grace: Duration, logger: Logger) async throws
        -> ServedHTTP where R.Context == BasicRequestContext {
        let (bound, group, task) = try await serve(responder: responder, host: host, port: port, grace: grace, logger: logger)
        return ServedHTTP(port: bound, baseURL: baseURL(host: host, port: bound), group: group, task: task)
    }

    /// Serves `responder` until the returned group is shut down; returns once it listens.
    static func serve<R: HTTPResponder>(responder: R, host: String, port: Int, grace: Duration, logger: Logger) async throws
        -> (Int, ServiceGroup, Task<Void, Never>) where R.Context == BasicRequestContext {
        let started = PortSignal()
        let application = Application(
            responder: responder,
            server: .http1(configuration: .init(idleTimeout: .seconds(60))),
            configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
            onServerRunning: { channel in started.set(channel.localAddress?.port ?? 0) },
            logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(services: [application], logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = grace
        let group = ServiceGroup(configuration: groupConfiguration)
        let task = Task {
            do { try await group.run() } catch { started.fail("\(error)") }
            started.fail("the server stopped before it started")
        }
        do {
            return (try await started.wait(), group, task)
        } catch {
            await group.triggerGracefulShutdown()
            await task.value
            throw SandboxError(.startup, "the sandbox server on \(host):\(port) did not start: \(error)")
        }
    }

    /// `http://HOST:PORT`, a wildcard bind given as its loopback address.
    static func baseURL(host: String, port: Int) -> String {
        switch host {
        case "0.0.0.0", "": "http://127.0.0.1:\(port)"
        case "::", "[::]": "http://[::1]:\(port)"
        case let other where other.contains(":") && !other.hasPrefix("["): "http://[\(other)]:\(port)"
        case let other: "http://\(other):\(port)"
        }
    }
}

/// The bound port, handed over once.
private final class PortSignal: @unchecked Sendable {
    private let lock = NSLock()
    private var result: Result<Int, SandboxError>?
    private var waiter: CheckedContinuation<Int, any Error>?

    func set(_ port: Int) { finish(.success(port)) }
    func fail(_ message: String) { finish(.failure(SandboxError(.startup, message))) }

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

/// What every emulator does around one API call, whatever its API: latency and faults first
/// (counted by the engine's `admit`), then the body (read only now: after the caller checked
/// authentication, and capped), then the call, and an injected 502 for a stored write.
enum SandboxCall {
    /// - Parameters:
    ///   - admit: counts the request and draws its fault.
    ///   - keepsHanging: true while a `hang` fault should keep the connection open.
    ///   - handle: the API's answer to the request with its body.
    static func answer(_ request: inout Request, arrival: ContinuousClock.Instant, isWrite: Bool, bodyLimit: Int, retryAfterHeader: String = "Retry-After",
                       admit: () async -> FaultInjector.Decision, keepsHanging: @Sendable () async -> Bool,
                       handle: (Data?) async -> SandboxAnswer) async -> Response {
        let decision = await admit()
        if decision.latency > .zero { try? await Task.sleep(until: arrival + decision.latency, tolerance: .zero, clock: .continuous) }
        switch decision.action {
        case .proceed: break
        case .hang:
            while await keepsHanging(), !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
            return SandboxResponder.droppedConnection()
        case .drop:
            return SandboxResponder.droppedConnection()
        case .internalError:
            return SandboxResponder.response(SandboxAnswer(status: 500, body: ["error": "internal server error (injected fault: nothing was done)"]))
        case .rateLimited(let seconds):
            return SandboxResponder.response(SandboxAnswer(status: 429, body: ["error": "too many requests"], headers: [(retryAfterHeader, String(seconds))]))
        }
        let body: Data?
        do {
            let buffer = try await request.collectBody(upTo: bodyLimit)
            body = buffer.readableBytes == 0 ? nil : Data(buffer.readableBytesView)
        } catch {
            return SandboxResponder.response(SandboxAnswer(status: 413, body: ["error": .string("the body is larger than \(bodyLimit / 1024) KiB")]))
        }
        var answer = await handle(body)
        if isWrite && decision.commitThenFail && answer.committed {
            answer = SandboxAnswer(status: 502, body: ["error": "bad gateway (injected fault: the change was stored)"])
        }
        return SandboxResponder.response(answer)
    }
}

/// The admin calls every emulator answers the same way: request counts and faults.
enum SandboxAdmin {
    /// The answer to `GET /__sandbox/stats`, `GET /__sandbox/faults` or `PUT /__sandbox/faults`
    /// (through `setFaults`); nil for any other call.
    static func common(method: String, path: String, body: Data?, stats: RequestStats, faults: SandboxFaults,
                       setFaults: (SandboxFaults) -> Void) -> SandboxAnswer? {
        switch (method, path) {
        case ("GET", "/__sandbox/stats"):
            return .ok(stats.json)
        case ("GET", "/__sandbox/faults"):
            return SandboxAnswer(status: 200, data: (try? JSONEncoder().encode(faults)) ?? Data("{}".utf8))
        case ("PUT", "/__sandbox/faults"):
            guard let body, let faults = try? JSONDecoder().decode(SandboxFaults.self, from: body) else {
                return SandboxAnswer(status: 400, body: ["error": "the body must be a faults object"])
            }
            if let problem = faults.problems.first { return SandboxAnswer(status: 400, body: ["error": .string(problem)]) }
            setFaults(faults)
            return .ok(["success": true])
        default:
            return nil
        }
    }
}

/// What every emulator's engine keeps about its traffic: the faults it injects, the requests it
/// counted, and whether it is stopping (a `hang` fault lets go then).
struct EmulatorTraffic: Sendable {
    private(set) var injector: FaultInjector
    var stats = RequestStats()
    private var stopping = false
    private let clock = ContinuousClock()

    init(_ faults: SandboxFaults) { injector = FaultInjector(faults, now: ContinuousClock.now) }

    var faults: SandboxFaults { injector.faults }
    var keepsHanging: Bool { injector.faults.hang && !stopping }

    mutating func setFaults(_ faults: SandboxFaults) { injector = FaultInjector(faults, now: clock.now) }
    mutating func beginStopping() { stopping = true }

    /// Counts one API request and draws its fault.
    mutating func admit(method: String, template: String, isWrite: Bool) -> FaultInjector.Decision {
        stats.record(method: method, template: template, isWrite: isWrite)
        return injector.decide(isWrite: isWrite, now: clock.now)
    }
}
