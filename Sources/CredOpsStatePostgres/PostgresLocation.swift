import CredOps
import Foundation
import NIOSSL
import PostgresNIO

/// A `postgres://USER[:PASSWORD]@HOST[:PORT]/DB?sslmode=MODE&sslrootcert=PATH` URL, read the
/// way libpq reads it (the password may also come from `PGPASSWORD`), with one deliberate
/// difference: without `sslmode`, certificates are verified (`verify-full`) except on a
/// loopback host (`disable`), where libpq would `prefer` TLS without checking anything.
/// Never shows the password.
public struct PostgresLocation: Sendable, CustomStringConvertible {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var sslMode: String
    /// `sslrootcert=PATH`: the CA file that verify-ca and verify-full trust (else the system's).
    public var sslRootCert: String?
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
        self.user = user  // URLComponents decodes user and password already
        let path = c.path.hasPrefix("/") ? String(c.path.dropFirst()) : c.path
        database = path.isEmpty ? self.user : path
        password = c.password.map(Secret.init) ?? environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : Secret($0) }
        let mode = c.queryItems?.first { $0.name == "sslmode" }?.value ?? (HostAddress.isLoopback(self.host) ? "disable" : "verify-full")
        guard ["disable", "prefer", "require", "verify-ca", "verify-full"].contains(mode) else {
            throw Failure(description: "sslmode must be disable, prefer, require, verify-ca or verify-full, found '\(mode)'")
        }
        sslMode = mode
        sslRootCert = c.queryItems?.first { $0.name == "sslrootcert" }?.value.flatMap { $0.isEmpty ? nil : $0 }
        let known: Set<String> = ["sslmode", "sslrootcert"]
        if let unknown = c.queryItems?.first(where: { !known.contains($0.name) }) {
            throw Failure(description: "unknown parameter '\(unknown.name)' in the PostgreSQL state URL; credops reads sslmode and sslrootcert")
        }
    }

    /// `postgres://user@host:port/db?sslmode=...`: the URL without its password.
    public var description: String { "postgres://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?sslmode=\(sslMode)" }

    /// What `sslMode` asks of TLS, as libpq reads it: nil for `disable`; `prefer` and `require`
    /// encrypt without checking the certificate; `verify-ca` checks the chain; `verify-full`
    /// the chain and the host name.
    func tlsConfiguration() -> TLSConfiguration? {
        guard sslMode != "disable" else { return nil }
        var tls = TLSConfiguration.makeClientConfiguration()
        switch sslMode {
        // libpq: require with a root certificate verifies the chain, as verify-ca does.
        case "require" where sslRootCert != nil: tls.certificateVerification = .noHostnameVerification
        case "prefer", "require": tls.certificateVerification = .none
        case "verify-ca": tls.certificateVerification = .noHostnameVerification
        default: tls.certificateVerification = .fullVerification
        }
        if let sslRootCert { tls.trustRoots = .file(sslRootCert) }
        return tls
    }

    /// The one place the database password leaves its `Secret`: the login.
    private var login: String? { password?.reveal() }

    var clientConfiguration: PostgresClient.Configuration {
        get throws {
            let tls: PostgresClient.Configuration.TLS
            switch (tlsConfiguration(), sslMode) {
            case (nil, _): tls = .disable
            case (let config?, "prefer"): tls = .prefer(config)
            case (let config?, _): tls = .require(config)
            }
            return PostgresClient.Configuration(host: host, port: port, username: user, password: login, database: database, tls: tls)
        }
    }

    var connectionConfiguration: PostgresConnection.Configuration {
        get throws {
            let tls: PostgresConnection.Configuration.TLS
            switch (tlsConfiguration(), sslMode) {
            case (nil, _): tls = .disable
            case (let config?, "prefer"): tls = .prefer(try NIOSSLContext(configuration: config))
            case (let config?, _): tls = .require(try NIOSSLContext(configuration: config))
            }
            return PostgresConnection.Configuration(host: host, port: port, username: user, password: login, database: database, tls: tls)
        }
    }
}
