/// Turns an environment file into a reachable server: the URL to call and the credentials to
/// present. The CLI's implementation starts built-in sandboxes for `sandbox://` URLs; the engine
/// does not know about them.
public protocol EnvironmentConnector: Sendable {
    /// - Parameter credentials: the environment's resolved auth, nil when its file has none.
    func connect(_ environment: EnvironmentConfig, credentials: Connection.Credentials?) async throws -> Connection

    /// Stops whatever `connect` started.
    func shutdown() async
}

/// Connects to the URL of the environment file as it is.
public struct DirectConnector: EnvironmentConnector {
    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    public init() {}

    public func connect(_ environment: EnvironmentConfig, credentials: Connection.Credentials?) async throws -> Connection {
        guard case .url(let url) = environment.endpoint else {
            throw Failure(description: "\(environment.name): \(environment.endpoint) needs the built-in sandbox, which this run does not provide")
        }
        guard let credentials else {
            throw Failure(description: "\(environment.name): no auth in \(environment.file)")
        }
        return Connection(baseURL: url, credentials: credentials, retry: environment.retry)
    }

    public func shutdown() async {}
}
