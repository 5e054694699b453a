import CredOps
import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://USER[:PASSWORD]@HOST[:PORT]/DB?sslmode=MODE` URL, read the way libpq reads it
/// (the password may also come from `PGPASSWORD`). Never shows the password.
public struct PostgresLocation: Sendable, CustomStringConvertible {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var sslMode: String
    var password: Secret?

    public init(url: String, environment: [String: String]) throws(Failure) {
        guard let c = URLComponents(string: url), ["postgres", "postgresql"].contains(c.scheme?.lowercased() ?? ""),
              let host = c.host, !host.isEmpty else {
            throw Failure(description: "--state must look like postgres://USER@HOST:PORT/DB?sslmode=require")
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        port = c.port ?? 5432
        guard let user = c.user, !user.isEmpty else {
            throw Failure(description: "the PostgreSQL state URL needs a user: postgres://USER@HOST/DB")
        }
        self.user = user.removingPercentEncoding ?? user
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        database = path.isEmpty ? self.user : path
        password = (c.password?.removingPercentEncoding).map(Secret.init) ?? environment["PGPASSWORD"].map(Secret.init)
        let mode = c.queryItems?.first { $0.name == "sslmode" }?.value ?? (HostAddress.isLoopback(self.host) ? "disable" : "verify-full")
        guard ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(mode) else {
            throw Failure(description: "sslmode must be disable, prefer, require, verify-ca or verify-full, found '\(mode)'")
        }
        sslMode = mode
    }

    /// `postgres://user@host:port/db?sslmode=...`: the URL without its password.
    public var description: String { "postgres://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?sslmode=\(sslMode)" }

    func tls() throws -> PostgresClient.Configuration.TLS {
        switch sslMode {
        case "disable": return .disable
        case "prefer", "require":
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .none
            return sslMode == "prefer" ? .prefer(tls) : .require(tls)
        case "verify-ca":
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.certificateVerification = .noHostnameVerification
            return .require(tls)
        default:
            return .require(TLSConfiguration.makeClientConfiguration())
        }
    }

    /// The one place the database password leaves its `Secret`: the login.
    private var login: String? { password?.reveal() }

    var clientConfiguration: PostgresClient.Configuration {
        get throws {
            PostgresClient.Configuration(host: host, port: port, username: user, password: login, database: database, tls: try tls())
        }
    }

    var connectionConfiguration: PostgresConnection.Configuration {
        get throws {
            let tls: PostgresConnection.Configuration.TLS
            switch sslMode {
            case "disable": tls = .disable
            default:
                var config = TLSConfiguration.makeClientConfiguration()
                if sslMode == "prefer" || sslMode == "require" { config.certificateVerification = .none }
                if sslMode == "verify-ca" { config.certificateVerification = .noHostnameVerification }
                let context = try NIOSSLContext(configuration: config)
                tls = sslMode == "prefer" ? .prefer(context) : .require(context)
            }
            return PostgresConnection.Configuration(host: host, port: port, username: user, password: login, database: database, tls: tls)
        }
    }
}
