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

    init(noColor: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) {
        redaction = RunSecrets(ProcessSecrets.given(environment: environment, arguments: CommandLine.arguments))
        stdoutIsTTY = isatty(STDOUT_FILENO) == 1
        stderrIsTTY = isatty(STDERR_FILENO) == 1
        stdinIsTTY = isatty(STDIN_FILENO) == 1
        let colorAllowed = !noColor && environment["NO_COLOR"].map(\.isEmpty) ?? true && environment["TERM"] != "dumb"
        style = TextStyle(colors: colorAllowed && stdoutIsTTY)
        errorStyle = TextStyle(colors: colorAllowed && stderrIsTTY)
    }

    func out(_ text: String, terminator: String = "\n") { write(text + terminator, to: FileHandle.standardOutput) }
    func err(_ text: String) { write(text + "\n", to: FileHandle.standardError) }

    /// Everything credops prints passes here: control characters that a renderer did not
    /// escape are escaped now, so server-supplied text cannot act on the terminal.
    private func write(_ text: String, to handle: FileHandle) {
        handle.write(Data(TextSafety.forTerminal(redaction.redactor.redact(text)).utf8))
    }

    /// A document (report, saved plan) with every known secret redacted, before it is written.
    func redacted(_ data: Data) -> Data { redaction.redactor.redact(data) }

    func diagnostics(_ diagnostics: [Diagnostic]) {
        for line in DiagnosticsRenderer.lines(diagnostics, style: errorStyle) { err(line) }
    }

    /// Reads one line from a terminal, after a prompt on stderr.
    func ask(_ prompt: String) -> String? {
        write(prompt, to: FileHandle.standardError)
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
