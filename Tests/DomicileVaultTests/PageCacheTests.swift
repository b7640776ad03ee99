@testable import DomicileSQLite
import Foundation
import GRDB
import GRDBSQLite
import Testing

/// The wrapper of SQLite's page cache (Sources/CSQLitePageCache) skips only truncations with
/// nothing to remove: B-tree balancing through the temporary page number, rolled-back growth and
/// regrowth leave the database intact and its pages' contents right.
@Suite("SQLite page cache wrapper")
struct PageCacheTests {
    /// A database with the writer's settings: 4 KiB pages, a 64 MiB cache; WAL unless told.
    func database(journal: String = "WAL") throws -> any DatabaseWriter {
        let path = temporaryFolder().appendingPathComponent("cache.sqlite").path
        let database: any DatabaseWriter = journal == "WAL" ? try DatabasePool(path: path) : try DatabaseQueue(path: path)
        try database.writeWithoutTransaction { db in
            try db.execute(sql: """
                PRAGMA cache_size = -65536;
                CREATE TABLE entries (key BLOB PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
                """)
        }
        return database
    }

    /// Inserts `count` rows under random keys, each value `size` bytes of `byte(i)`.
    func insert(_ count: Int, size: Int, byte: (Int) -> UInt8, _ db: Database, into expected: inout [Data: Data]) throws {
        for index in 0..<count {
            let key = randomKey(), value = Data(repeating: byte(index), count: size)
            try db.execute(sql: "INSERT INTO entries (key, value) VALUES (?, ?)", arguments: [key, value])
            expected[key] = value
        }
    }

    func randomKey() -> Data { Data((0..<16).map { _ in UInt8.random(in: 0...255) }) }

