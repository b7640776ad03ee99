import DomicileCore
@testable import DomicileSQLite
import Foundation
import GRDB
import Testing

/// The SQLite store's two-level blind index: entries move from the recent level to the main
/// one, and lookups, changes and erasure see them wherever they are.
@Suite("Blind index levels")
struct BlindIndexLevelsTests {
    let workspace = WorkspaceID(trusted: "acme")
    let email = AttributeName(trusted: "email")

    /// Merges at 4 entries; every batch uses the recent level unless `minimumBatch` says otherwise.
    func store(path: String = temporaryFolder().appendingPathComponent("domicile.sqlite").path,
               mainLimit: Int = 1_000, minimumBatch: Int = 1) async throws -> SQLiteVaultStore {
        let store = try SQLiteVaultStore(path: path, logger: .init(label: "test"),
                                         indexLevels: BlindIndexLevels(limit: 4, mainLimit: mainLimit, minimumBatch: minimumBatch))
        if try await store.workspace(workspace) == nil {
            try await store.createWorkspace(
                WorkspaceRecord(id: workspace, region: "local"),
                key: WorkspaceKeyRecord(workspaceID: workspace, version: 1, wrappedKey: [1]),
                apiKey: APIKeyRecord(workspaceID: workspace, keyID: "k1", secretHash: [9]))
        }
        return store
    }

    func row(_ id: String, revision: Int64 = 1, email digest: UInt8) -> StoredCustomer {
        StoredCustomer(workspaceID: workspace, customerID: CustomerID(trusted: id), dataKey: [7], attributes: ["email": [1]],
                       blindIndex: ["email": [digest]], createdAt: Date(), updatedAt: Date(), revision: revision)
    }

    func put(_ rows: [StoredCustomer], _ store: SQLiteVaultStore) async throws {
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: rows.map { row in
            CustomerMutation(customerID: row.customerID) { _ in .write(row) }
        }))
    }

    func levels(_ store: SQLiteVaultStore) throws -> (main: Int, recent: Int) {
        try store.pool.read { db in
            (try Int.fetchOne(db, sql: "SELECT count(*) FROM blind_index") ?? -1,
             try Int.fetchOne(db, sql: "SELECT count(*) FROM blind_index_recent") ?? -1)
        }
    }

    func found(_ digest: UInt8, _ store: SQLiteVaultStore) async throws -> [String] {
        try await store.customerIDs(attribute: email, digest: [digest], workspace: workspace).map(\.rawValue)
    }

    @Test func entriesAreFoundBeforeAndAfterTheMerge() async throws {
        let store = try await store()
        try await put([row("c-1", email: 0xA1), row("c-2", email: 0xA2), row("c-3", email: 0xA1)], store)
        #expect(try levels(store) == (main: 0, recent: 3))
        #expect(try await found(0xA1, store) == ["c-1", "c-3"])
        // The fourth entry reaches the limit: the group that adds it also merges.
        try await put([row("c-4", email: 0xA1)], store)
        #expect(try levels(store) == (main: 4, recent: 0))
        try await put([row("c-5", email: 0xA1)], store)
        #expect(try levels(store) == (main: 4, recent: 1))
        // One customer in the main level, one in the recent one, under the same digest.
        #expect(try await found(0xA1, store) == ["c-1", "c-3", "c-4", "c-5"])
        #expect(try await found(0xA2, store) == ["c-2"])
    }

    @Test func aChangedDigestLeavesNoEntryBehindInEitherLevel() async throws {
        let store = try await store()
        try await put((1...4).map { row("c-\($0)", email: 0xA1) }, store)
        #expect(try levels(store) == (main: 4, recent: 0))
        try await put([row("c-5", email: 0xB1)], store)
        // c-1's entry is in the main level, c-5's in the recent one.
        try await put([row("c-1", revision: 2, email: 0xC1), row("c-5", revision: 2, email: 0xC1)], store)
        #expect(try await found(0xA1, store) == ["c-2", "c-3", "c-4"])
        #expect(try await found(0xB1, store).isEmpty)
        #expect(try await found(0xC1, store) == ["c-1", "c-5"])
        #expect(try levels(store).main + levels(store).recent == 5)
    }

    @Test func erasureRemovesTheEntriesOfBothLevels() async throws {
        let store = try await store()
        try await put((1...4).map { row("c-\($0)", email: 0xA1) }, store)
        try await put([row("c-5", email: 0xA1)], store)
        #expect(try levels(store) == (main: 4, recent: 1))
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: ["c-1", "c-5"].map { id in
            CustomerMutation(customerID: CustomerID(trusted: id)) { _ in .erase(tombstone: Array(id.utf8)) }
        }))
        #expect(try await found(0xA1, store) == ["c-2", "c-3", "c-4"])
        #expect(try levels(store) == (main: 3, recent: 0))
    }

    /// Small batches (single upserts) would dirty as many pages in either level, and a merge
    /// would write them again: they go to the main level.
    @Test func smallBatchesWriteTheMainLevel() async throws {
        let store = try await store(minimumBatch: 3)
        try await put([row("c-1", email: 0xA1), row("c-2", email: 0xA1)], store)
        #expect(try levels(store) == (main: 2, recent: 0))
        try await put([row("c-3", email: 0xA1), row("c-4", email: 0xA1), row("c-5", email: 0xA1)], store)
        #expect(try levels(store) == (main: 2, recent: 3))
        #expect(try await found(0xA1, store) == ["c-1", "c-2", "c-3", "c-4", "c-5"])
    }

    /// Once the main level is large a merge saves nothing: entries go straight to it, and what
    /// the recent level holds stays found.
    @Test func aLargeMainLevelTakesEntriesDirectly() async throws {
        let store = try await store(mainLimit: 4)
        try await put([row("c-1", email: 0xA1), row("c-2", email: 0xA1), row("c-3", email: 0xA1)], store)
        try await put([row("c-4", email: 0xA1), row("c-5", email: 0xA1)], store)
        #expect(try levels(store) == (main: 5, recent: 0))
        try await put([row("c-6", email: 0xA1)], store)
        #expect(try levels(store) == (main: 6, recent: 0))
        #expect(try await found(0xA1, store).count == 6)
    }

    /// After a restart the store counts what the recent level already holds.
    @Test func aRestartedStoreCountsTheRecentLevel() async throws {
        let path = temporaryFolder().appendingPathComponent("domicile.sqlite").path
        do {
            let first = try await store(path: path)
            try await put([row("c-1", email: 0xA1), row("c-2", email: 0xA1), row("c-3", email: 0xA1)], first)
            #expect(try levels(first) == (main: 0, recent: 3))
        }
        let second = try await store(path: path)
        try await put([row("c-4", email: 0xA1)], second)
        #expect(try levels(second) == (main: 4, recent: 0))
        #expect(try await found(0xA1, second) == ["c-1", "c-2", "c-3", "c-4"])
    }
}
