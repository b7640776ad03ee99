import DomicileCore
import GRDB
import Synchronization

/// The blind index in two levels: entries of bulk imports go to a small table
/// (`blind_index_recent`) first, and are moved into the main one (`blind_index`) in key order once
/// `limit` of them have gathered.
///
/// Why: an entry's key starts with an HMAC digest, so every insert lands on a random leaf of the
/// index. Once the index has more leaves than a group commit has entries, nearly every entry
/// dirties a page of its own, and each dirty page is a 4 KiB WAL frame at commit and a random
/// write at checkpoint. Measured during a bulk import: with the index written the writer spent
/// 81 µs per customer in the group commit, without it 38 µs. The recent level stays small, so a
/// bulk group's thousands of entries share its pages; a merge then writes each main leaf once
/// for all the entries it receives.
///
/// Where it does not pay, entries go straight to the main index:
/// - batches of fewer than `minimumBatch` customers (single upserts): a group commit of a few
///   dozen entries dirties as many pages in either level, and the merge would write them again;
/// - once the main index holds `mainLimit` entries: a merge writes every leaf it touches in one
///   transaction, and the larger the main index the more leaves a merge touches, so each merge
///   stalls the writer longer. Measured on one bulk import of 1,220,000 customers (100 a request,
///   64 connections, four 30 s runs): merges took 60–250 ms up to 700,000 main entries,
///   200–400 ms up to 1,400,000 and 400–650 ms up to 2,500,000, while bulk ran at 12,700, 10,500,
///   9,200 and 8,400 customers/s. On another import, with the levels stopped at 1,000,000
///   entries, bulk past that point ran at 5,400/s (30 s).
///
/// An entry lives in exactly one level. Lookups read both in one statement (one snapshot);
/// deletions by whole key try the recent level, then the main one. The merge runs inside a
/// group commit's transaction, so a crash leaves an entry in one level or the other.
final class BlindIndexLevels: Sendable {
    /// Measured on bulk imports of 100-customer requests (fresh database, a 12 s run and one
    /// after it, customers/s): one level 10,700–10,800 and 7,700–8,100; 16,000: 13,000 and 8,900;
    /// 32,000: 11,800–15,100 and 11,100–11,300; 64,000: 14,100 and 11,700; 100,000: 13,500 and 11,800.
    static let defaultLimit = 64_000
    static let defaultMainLimit = 2_000_000
    static let defaultMinimumBatch = 16

    let limit: Int
    let mainLimit: Int
    let minimumBatch: Int
    /// Entries added to the recent level since the last merge, and entries in the main level (up
    /// to `mainLimit`). Both are read from the tables by the first batch large enough to need
    /// them, on the writer, so that opening the store (every CLI command does) scans nothing.
    /// They only decide where entries go and when to merge, so a count thrown off by deletions
    /// or a rolled-back group moves those decisions a little, nothing more.
    private let recent = Atomic(0)
    private let main = Atomic(0)
    private let counted = Atomic(false)

    init(limit: Int = defaultLimit, mainLimit: Int = defaultMainLimit, minimumBatch: Int = defaultMinimumBatch) {
        self.limit = limit
        self.mainLimit = mainLimit
        self.minimumBatch = minimumBatch
    }

    /// How one batch of `customers` writes its entries: to the recent level if the batch is
    /// large enough and the main level small enough. Runs on the writer, inside the transaction.
    func writer(batchOf customers: Int, _ db: Database) throws -> Writer {
        guard customers >= minimumBatch else { return Writer(levels: self, recentLevel: false) }
        if !counted.load(ordering: .relaxed) {
            recent.store(try Int.fetchOne(db, sql: "SELECT count(*) FROM blind_index_recent") ?? 0, ordering: .relaxed)
            main.store(try Int.fetchOne(db, sql: "SELECT count(*) FROM (SELECT 1 FROM blind_index LIMIT ?)",
                                        arguments: [mainLimit]) ?? 0, ordering: .relaxed)
            counted.store(true, ordering: .relaxed)
        }
        return Writer(levels: self, recentLevel: main.load(ordering: .relaxed) < mainLimit)
    }

    /// The blind-index writes of one batch.
    struct Writer {
        let levels: BlindIndexLevels
        let recentLevel: Bool

        /// Brings the index from `current`'s digests to `customer`'s: removes the entries whose
        /// digest changed or went away, adds the new ones (to the recent level if `recentLevel`).
        func write(_ customer: StoredCustomer, replacing current: StoredCustomer?, _ db: Database) throws {
            let ws = customer.workspaceID.rawValue, id = customer.customerID.rawValue
            let old = current?.blindIndex ?? [:]
            for (attribute, digest) in old where customer.blindIndex[attribute] != digest {
                try BlindIndexLevels.deleteEntry(ws, attribute, digest, id, db)
            }
            let sql = recentLevel
                ? "INSERT OR IGNORE INTO blind_index_recent (workspace_id, attribute, digest, customer_id) VALUES (?, ?, ?, ?)"
                : "INSERT OR IGNORE INTO blind_index (workspace_id, attribute, digest, customer_id) VALUES (?, ?, ?, ?)"
            var added = 0
            for (attribute, digest) in customer.blindIndex where old[attribute] != digest {
                try BlindIndexLevels.entry(sql, ws, attribute, digest, id, db)
                added += db.changesCount
            }
            guard added > 0 else { return }
            if recentLevel { levels.recent.add(added, ordering: .relaxed) } else { levels.main.add(added, ordering: .relaxed) }
        }
    }

    /// Removes every entry of the customer, from the digests its row lists.
    static func delete(_ customer: StoredCustomer, _ db: Database) throws {
        let ws = customer.workspaceID.rawValue, id = customer.customerID.rawValue
        for (attribute, digest) in customer.blindIndex {
            try deleteEntry(ws, attribute, digest, id, db)
        }
    }

    /// Moves the recent level into the main one when it holds `limit` entries. Inside the
    /// caller's transaction: both statements commit together or not at all.
    func mergeIfFull(_ db: Database) throws {
        guard recent.load(ordering: .relaxed) >= limit else { return }
        try db.execute(sql: """
            INSERT OR IGNORE INTO blind_index (workspace_id, attribute, digest, customer_id)
                SELECT workspace_id, attribute, digest, customer_id FROM blind_index_recent
                ORDER BY workspace_id, attribute, digest, customer_id
            """)
        main.add(db.changesCount, ordering: .relaxed)
        try db.execute(sql: "DELETE FROM blind_index_recent")
        recent.store(0, ordering: .relaxed)
    }

    private static func deleteEntry(_ workspace: String, _ attribute: String, _ digest: [UInt8], _ customer: String,
                                    _ db: Database) throws {
        try entry("DELETE FROM blind_index_recent WHERE workspace_id = ? AND attribute = ? AND digest = ? AND customer_id = ?",
                  workspace, attribute, digest, customer, db)
        if db.changesCount == 0 {
            try entry("DELETE FROM blind_index WHERE workspace_id = ? AND attribute = ? AND digest = ? AND customer_id = ?",
                      workspace, attribute, digest, customer, db)
        }
    }

    private static func entry(_ sql: String, _ workspace: String, _ attribute: String, _ digest: [UInt8], _ customer: String,
                              _ db: Database) throws {
        var statement = try RawStatement(db, sql)
        try statement.bind(workspace, attribute, digest, customer)
        try statement.run()
    }
}
