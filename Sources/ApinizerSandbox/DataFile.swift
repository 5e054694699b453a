import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The sandbox's JSON data file: the whole state in the seed format, passwords included.
///
/// Written atomically (a temporary file in the same directory, then a rename over the old one)
/// with mode 0600 whatever the umask; a missing directory is created with mode 0700.
struct DataFile: Sendable {
    let path: String

    /// The saved state, or nil when the file does not exist yet.
    ///
    /// - Throws: `SandboxError` (`.dataFile`) when it exists but cannot be read or parsed.
    func load() throws(SandboxError) -> SandboxSeed? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw SandboxError(.dataFile, "\(path): cannot read the sandbox data file: \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(SandboxSeed.self, from: data)
        } catch let error as DecodingError {
            throw SandboxError(.dataFile, "\(path): the sandbox data file is damaged: \(SandboxSeed.describe(error))")
        } catch {
            throw SandboxError(.dataFile, "\(path): the sandbox data file is damaged: \(error)")
        }
    }

    /// Replaces the file's content with `data`, atomically, mode 0600.
    ///
    /// - Throws: `SandboxError` (`.dataFile`) naming the path and the system error.
    func write(_ data: Data) throws(SandboxError) {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        if !FileManager.default.fileExists(atPath: directory) {
            do {
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                        attributes: [.posixPermissions: 0o700])
            } catch {
                throw SandboxError(.dataFile, "\(directory): cannot create the directory: \(error.localizedDescription)")
            }
        }
        let temporary = "\(directory)/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: .min ... .max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw failure("cannot create \(temporary)") }
        var ok = fchmod(fd, 0o600) == 0
        if ok {
            ok = data.withUnsafeBytes { raw -> Bool in
                var offset = 0
                while offset < raw.count {
                    let written = posixWrite(fd, raw.baseAddress! + offset, raw.count - offset)
                    if written < 0 {
                        if errno == EINTR { continue }
                        return false
                    }
                    offset += written
                }
                return true
            }
        }
        if ok { ok = fsync(fd) == 0 }
        let error = ok ? nil : failure("cannot write \(temporary)")
        close(fd)
        if let error {
            unlink(temporary)
            throw error
        }
        guard rename(temporary, path) == 0 else {
            let error = failure("cannot rename \(temporary) to \(path)")
            unlink(temporary)
            throw error
        }
    }

    private func failure(_ what: String) -> SandboxError {
        SandboxError(.dataFile, "\(what): \(String(cString: strerror(errno)))")
    }
}

/// `write(2)`, named apart from the method above.
private func posixWrite(_ fd: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(fd, buffer, count)
}
