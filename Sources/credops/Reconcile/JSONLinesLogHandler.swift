import CredOps
import Foundation
import Logging
import Synchronization

/// swift-log events as lines on stderr, for a service's log collector: one JSON object per
/// line (`{"time", "level", "label", "message", ...metadata}`) or plain text. Every message and
/// metadata value is redacted of the run's secrets first; JSON escapes control characters.
struct ServiceLogHandler: LogHandler {
    enum Format: String, Sendable { case json, text }

    let label: String
    let format: Format
    let redaction: RunSecrets
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]

    private static let output = Mutex(())

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let (level, message, extra) = (event.level, event.message, event.metadata)
        let redactor = redaction.redactor
        var fields: [String: String] = [:]
        for (key, value) in metadata.merging(extra ?? [:], uniquingKeysWith: { _, new in new }) { fields[key] = redactor.redact("\(value)") }
        let text = redactor.redact(message.description)
        let time = Timestamp.format(Int64((Date().timeIntervalSince1970 * 1000).rounded()))
        let rendered: String
        switch format {
        case .json:
            var object: [String: String] = fields
            object["time"] = time
            object["level"] = level.rawValue
            object["label"] = label
            object["message"] = text
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            rendered = String(decoding: TextSafety.jsonSafe(data), as: UTF8.self)
        case .text:
            let tail = fields.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            rendered = TextSafety.forTerminal("\(time) \(level.rawValue) \(text)" + (tail.isEmpty ? "" : " " + tail))
        }
        Self.output.withLock { _ in FileHandle.standardError.write(Data((rendered + "\n").utf8)) }
    }
}
