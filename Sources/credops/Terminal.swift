import CredOps
import CredOpsRender
import Foundation

/// Writing to the terminal: the only place that prints.
struct Terminal: Sendable {
    let stdoutIsTTY: Bool
    let stderrIsTTY: Bool
    let stdinIsTTY: Bool
    let style: TextStyle
    let errorStyle: TextStyle
    /// The secrets output is redacted of; commands add those they resolve, providers those
    /// they learn (an access token).
    let redaction: RunSecrets
    /// Where lines go instead of stdout and stderr (a service logs them: `credops reconcile`),
    /// after redaction and escaping; `isError` for what would go to stderr.
    var sink: (@Sendable (_ line: String, _ isError: Bool) -> Void)?

    /// - Parameter redaction: the secrets to redact, shared with whoever else uses them (a
    ///   service's log handler); by default those the process was given.
    init(noColor: Bool, environment: [String: String] = ProcessInfo.processInfo.environment, redaction: RunSecrets? = nil) {
        self.redaction = redaction ?? RunSecrets(ProcessSecrets.given(environment: environment, arguments: CommandLine.arguments))
        stdoutIsTTY = isatty(STDOUT_FILENO) == 1
        stderrIsTTY = isatty(STDERR_FILENO) == 1
        stdinIsTTY = isatty(STDIN_FILENO) == 1
        let colorAllowed = !noColor && environment["NO_COLOR"].map(\.isEmpty) ?? true && environment["TERM"] != "dumb"
        style = TextStyle(colors: colorAllowed && stdoutIsTTY)
        errorStyle = TextStyle(colors: colorAllowed && stderrIsTTY)
    }

    func out(_ text: String, terminator: String = "\n") { write(text + terminator, isError: false) }
    func err(_ text: String) { write(text + "\n", isError: true) }

    /// Everything credops prints passes here: control characters that a renderer did not
    /// escape are escaped now, so server-supplied text cannot act on the terminal.
    private func write(_ text: String, isError: Bool) {
        let safe = TextSafety.forTerminal(redaction.redactor.redact(text))
        if let sink {
            for line in safe.split(separator: "\n", omittingEmptySubsequences: true) { sink(String(line), isError) }
            return
        }
        (isError ? FileHandle.standardError : FileHandle.standardOutput).write(Data(safe.utf8))
    }

    /// A document (report, saved plan) with every known secret redacted, before it is written.
    func redacted(_ data: Data) -> Data { redaction.redactor.redact(data) }

    func diagnostics(_ diagnostics: [Diagnostic]) {
        for line in DiagnosticsRenderer.lines(diagnostics, style: errorStyle) { err(line) }
    }

    /// Reads one line from a terminal, after a prompt on stderr.
    func ask(_ prompt: String) -> String? {
        write(prompt, isError: true)
        return readLine(strippingNewline: true)
    }
}

/// The secrets a process is given before it reads anything: the final redaction starts with
/// them (database and state-key variables, the sandbox token, and passwords in URLs or
/// secret-bearing options of the command line).
enum ProcessSecrets {
    static func given(environment: [String: String], arguments: [String]) -> [Secret] {
        var secrets: [Secret] = []
        for name in ["PGPASSWORD", "CREDOPS_STATE_KEY", "CREDOPS_SANDBOX_TOKEN"] {
            if let value = environment[name], !value.isEmpty { secrets.append(Secret(value)) }
        }
        if let url = environment["CREDOPS_STATE"] { secrets += CommandLineText.urlPasswords(url) }
        var hideNext = false
        for argument in arguments.dropFirst() {
            if hideNext, !argument.isEmpty { secrets.append(Secret(argument)) }
            hideNext = false
            secrets += CommandLineText.urlPasswords(argument)
            if argument.hasPrefix("-") {
                let body = argument.drop { $0 == "-" }
                if let equals = body.firstIndex(of: "=") {
                    if CommandLineText.carriesSecret(String(body[..<equals])) {
                        let value = String(body[body.index(after: equals)...])
                        if !value.isEmpty { secrets.append(Secret(value)) }
                    }
                } else {
                    hideNext = CommandLineText.carriesSecret(String(body))
                }
            }
        }
        return secrets
    }
}
