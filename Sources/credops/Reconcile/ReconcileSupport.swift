import CredOps
import Foundation
import Logging

/// Posting a Slack-compatible message (`{"text": ...}`) to a webhook; a failure is logged,
/// never fatal.
enum Webhook {
    static func post(url: String, text: String, logger: Logger) async {
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1, requestTimeout: .seconds(15)))
        defer { http.shutdown() }
        // Slack reads <...> as links and mentions (<!channel>): server text must not ping or phish.
        let escaped = text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        let body = (try? JSONSerialization.data(withJSONObject: ["text": escaped], options: [.sortedKeys])) ?? Data()
        do {
            let response = try await http.send(HTTPRequest(method: .post, url: url, headers: HTTPHeaders([("Content-Type", "application/json")]), body: body))
            if !(200..<300).contains(response.status) { logger.warning("the webhook answered \(response.status)") }
        } catch {
            logger.warning("the webhook could not be reached: \(error.message)")
        }
    }
}

/// Polls the modification times and sizes of every file under `roots` every 2 seconds and
/// calls `changed` when they differ from the last look (a git-sync swap included).
struct FileWatch: Sendable {
    let roots: [String]

    func run(_ changed: @escaping @Sendable () -> Void) async {
        var last = snapshot()
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(2))
            let now = snapshot()
            if now != last {
                last = now
                changed()
            }
        }
    }

    /// Entries looked at per snapshot at most: a mistaken root (a home directory) costs a
    /// bounded walk every two seconds, not a full one.
    static let maxEntries = 20_000

    func snapshot() -> [String: [Double]] {
        var seen: [String: [Double]] = [:]
        let keys: [URLResourceKey] = [.contentModificationDateKey, .fileSizeKey]
        for root in roots {
            let url = URL(fileURLWithPath: root)
            // Hidden entries (.git, .credops) are skipped while walking, not after.
            let urls: AnySequence<URL>
            if let walker = FileManager.default.enumerator(at: url, includingPropertiesForKeys: keys, options: [.skipsHiddenFiles]) {
                urls = AnySequence([url] + walker.lazy.compactMap { $0 as? URL })
            } else {
                urls = AnySequence([url])
            }
            for item in urls {
                if seen.count >= Self.maxEntries { return seen }
                guard let values = try? item.resourceValues(forKeys: Set(keys)) else { continue }
                seen[item.path] = [values.contentModificationDate?.timeIntervalSince1970 ?? 0, Double(values.fileSize ?? 0)]
            }
        }
        return seen
    }
}
