import ArgumentParser
import CredOps
import CredOpsRender
import Foundation
import Logging

/// Output formats, per command.
enum PlanFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown
}

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case text, json, markdown, junit
}

/// Rendering a plan in any of its formats.
enum PlanOutput {
    static func render(_ plan: Plan, format: PlanFormat, style: TextStyle) -> String {
        switch format {
        case .text: return PlanTextRenderer(style: style, schemas: Composition.providers.schemas).render(plan)
        case .json: return String(decoding: PlanJSONRenderer.render(plan, schemas: Composition.providers.schemas), as: UTF8.self)
        case .markdown: return MarkdownRenderer(schemas: Composition.providers.schemas).render(plan)
        }
    }
}

/// Request logging for --verbose, on stderr, through the terminal (so it is redacted and its
/// control characters escaped like every other line).
enum CLILogging {
    static func logger(verbose: Bool, terminal: Terminal) -> Logger {
        var logger = Logger(label: "credops", factory: { label -> any LogHandler in
            if verbose { return TerminalLogHandler(label: label, terminal: terminal) }
            return SwiftLogNoOpLogHandler()
        })
        logger.logLevel = verbose ? Logger.Level.debug : Logger.Level.critical
        return logger
    }
}

/// `2026-12-02T01:50:53Z debug credops: GET https://... → 200 (…)`.
struct TerminalLogHandler: LogHandler {
    let label: String
    let terminal: Terminal
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .debug

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { _, new in new }
        let level = event.level, message = event.message
        let meta = all.isEmpty ? "" : " " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        let time = Timestamp.format(Int64(Date().timeIntervalSince1970 * 1000))
        terminal.err("\(time) \(level) \(label):\(meta) \(message)")
    }
}
