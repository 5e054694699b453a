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

/// Where a resolved secret goes: a header value must not hold control characters (a CR or LF
/// there would start a header of its own).
public enum SecretUse: Sendable {
    /// A request body (passwords, the token call's form): any character is safe there.
    case body
    /// A header value (bearer tokens): control characters are refused.
    case header
}

/// Resolves secret references against a process environment and the file system.
///
/// Secret files are read only from inside `secretsRoot` (the repository: the directory holding
/// the environments directory, or `--secrets-root`), after every symbolic link is resolved, and
/// only when they are regular files of at most 64 KiB: a manifest in a pull request cannot
/// name `/proc/self/environ`, `/etc/shadow`, a link out of the repository, or a FIFO that
/// would hang the run.
public struct SecretResolver: Sendable {
    /// Largest secret file read; a password file is small, a bigger one is a mistake.
    public static let maxFileBytes = 64 * 1024

    private let environment: [String: String]
    /// The canonical (symlink-free, absolute) directory secret files must be inside.
    public let secretsRoot: String
    /// The root as given (absolute), for the check of paths as written.
    private let secretsRootAsGiven: String

    /// - Parameters:
    ///   - environment: the variables to read `fromEnv` references from (the process
    ///     environment in the CLI; a dictionary in tests).
    ///   - secretsRoot: the directory secret files must resolve into; made absolute and
    ///     symlink-free here.
    public init(environment: [String: String], secretsRoot: String) {
        self.environment = environment
        self.secretsRoot = SecureFiles.canonicalPath(secretsRoot) ?? SecureFiles.absolutePath(secretsRoot)
        self.secretsRootAsGiven = SecureFiles.absolutePath(secretsRoot)
    }

    /// Returns the secret value, or throws naming the missing, empty or refused source (never
    /// the value).
    public func resolve(_ reference: SecretReference, use: SecretUse = .body) throws(SecretResolutionError) -> Secret {
        var ignored: [String] = []
        return try resolve(reference, use: use, warnings: &ignored)
    }

    /// As `resolve(_:use:)`, adding what deserves a warning (a secret file others can read).
    public func resolve(_ reference: SecretReference, use: SecretUse, warnings: inout [String]) throws(SecretResolutionError) -> Secret {
        func fail(_ problem: String) -> SecretResolutionError { SecretResolutionError(reference: reference, problem: problem) }
        let bytes: [UInt8]
        let what: String
        switch reference.source {
        case .literal(let secret):
            bytes = Array(secret.reveal().utf8)
            what = "the literal secret"
        case .environment(let name):
            guard let value = environment[name] else {
                throw fail("environment variable \(name) is not set; export it before running credops")
            }
            // One trailing newline is the shell's or the CI secret store's, not the secret's.
            bytes = Self.withoutTrailingNewline(Array(value.utf8))
            what = "environment variable \(name)"
        case .file(let path, let resolvedPath):
            bytes = Self.withoutTrailingNewline(try readSecretFile(path: path, resolvedPath: resolvedPath, warnings: &warnings, fail: fail))
            what = "secret file \(path)"
        }
        guard !bytes.isEmpty else { throw fail("\(what) is empty") }
        if bytes.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 10 || $0 == 13 || $0 == 11 || $0 == 12 }) {
            throw fail("\(what) holds only white space")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else { throw fail("\(what) is not UTF-8 text") }
        if use == .header, bytes.contains(where: { $0 < 32 || $0 == 127 }) {
            throw fail("\(what) holds a control character (a line break or the like), which cannot go into an HTTP header; remove it")
        }
        return Secret(text)
    }

    /// Drops one trailing line ending (LF, CRLF or CR), on bytes: `"\r\n"` is one Swift
    /// `Character`, so trimming characters would eat a real one.
    static func withoutTrailingNewline(_ bytes: [UInt8]) -> [UInt8] {
        var b = bytes
        if b.last == 10 {
            b.removeLast()
            if b.last == 13 { b.removeLast() }
        } else if b.last == 13 {
            b.removeLast()
        }
        return b
    }

    private func readSecretFile(path: String, resolvedPath: String, warnings: inout [String],
                                fail: (String) -> SecretResolutionError) throws(SecretResolutionError) -> [UInt8] {
        // Outside as written, or outside once links are followed: refused the same way, before
        // anything is said about whether the file exists.
        let outside = fail("secret file \(path) is outside the repository (\(secretsRoot)); keep secret files inside it, or pass --secrets-root DIR")
        guard SecureFiles.isInside(SecureFiles.absolutePath(resolvedPath), directory: secretsRoot)
            || SecureFiles.isInside(SecureFiles.absolutePath(resolvedPath), directory: SecureFiles.absolutePath(secretsRootAsGiven)) else { throw outside }
        guard let real = SecureFiles.canonicalPath(resolvedPath) else {
            throw fail("secret file \(path) cannot be read (\(String(cString: strerror(errno))))")
        }
        guard SecureFiles.isInside(real, directory: secretsRoot) else { throw outside }
        // Whatever the root, the kernel's and the devices' files are never secrets to send.
        for candidate in [SecureFiles.absolutePath(resolvedPath), real] {
            for system in ["/proc", "/sys", "/dev"] where candidate == system || candidate.hasPrefix(system + "/") {
                throw fail("secret file \(path) is under \(system), which holds no secret files; refused")
            }
        }
        switch SecureFiles.readRegularFile(real, limit: Self.maxFileBytes) {
        case .success(let file):
            if file.mode & 0o044 != 0 {
                warnings.append("secret file \(path) can be read by other users (mode \(String(file.mode & 0o777, radix: 8))); run chmod 600 \(path)")
            }
            return file.bytes
        case .failure(.notRegular):
            throw fail("secret file \(path) is not a regular file")
        case .failure(.tooLarge):
            throw fail("secret file \(path) is larger than 64 KiB; it should hold only the secret")
        case .failure(.system(let code)):
            throw fail("secret file \(path) cannot be read (\(String(cString: strerror(code))))")
        }
    }
}
