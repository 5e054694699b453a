import CredOps
import Foundation
import Logging

/// Posting a Slack-compatible message (`{"text": ...}`) to a webhook; a failure is logged,
/// never fatal.
enum Webhook {
    static func post(url: String, text: String, logger: Logger) async {
        let http = HTTPClient(configuration: HTTPClientConfiguration(concurrency: 1, requestTimeout: .seconds(15)))
        defer { http.shutdown() }
        let body = (try? JSONSerialization.data(withJSONObject: ["text": text], options: [.sortedKeys])) ?? Data()
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

    func snapshot() -> [String: [Double]] {
        var seen: [String: [Double]] = [:]
        let manager = FileManager.default
        for root in roots {
            var isDir: ObjCBool = false
            guard manager.fileExists(atPath: root, isDirectory: &isDir) else { continue }
            let paths = isDir.boolValue ? (manager.enumerator(atPath: root)?.allObjects as? [String] ?? []).map { "\(root)/\($0)" } : [root]
            for path in paths where !path.split(separator: "/").contains(where: { $0.hasPrefix(".") && $0 != "." && $0 != ".." }) {
                guard let attributes = try? manager.attributesOfItem(atPath: path) else { continue }
                let modified = (attributes[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
                seen[path] = [modified, Double((attributes[.size] as? NSNumber)?.int64Value ?? 0)]
            }
        }
        return seen
    }
}
