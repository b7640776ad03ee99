import DomicileSQLite
import Foundation
import Testing

@Suite("SQLite durability settings")
struct SQLiteDurabilityTests {
    /// GRDB turns its writer to `synchronous = NORMAL` when it enables WAL; the store must set
    /// FULL back, or a commit is acknowledged before the WAL reaches the disk.
    @Test func theWriterSyncsEveryCommit() throws {
        let store = try SQLiteVaultStore(path: temporaryFolder().appendingPathComponent("domicile.sqlite").path)
        #expect(try store.writerSynchronousMode() == 2)
    }
}
