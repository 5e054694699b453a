import CSQLite
import CredOps
import Foundation

/// A thin wrapper over one SQLite connection.
///
/// Invariant: used only from its owner's `BlockingExecutor` thread, one call at a time, which is
/// what makes the `@unchecked Sendable` sound.
final class SQLiteDatabase: @unchecked Sendable {
    struct Failure: Error, CustomStringConvertible {
        var description: String
    }

    private let handle: OpaquePointer
    let path: String
    private var statements: [String: OpaquePointer] = [:]

    init(path: String) throws(Failure) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        guard sqlite3_open_v2(path, &db, flags, nil) == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            if let db { sqlite3_close_v2(db) }
            throw Failure(description: "cannot open state database \(path): \(message)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
    }

    deinit {
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(handle)
    }

    func execute(_ sql: String) throws(Failure) {
        var error: UnsafeMutablePointer<CChar>?
        guard sqlite3_exec(handle, sql, nil, nil, &error) == SQLITE_OK else {
            let message = error.map { String(cString: $0) } ?? lastError
            sqlite3_free(error)
            throw Failure(description: "state database \(path): \(message)")
        }
    }

    var lastError: String { String(cString: sqlite3_errmsg(handle)) }

    /// Runs `body` in one transaction (BEGIN IMMEDIATE: the write lock is taken up front, so two
    /// processes never deadlock upgrading a read).
    func transaction<T>(_ body: () throws -> T) throws -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs a statement with bound values; returns the rows (each a list of column values).
    @discardableResult
    func query(_ sql: String, _ values: [SQLiteValue] = []) throws(Failure) -> [[SQLiteValue]] {
        try query(sql, values) { $0 }
    }

    /// Runs `sql` and makes each row into a `T` as it is read, so that a large result is not
    /// also held as rows of column values (a third of a state read's peak at 10,000 records).
    func query<T>(_ sql: String, _ values: [SQLiteValue] = [], row transform: ([SQLiteValue]) -> T) throws(Failure) -> [T] {
        let statement = try prepared(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (i, value) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, index)
            case .integer(let n): rc = sqlite3_bind_int64(statement, index, n)
            case .text(let s):
                // With the byte count, not -1: a NUL inside the text must not end it there
                // ("svc\0evil" stored as "svc" would name another credential).
                let bytes = Array(s.utf8) + [0]
                rc = bytes.withUnsafeBufferPointer { buffer in
                    buffer.withMemoryRebound(to: CChar.self) {
                        sqlite3_bind_text(statement, index, $0.baseAddress, Int32(bytes.count - 1), Self.transient)
                    }
                }
            }
            guard rc == SQLITE_OK else { throw Failure(description: "state database \(path): \(lastError)") }
        }
        var rows: [T] = []
        let columns = sqlite3_column_count(statement)
        var row: [SQLiteValue] = []
        row.reserveCapacity(Int(columns))
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { break }
            guard rc == SQLITE_ROW else { throw Failure(description: "state database \(path): \(lastError)") }
            row.removeAll(keepingCapacity: true)
            for column in 0..<columns {
                switch sqlite3_column_type(statement, column) {
                case SQLITE_NULL: row.append(.null)
                case SQLITE_INTEGER: row.append(.integer(sqlite3_column_int64(statement, column)))
                default:
                    // By length, for the same reason as binding.
                    let count = Int(sqlite3_column_bytes(statement, column))
                    let text = sqlite3_column_text(statement, column).map {
                        String(decoding: UnsafeBufferPointer(start: $0, count: count), as: UTF8.self)
                    } ?? ""
                    row.append(.text(text))
                }
            }
            rows.append(transform(row))
        }
        return rows
    }

    private func prepared(_ sql: String) throws(Failure) -> OpaquePointer {
        if let statement = statements[sql] { return statement }
        var statement: OpaquePointer?
        guard sqlite3_prepare_v2(handle, sql, -1, &statement, nil) == SQLITE_OK, let statement else {
            throw Failure(description: "state database \(path): \(lastError)")
        }
        statements[sql] = statement
        return statement
    }

    /// SQLITE_TRANSIENT: SQLite copies bound text before `bind` returns.
    private static let transient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)
}

/// A column or parameter value.
enum SQLiteValue: Sendable, Equatable {
    case null
    case integer(Int64)
    case text(String)

    var text: String? {
        if case .text(let s) = self { return s }
        return nil
    }

    var integer: Int64? {
        if case .integer(let n) = self { return n }
        return nil
    }

    init(_ text: String?) { self = text.map(SQLiteValue.text) ?? .null }
}
