/// Why a sandbox could not start or a seed could not be used.
public struct SandboxError: Error, Sendable, CustomStringConvertible {
    /// The kinds of failure.
    public enum Kind: Sendable, Equatable {
        /// Seed data that cannot be read or is inconsistent (unknown key, unknown role, ...).
        case invalidSeed
        /// The data file cannot be read, parsed or written.
        case dataFile
        /// The HTTP server could not start (address in use, bad host).
        case startup
    }

    public var kind: Kind
    /// What went wrong and where (file, key path).
    public var message: String

    /// An error of `kind` saying `message`.
    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// The message.
    public var description: String { message }
}
