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

    init(noColor: Bool, environment: [String: String] = ProcessInfo.processInfo.environment) {
        stdoutIsTTY = isatty(STDOUT_FILENO) == 1
        stderrIsTTY = isatty(STDERR_FILENO) == 1
        stdinIsTTY = isatty(STDIN_FILENO) == 1
        let colorAllowed = !noColor && environment["NO_COLOR"].map(\.isEmpty) ?? true && environment["TERM"] != "dumb"
        style = TextStyle(colors: colorAllowed && stdoutIsTTY)
        errorStyle = TextStyle(colors: colorAllowed && stderrIsTTY)
    }

    func out(_ text: String, terminator: String = "\n") { write(text + terminator, to: FileHandle.standardOutput) }
    func err(_ text: String) { write(text + "\n", to: FileHandle.standardError) }

    private func write(_ text: String, to handle: FileHandle) {
        handle.write(Data(text.utf8))
    }

    func diagnostics(_ diagnostics: [Diagnostic]) {
        for line in DiagnosticsRenderer.lines(diagnostics, style: errorStyle) { err(line) }
    }

    /// Reads one line from a terminal, after a prompt on stderr.
    func ask(_ prompt: String) -> String? {
        write(prompt, to: FileHandle.standardError)
        return readLine(strippingNewline: true)
    }
}
