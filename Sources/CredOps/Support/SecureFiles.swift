import Foundation

/// Files credops writes (state, key, plans, reports, sandbox data): mode 0600 in directories of
/// mode 0700, whatever the umask, replaced atomically.
public enum SecureFiles {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Creates `directory` (and parents) with mode 0700 when missing.
    public static func ensureDirectory(_ directory: String) throws(Failure) {
        guard !directory.isEmpty, directory != "." else { return }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw Failure(description: "\(directory) exists and is not a directory") }
            return
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            chmod(directory, 0o700)
        } catch {
            throw Failure(description: "cannot create directory \(directory): \(error.localizedDescription)")
        }
    }

    /// Writes `data` to a temporary file beside `path` (mode 0600) and renames it over `path`.
    /// - Parameter exclusive: fail instead of replacing when `path` already exists.
    public static func writeAtomically(_ data: Data, to path: String, exclusive: Bool = false) throws(Failure) {
        let directory = (path as NSString).deletingLastPathComponent
        try ensureDirectory(directory)
        let temp = (directory.isEmpty ? "." : directory) + "/.\((path as NSString).lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(temp): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)
        let ok = data.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return fsync(fd) == 0
        }
        close(fd)
        guard ok else {
            unlink(temp)
            throw Failure(description: "cannot write \(path): \(String(cString: strerror(errno)))")
        }
        if exclusive {
            // link() fails when the target exists: no race between two creators.
            defer { unlink(temp) }
            guard link(temp, path) == 0 else { throw Failure(description: "\(path) already exists") }
        } else {
            guard rename(temp, path) == 0 else {
                unlink(temp)
                throw Failure(description: "cannot replace \(path): \(String(cString: strerror(errno)))")
            }
        }
    }

    /// Creates an empty file with mode 0600 if it does not exist (before a library opens it).
    public static func createPrivateFile(_ path: String) throws(Failure) {
        try ensureDirectory((path as NSString).deletingLastPathComponent)
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Failure(description: "cannot create \(path): \(String(cString: strerror(errno)))") }
        fchmod(fd, 0o600)
        close(fd)
    }

    /// Refuses a secret file others can read.
    public static func checkPrivate(_ path: String) throws(Failure) {
        var info = stat()
        guard stat(path, &info) == 0 else { return }
        if info.st_mode & 0o077 != 0 {
            throw Failure(description: "\(path) can be read by other users (mode \(String(info.st_mode & 0o777, radix: 8))); run chmod 600 \(path)")
        }
    }
}
