import Foundation

/// Where a secret comes from, as written in a manifest or environment file.
///
/// A reference is resolved only when a run needs the value (plan, apply), never by `validate`,
/// so that a pull request's validate job runs without any secret.
public struct SecretReference: Sendable, CustomStringConvertible {
    public enum Source: Sendable {
        /// `{ fromEnv: NAME }`
        case environment(String)
        /// `{ fromFile: PATH }`; `path` as written, `resolvedPath` relative to the naming file.
        case file(path: String, resolvedPath: String)
        /// A literal value, accepted only with `--allow-plaintext-secrets`.
        case literal(Secret)
    }

    public var source: Source
    /// Where the reference is written.
    public var location: SourceLocation?

    public init(_ source: Source, at location: SourceLocation? = nil) {
        self.source = source
        self.location = location
    }

    /// `env CHECKOUT_PASSWORD`, `file secrets/checkout.txt` or `literal`: what to show people.
    public var description: String {
        switch source {
        case .environment(let name): "env \(name)"
        case .file(let path, _): "file \(path)"
        case .literal: "literal value"
        }
    }

    /// A stable identity of the source (not the value), used to tell whether two references agree.
    public var identity: String {
        switch source {
        case .environment(let name): "env:\(name)"
        case .file(_, let resolved): "file:\(resolved)"
        case .literal: "literal:\(location?.description ?? "")"
        }
    }
}

/// A secret that could not be resolved; the message names the variable or the file, never a value.
public struct SecretResolutionError: Error, Sendable, CustomStringConvertible {
    public var reference: SecretReference
    public var problem: String

    public var description: String {
        let place = reference.location.map { " (declared at \($0))" } ?? ""
        return "\(problem)\(place)"
    }
}

/// Resolves secret references against a process environment and the file system.
public struct SecretResolver: Sendable {
    /// Largest secret file read; a password file is small, a bigger one is a mistake.
    public static let maxFileBytes = 64 * 1024

    private let environment: [String: String]

    /// - Parameter environment: the variables to read `fromEnv` references from (the process
    ///   environment in the CLI; a dictionary in tests).
    public init(environment: [String: String]) {
        self.environment = environment
    }

    /// Returns the secret value, or throws naming the missing or empty source.
    public func resolve(_ reference: SecretReference) throws(SecretResolutionError) -> Secret {
        switch reference.source {
        case .literal(let secret):
            guard !secret.isEmpty else {
                throw SecretResolutionError(reference: reference, problem: "the password is empty")
            }
            return secret
        case .environment(let name):
            guard let value = environment[name] else {
                throw SecretResolutionError(reference: reference, problem: "environment variable \(name) is not set; export it before running credops")
            }
            guard !value.isEmpty else {
                throw SecretResolutionError(reference: reference, problem: "environment variable \(name) is empty")
            }
            return Secret(value)
        case .file(let path, let resolvedPath):
            let data: Data
            do {
                let handle = try FileHandle(forReadingFrom: URL(fileURLWithPath: resolvedPath))
                defer { try? handle.close() }
                data = try handle.read(upToCount: Self.maxFileBytes + 1) ?? Data()
            } catch {
                throw SecretResolutionError(reference: reference, problem: "secret file \(path) cannot be read (\(Self.reason(error)))")
            }
            guard data.count <= Self.maxFileBytes else {
                throw SecretResolutionError(reference: reference, problem: "secret file \(path) is larger than 64 KiB; it should hold only the secret")
            }
            guard var text = String(data: data, encoding: .utf8) else {
                throw SecretResolutionError(reference: reference, problem: "secret file \(path) is not UTF-8 text")
            }
            // One trailing newline is an editor's, not the secret's.
            if text.hasSuffix("\r\n") { text.removeLast(2) } else if text.hasSuffix("\n") { text.removeLast() }
            guard !text.isEmpty else {
                throw SecretResolutionError(reference: reference, problem: "secret file \(path) is empty")
            }
            return Secret(text)
        }
    }

    private static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        if ns.domain == NSCocoaErrorDomain, ns.code == NSFileReadNoSuchFileError || ns.code == NSFileNoSuchFileError {
            return "no such file"
        }
        if ns.domain == NSCocoaErrorDomain, ns.code == NSFileReadNoPermissionError {
            return "permission denied"
        }
        return "no such file or not readable"
    }
}
