import GRDB
import GRDBSQLite

/// One use of a GRDB cached statement through SQLite's C API: bind, step, read columns.
///
/// For the statements every request runs: a customer's row, its blind-index entries and the
/// audit chain. `execute(arguments:)` and `Row` box each argument and column in an existential,
/// convert it to a `DatabaseValue` and copy blobs through `Data`; for a masked read that was
/// 160,000 of its 730,000 instructions (callgrind). GRDB documents its raw pointers
/// (`Statement.sqliteStatement`, `Database.sqliteConnection`) for this.
///
/// Arguments are bound in order with `bind(…)`; the statement is reset when this value ends, so it
/// never holds a read snapshot or a half-stepped write. Text and blobs are copied by SQLite
/// (`SQLITE_TRANSIENT`).
struct RawStatement: ~Copyable {
    private let statement: SQLiteStatement
    private let connection: SQLiteConnection?
    private let sql: String
    private var position: CInt = 0

    init(_ db: Database, _ sql: String) throws {
        let cached = try db.cachedStatement(sql: sql)
        statement = cached.sqliteStatement
        connection = db.sqliteConnection
        self.sql = sql
        sqlite3_reset(statement)
    }

    deinit { sqlite3_reset(statement) }

    /// Binds `values` to the next parameters, in order.
    mutating func bind<each Value: RawBindable>(_ values: repeat each Value) throws {
        for value in repeat each values {
            position += 1
            try check(value.bind(to: statement, at: position))
        }
    }

    /// Steps once: true when a row is available to the column accessors, false when done.
    func step() throws -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let code: throw error(code)
        }
    }

    /// Runs a statement that returns no rows.
    func run() throws {
        _ = try step()
    }

    func blob(_ column: CInt) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let bytes = sqlite3_column_blob(statement, column) else { return [] }
        return [UInt8](UnsafeRawBufferPointer(start: bytes, count: count))
    }

    func int64(_ column: CInt) -> Int64 {
        sqlite3_column_int64(statement, column)
    }

    func isNull(_ column: CInt) -> Bool {
        sqlite3_column_type(statement, column) == SQLITE_NULL
    }

    private func check(_ code: CInt) throws {
        if code != SQLITE_OK { throw error(code) }
    }

    private func error(_ code: CInt) -> DatabaseError {
        // SQLite's messages name tables, columns and constraints, never bound values.
        DatabaseError(resultCode: ResultCode(rawValue: code),
                      message: connection.map { String(cString: sqlite3_errmsg($0)) }, sql: sql)
    }
}

/// A value `RawStatement` binds. Text and blobs are copied by SQLite (`SQLITE_TRANSIENT`).
protocol RawBindable {
    func bind(to statement: SQLiteStatement, at index: CInt) -> CInt
}

private let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)

extension String: RawBindable {
    func bind(to statement: SQLiteStatement, at index: CInt) -> CInt {
        var text = self
        return text.withUTF8 { utf8 in
            // A nil pointer would bind NULL, not an empty text.
            guard let base = utf8.baseAddress, !utf8.isEmpty else { return sqlite3_bind_text(statement, index, "", 0, transient) }
            return base.withMemoryRebound(to: CChar.self, capacity: utf8.count) {
                sqlite3_bind_text(statement, index, $0, CInt(utf8.count), transient)
            }
        }
    }
}

extension Array: RawBindable where Element == UInt8 {
    func bind(to statement: SQLiteStatement, at index: CInt) -> CInt {
        withUnsafeBytes { bytes in
            // A nil pointer would bind NULL, not an empty blob.
            bytes.isEmpty ? sqlite3_bind_zeroblob(statement, index, 0)
                : sqlite3_bind_blob(statement, index, bytes.baseAddress, CInt(bytes.count), transient)
        }
    }
}

extension Int64: RawBindable {
    func bind(to statement: SQLiteStatement, at index: CInt) -> CInt { sqlite3_bind_int64(statement, index, self) }
}

extension Bool: RawBindable {
    func bind(to statement: SQLiteStatement, at index: CInt) -> CInt { sqlite3_bind_int64(statement, index, self ? 1 : 0) }
}

extension Optional: RawBindable where Wrapped: RawBindable {
    func bind(to statement: SQLiteStatement, at index: CInt) -> CInt {
        map { $0.bind(to: statement, at: index) } ?? sqlite3_bind_null(statement, index)
    }
}
