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
        case .json: return String(decoding: PlanJSONRenderer.render(plan), as: UTF8.self)
        case .markdown: return MarkdownRenderer(schemas: Composition.providers.schemas).render(plan)
        }
    }
}

/// Request logging for --verbose, on stderr.
enum CLILogging {
    static func logger(verbose: Bool) -> Logger {
        var logger = Logger(label: "credops", factory: { label -> any LogHandler in
            if verbose { return StreamLogHandler.standardError(label: label) }
            return SwiftLogNoOpLogHandler()
        })
        logger.logLevel = verbose ? Logger.Level.debug : Logger.Level.critical
        return logger
    }
}
