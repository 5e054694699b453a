/// One problem found while loading or checking input, with the place to fix it.
///
/// Validation collects every diagnostic and reports them at once, so a user fixes a file in
/// one pass instead of one error per run.
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Severity: String, Sendable, Hashable, Codable {
        case error, warning, note
    }

    public var severity: Severity
    /// Where: a file position when the problem is in a file.
    public var location: SourceLocation?
    /// Where, when there is no file position: e.g. `staging/payments/checkout-service`.
    public var address: String?
    public var message: String

    public init(_ severity: Severity, _ message: String, at location: SourceLocation? = nil, address: String? = nil) {
        self.severity = severity
        self.message = message
        self.location = location
        self.address = address
    }

    public static func error(_ message: String, at location: SourceLocation? = nil, address: String? = nil) -> Diagnostic {
        Diagnostic(.error, message, at: location, address: address)
    }

    public static func warning(_ message: String, at location: SourceLocation? = nil, address: String? = nil) -> Diagnostic {
        Diagnostic(.warning, message, at: location, address: address)
    }

    public var isError: Bool { severity == .error }

    /// `file:line:col: error: message`, the format editors and CI annotators understand.
    public var description: String {
        if let location { return "\(location): \(severity.rawValue): \(message)" }
        if let address { return "\(address): \(severity.rawValue): \(message)" }
        return "\(severity.rawValue): \(message)"
    }
}

/// Diagnostics thrown together when input cannot be used.
public struct DiagnosticsError: Error, Sendable, CustomStringConvertible {
    public var diagnostics: [Diagnostic]

    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }

    public var description: String { diagnostics.map(\.description).joined(separator: "\n") }
}

extension Array where Element == Diagnostic {
    /// True when at least one entry is an error (warnings do not stop a run).
    public var hasErrors: Bool { contains { $0.isError } }

    /// Sorted by file position, then by address, so output is stable across runs.
    public func sortedForDisplay() -> [Diagnostic] {
        sorted { a, b in
            switch (a.location, b.location) {
            case let (l?, r?): return l < r || (l == r && a.message < b.message)
            case (.some, nil): return true
            case (nil, .some): return false
            case (nil, nil): return (a.address ?? "", a.message) < (b.address ?? "", b.message)
            }
        }
    }
}
