import CredOps
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Leadership among processes on one machine sharing a SQLite state: an exclusive `flock` on a
/// file beside the database. The kernel releases it when the holder exits, however it exits.
final class FileLeadership: Leadership, @unchecked Sendable {
    private let path: String
    private let lock = NSLock()
    private var fd: Int32 = -1

    init(path: String) { self.path = path }

    func tryLead() async throws -> Bool {
        try lock.withLock {
            if fd >= 0 { return true }
            let opened = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
            guard opened >= 0 else { throw StateError.storage("cannot open the leader lock file \(path): \(String(cString: strerror(errno)))") }
            guard flock(opened, LOCK_EX | LOCK_NB) == 0 else {
                close(opened)
                return false
            }
            fd = opened
            return true
        }
    }

    /// A file lock cannot be taken away while its descriptor is open.
    func isStillLeading() async -> Bool { lock.withLock { fd >= 0 } }

    func release() async {
        lock.withLock {
            guard fd >= 0 else { return }
            _ = flock(fd, LOCK_UN)
            close(fd)
            fd = -1
        }
    }

    deinit { if fd >= 0 { close(fd) } }
}

extension SQLiteStateStore: LeaderElecting {
    public func leadership(name: String, checkTimeout: Duration) -> any Leadership {
        let safe = String(name.unicodeScalars.map { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") ? Character($0) : "_" })
        return FileLeadership(path: path + ".leader-" + safe)
    }
}
