import DomicileCore
import Foundation
import GRDB
import GRDBSQLite

extension SQLiteVaultStore {
    /// `pool.write`, with a failure for want of space reported as `StoreError.full`.
    func writeTransaction<T: Sendable>(_ work: @Sendable (Database) throws -> T) async throws -> T {
        try await pool.writeWithoutTransaction { db in
            do {
                var value: T?
                try db.inTransaction {
                    value = try work(db)
                    return .commit
                }
                return value!
            } catch {
                throw Self.storeError(error, db)
            }
        }
    }

    /// `StoreError.full` when a write failed because the disk (or the quota) is full; any other
    /// error as it is. SQLite reports a full disk as `SQLITE_FULL` when it appends to the WAL or
    /// grows the database, but as an I/O error when it grows the WAL's shared-memory index, so
    /// for an I/O error the connection's last system error decides. Called on the connection that
    /// failed, before anything else runs on it.
    static func storeError(_ error: any Error, _ db: Database) -> any Error {
        guard let error = error as? DatabaseError else { return error }
        if error.resultCode == .SQLITE_FULL { return StoreError.full }
        if error.resultCode == .SQLITE_IOERR, [ENOSPC, EDQUOT].contains(sqlite3_system_errno(db.sqliteConnection)) {
            return StoreError.full
        }
        return error
    }
}