    func check(_ database: any DatabaseWriter, holds expected: [Data: Data]) throws {
        try database.read { db in
            #expect(try String.fetchAll(db, sql: "PRAGMA integrity_check") == ["ok"])
            var found: [Data: Data] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT key, value FROM entries") {
                found[row["key"]] = row["value"]
            }
            #expect(found.count == expected.count)
            #expect(found == expected)
        }
    }

    @Test("is installed before SQLite starts")
    func installed() {
        #expect(PageCache.isWrapped)
    }

    /// Drives one cache through the methods SQLite calls: a truncation is skipped only when no
    /// page at or above its limit can be in the cache.
    @Test("removes every page at or above a truncation's limit, including the temporary one")
    func truncation() throws {
        let methods = try #require(PageCache.methods)
        // A fetch without creation pins what it finds.
        func present(_ cache: OpaquePointer, _ key: UInt32) -> Bool {
            guard let page = methods.xFetch(cache, key, 0) else { return false }
            methods.xUnpin(cache, page, 0)
            return true
        }
        let temporary: UInt32 = 0x4000_0000 / 4096 + 1
        let cache = try #require(methods.xCreate(4096, 64, 1))
        defer { methods.xDestroy(cache) }
        methods.xCachesize(cache, 100)
        for key in UInt32(1)...10 {
            let page = try #require(methods.xFetch(cache, key, 2))
            methods.xUnpin(cache, page, 0)
        }
        // Balancing swaps pages 3 and 4 through the temporary number.
        let three = try #require(methods.xFetch(cache, 3, 0)), four = try #require(methods.xFetch(cache, 4, 0))
        methods.xRekey(cache, three, 3, temporary)
        methods.xRekey(cache, four, 4, 3)
        methods.xRekey(cache, three, temporary, 4)
        methods.xUnpin(cache, three, 0)
        methods.xUnpin(cache, four, 0)
        methods.xTruncate(cache, 11)
        #expect((UInt32(1)...10).allSatisfy { present(cache, $0) })
        #expect(!present(cache, temporary))

        // A page left at the temporary number is removed by the next truncation.
        let five = try #require(methods.xFetch(cache, 5, 0))
        methods.xRekey(cache, five, 5, temporary)
        methods.xUnpin(cache, five, 0)
        // (Not looked up before: finding it would raise the wrapper's bound past it.)
        methods.xTruncate(cache, 11)
        #expect(!present(cache, temporary))

        // A page beyond the limit (a transaction's growth) is removed; the pages below stay.
        let twenty = try #require(methods.xFetch(cache, 20, 2))
        methods.xUnpin(cache, twenty, 0)
        methods.xTruncate(cache, 15)
        #expect(!present(cache, 20))
        #expect(present(cache, 10))
        // Truncating below cached pages removes them.
        methods.xTruncate(cache, 8)
        #expect(!present(cache, 9) && !present(cache, 8) && present(cache, 7))
    }

    @Test("random inserts and deletes over many commits: truncations skipped, database intact")
    func balancing() throws {
        let pool = try database()
        let before = PageCache.counters
        var expected: [Data: Data] = [:]
        for round in 0..<60 {
            try pool.write { db in
                for _ in 0..<200 {
                    let key = randomKey(), value = Data(repeating: UInt8(round), count: Int.random(in: 20...400))
                    try db.execute(sql: "INSERT INTO entries (key, value) VALUES (?, ?)", arguments: [key, value])
                    expected[key] = value
                }
                // Deletions free pages that later splits reuse, out of order.
                for key in expected.keys.shuffled().prefix(60) {
                    try db.execute(sql: "DELETE FROM entries WHERE key = ?", arguments: [key])
                    expected[key] = nil
                }
            }
        }
        let after = PageCache.counters
        #expect(after.temporaryRekeys > before.temporaryRekeys, "no balancing went through the temporary page number")
        #expect(after.skipped > before.skipped, "no commit skipped its truncation")
        try check(pool, holds: expected)
    }

    /// With a rollback journal, the pages a rolled-back transaction appended stay in the cache
    /// after the rollback; only the truncation drops them. (Domicile's store uses WAL, where the
    /// rollback drops them one by one, but the wrapper serves every connection of the process.)
    @Test("growth rolled back is dropped from the cache: regrowth reads the new pages, not the old",
          arguments: ["WAL", "DELETE"])
    func rollback(journal: String) throws {
        struct Abort: Error {}
        let database = try database(journal: journal)
        var expected: [Data: Data] = [:]
        try database.write { db in try insert(2_000, size: 300, byte: { UInt8($0 % 251) }, db, into: &expected) }
        for round in 0..<3 {
            // The file grows by hundreds of pages inside the transaction, then it is rolled back:
            // those pages' numbers lie beyond the database again, and must not stay cached.
            #expect(throws: Abort.self) {
                try database.write { db in
                    for _ in 0..<3_000 {
                        try db.execute(sql: "INSERT INTO entries (key, value) VALUES (?, ?)",
                                       arguments: [randomKey(), Data(repeating: 0xEE, count: 350)])
                    }
                    throw Abort()
                }
            }
            try check(database, holds: expected)
            // The same page numbers are used again, for other rows.
            try database.write { db in try insert(1_500, size: 320, byte: { _ in UInt8(round + 1) }, db, into: &expected) }
            try check(database, holds: expected)
        }
    }

    @Test("a database shrunk by VACUUM, then grown again: the cache holds no page of the old end")
    func shrink() throws {
        let pool = try database()
        var expected: [Data: Data] = [:]
        try pool.write { db in try insert(6_000, size: 300, byte: { UInt8($0 % 251) }, db, into: &expected) }
        // Every page is read into the writer's cache, then most rows go and VACUUM shortens the file.
        try pool.writeWithoutTransaction { db in
            _ = try Int.fetchOne(db, sql: "SELECT count(*) FROM entries WHERE length(value) > 0")
            try db.inTransaction {
                for key in expected.keys.shuffled().prefix(5_000) {
                    try db.execute(sql: "DELETE FROM entries WHERE key = ?", arguments: [key])
                    expected[key] = nil
                }
                return .commit
            }
            try db.execute(sql: "VACUUM")
        }
        try check(pool, holds: expected)
        // Growing again reuses the page numbers of the old end.
        try pool.write { db in try insert(5_000, size: 310, byte: { _ in 0x5A }, db, into: &expected) }
        try check(pool, holds: expected)
    }
}
