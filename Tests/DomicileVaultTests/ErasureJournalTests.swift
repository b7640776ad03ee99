import Crypto
import DomicileCore
import DomicileVault
import Foundation
import Testing

@Suite("Erasure journal")
struct ErasureJournalTests {
    static func vault(journal: ErasureJournal, store: any VaultStore, root: LocalKeyFileRootKey) -> Vault {
        Vault(store: store, root: root, region: "local", cacheLifetime: .zero, erasureJournal: journal)
    }

    /// The replay erases what the journal lists and the store still holds as it was before the
    /// erasure, and leaves a customer written again under the same id after it.
    @Test func aReplayErasesOnlyDataOlderThanItsErasure() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-journal-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let journal = ErasureJournal(path: folder.appendingPathComponent("erasures.jsonl").path)
        let root = LocalKeyFileRootKey(key: SymmetricKey(size: .bits256))
        let store = try await StoreBackend.sqlite.makeStore()
        let vault = Self.vault(journal: journal, store: store, root: root)
        let acme = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(acme)
        func ingest(_ id: String) async throws {
            let element = JSONValue.object(["type": .string("customer"), "customer_id": .string(id),
                                            "attributes": .object(["email": .string("\(id)@example.com")])])
            _ = try await vault.ingest([element], workspace: try await vault.workspace(acme)!, actor: .apiKey(id: "k"))
        }
        try await ingest("reborn")
        try await ingest("kept")
        try await vault.erase([CustomerID(trusted: "reborn")], workspace: acme, actor: .commandLine, requestID: nil)
        try await Task.sleep(for: .milliseconds(5))
        try await ingest("reborn")  // written again, after its erasure

        let entries = try ErasureJournal.read(path: journal.path)
        #expect(entries.count == 1 && entries[0].workspaceID == "acme" && entries[0].tombstone.count == 64)
        #expect(!(try String(contentsOfFile: journal.path, encoding: .utf8)).contains("reborn"))
        #expect(try await vault.replayErasures(entries) == 0)
        #expect(try await store.customer(CustomerID(trusted: "reborn"), workspace: acme) != nil)

        // As in a restored backup: data older than an erasure the journal records.
        let later = entries.map { ErasureJournal.Entry(workspaceID: $0.workspaceID, tombstone: $0.tombstone, erasedAt: Date().addingTimeInterval(1)) }
        #expect(try await vault.replayErasures(later) == 1)
        #expect(try await store.customer(CustomerID(trusted: "reborn"), workspace: acme) == nil)
        #expect(try await store.customer(CustomerID(trusted: "kept"), workspace: acme) != nil)
        // A line cut short by a crash is skipped.
        let handle = try #require(FileHandle(forWritingAtPath: journal.path))
        handle.seekToEndOfFile()
        handle.write(Data(#"{"workspace_id":"acme","tomb"#.utf8))
        try handle.close()
        #expect(try ErasureJournal.read(path: journal.path).count == 2)
    }
}
