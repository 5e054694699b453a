import Foundation

/// Files credops writes (state, key, plans, reports, sandbox data): mode 0600 in directories of
/// mode 0700, whatever the umask, replaced atomically.
public enum SecureFiles {
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// Creates `directory` (and parents) with mode 0700 when missing. Each directory is made by
    /// one `mkdir` with that mode (a umask only takes bits away), never made wider and narrowed
    /// after: a second thread or process making the same directory never sees it open.
    public static func ensureDirectory(_ directory: String) throws(Failure) {
        guard !directory.isEmpty, directory != "." else { return }
        var isDir: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDir) {
            guard isDir.boolValue else { throw Failure(description: "\(directory) exists and is not a directory") }
            return
        }
        let parent = (directory as NSString).deletingLastPathComponent
        if !parent.isEmpty && parent != directory { try ensureDirectory(parent) }
        if mkdir(directory, 0o700) == 0 {
            // Only ever adds the owner's bits a strict umask took away: never opens it to others.
            chmod(directory, 0o700)
        } else if errno != EEXIST {
            throw Failure(description: "cannot create directory \(directory): \(String(cString: strerror(errno)))")
        }
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else {
            throw Failure(description: "\(directory) exists and is not a directory")
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
        let ok = writeAll(data, to: fd) && fsync(fd) == 0
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

    /// Writes all of `data` to `fd` (retrying interrupted and short writes); false when a write
    /// fails or would block.
    public static func writeAll(_ data: Data, to fd: Int32) -> Bool {
        data.withUnsafeBytes { raw -> Bool in
            var offset = 0
            while offset < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { return false }
                offset += n
            }
            return true
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

    /// Why `readRegularFile` read nothing.
    public enum ReadFailure: Error, Sendable, Equatable {
        /// A directory, FIFO, socket or device: reading it could hang or never end.
        case notRegular
        /// Larger than the limit (nothing beyond the limit was read); its size in bytes.
        case tooLarge(Int)
        /// `errno` of the failed call.
        case system(Int32)
    }

    /// Reads a regular file through one descriptor, at most `limit` bytes: the size checked is
    /// the size of what is read (a symbolic link's target, not the link), and a FIFO or device
    /// is refused before any read (opened non-blocking, checked with `fstat`).
    ///
    /// - Parameter followSymlinks: false refuses a symbolic link as the last path component.
    /// - Returns: the bytes and the file's mode bits.
    public static func readRegularFile(_ path: String, limit: Int, followSymlinks: Bool = true)
        -> Result<(bytes: [UInt8], mode: mode_t), ReadFailure> {
        var flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC
        if !followSymlinks { flags |= O_NOFOLLOW }
        let fd = open(path, flags)
        guard fd >= 0 else { return .failure(errno == ELOOP && !followSymlinks ? .notRegular : .system(errno)) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failure(.system(errno)) }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failure(.notRegular) }
        guard info.st_size <= limit else { return .failure(.tooLarge(Int(info.st_size))) }
        // Sized by the file, one byte more to see it end (not by the limit: a buffer of the
        // limit, zeroed, cost 4 MiB of fresh pages for every file read); grown, up to one byte
        // past the limit, if the file grew since fstat.
        var bytes = [UInt8](repeating: 0, count: min(limit, Int(info.st_size)) + 1)
        var count = 0
        while true {
            if count == bytes.count {
                guard bytes.count <= limit else { break }
                bytes += [UInt8](repeating: 0, count: min(limit + 1, bytes.count * 2) - bytes.count)
            }
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { return .failure(.system(errno)) }
            if n == 0 { break }
            count += n
        }
        // The file may have grown since fstat: what was read is what counts.
        guard count <= limit else { return .failure(.tooLarge(count)) }
        bytes.removeSubrange(count...)
        return .success((bytes, info.st_mode))
    }

    /// The absolute path without symbolic links, `.` or `..`; nil when it does not exist.
    public static func canonicalPath(_ path: String) -> String? {
        guard let resolved = realpath(path, nil) else { return nil }
        defer { free(resolved) }
        return String(cString: resolved)
    }

    /// `path` made absolute against the working directory, `.` and `..` removed (links kept).
    public static func absolutePath(_ path: String) -> String {
        let absolute = path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        return (absolute as NSString).standardizingPath
    }

    /// True when canonical `path` lies inside canonical `directory` (not the directory itself).
    public static func isInside(_ path: String, directory: String) -> Bool {
        let dir = directory.hasSuffix("/") ? directory : directory + "/"
        return path.hasPrefix(dir) && path.count > dir.count
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
