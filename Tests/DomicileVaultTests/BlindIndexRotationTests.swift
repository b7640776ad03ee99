import Crypto
import DomicileCore
@testable import DomicileVault
import Foundation
import Testing

@Suite("Blind-index key rotation")
struct BlindIndexRotationTests {
    /// Lookups answer from the old index until the new one is complete, then from the new one, on
    /// this node and a fresh one; customers written or changed during the rebuild are found; a
    /// rebuild cut short resumes on another node; the old digests are gone at the end.
    @Test(arguments: StoreBackend.allCases)
    func lookupsKeepAnsweringWhileTheIndexIsRebuilt(_ backend: StoreBackend) async throws {
        let store = try await backend.makeStore()
        let root = LocalKeyFileRootKey(key: SymmetricKey(size: .bits256))
        let vault = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        let acme = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(acme)
        func ingest(_ ids: [String], on node: Vault? = nil) async throws {
            let node = node ?? vault
            let report = try await node.ingest(ids.map(KeyRotationTests.element), workspace: try await node.workspace(acme)!,
                                               actor: .apiKey(id: "k"))
            #expect(report.refused.isEmpty)
        }
        func found(_ email: String, on node: Vault? = nil) async throws -> [String] {
            try await (node ?? vault).find(.email(email), workspace: acme).map(\.customerID.rawValue)
        }
        func expectEveryoneFound(_ ids: [String], on node: Vault? = nil, _ comment: Comment) async throws {
            for id in ids { #expect(try await found("\(id)@example.com", on: node) == [id], comment) }
        }
        let before = (0..<25).map { "before-\($0)" }
        try await ingest(before)
        let oldDigest = try await store.customer(CustomerID(trusted: "before-0"), workspace: acme)!.blindIndex["email"]
        #expect(oldDigest != nil)

        #expect(try await vault.rotateWorkspaceKey(acme, rebuildingBlindIndex: true) == 2)
        await #expect(throws: Failure.self, "a second index rotation waits for the first") {
            _ = try await vault.rotateWorkspaceKey(acme, rebuildingBlindIndex: true)
        }
        // Until every node has had time to learn of the new version, nothing is built.
        #expect(try await vault.stepBlindIndexRotation(acme, grace: .seconds(60), limit: 10) == .waiting)
        #expect(try await vault.stepBlindIndexRotation(acme, grace: .zero, limit: 10) == .page(.building, customers: 10))
        try await expectEveryoneFound(before, "lookups answer from the old index during the rebuild")

        // Written during the rebuild: a new customer, behind the rebuild's place and ahead of it,
        // and an old one whose address changes.
        try await ingest(["after-0", "before-00", "z-0"])
        _ = try await vault.ingest([.object(["type": .string("customer"), "customer_id": .string("before-1"),
                                             "attributes": .object(["email": .string("moved@example.com")])])],
                                   workspace: try await vault.workspace(acme)!, actor: .apiKey(id: "k"))
        #expect(try await found("moved@example.com") == ["before-1"])

        // Another node (no cached keys) takes over from the saved place.
        let other = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        var step = try await other.stepBlindIndexRotation(acme, grace: .zero, limit: 10)
        while case .page(.building, _) = step {
            step = try await other.stepBlindIndexRotation(acme, grace: .zero, limit: 10)
        }
        #expect(step == .switched(to: 2))
        let everyone = before.filter { $0 != "before-1" } + ["after-0", "before-00", "z-0"]
        for node in [vault, other, Vault(store: store, root: root, region: "local", cacheLifetime: .zero)] {
            try await expectEveryoneFound(everyone, on: node, "lookups answer from the new index")
            #expect(try await found("moved@example.com", on: node) == ["before-1"])
            #expect(try await found("before-1@example.com", on: node) == [], "the old address no longer finds anyone")
        }

        // The old digests go, once every node has had time to move its lookups.
        #expect(try await vault.stepBlindIndexRotation(acme, grace: .seconds(60), limit: 10) == .waiting)
        step = try await vault.stepBlindIndexRotation(acme, grace: .zero, limit: 10)
        while case .page(.draining, _) = step {
            step = try await vault.stepBlindIndexRotation(acme, grace: .zero, limit: 10)
        }
        #expect(step == .finished(drained: 1))
        #expect(try await vault.stepBlindIndexRotation(acme, grace: .zero, limit: 10) == .idle)
        #expect(try await store.customerIDs(attribute: AttributeName(trusted: "email"), digest: oldDigest!, workspace: acme) == [],
                "an old digest is still in the store's index")
        for id in everyone + ["before-1"] {
            let row = try #require(try await store.customer(CustomerID(trusted: id), workspace: acme))
            #expect(row.blindIndex.keys.sorted() == ["email#2"], "\(id)")
        }
        try await expectEveryoneFound(everyone, "lookups still answer once the old index is gone")
        #expect(try await vault.blindIndexStatus(acme).map(\.version) == [2])

        // A later rotation of the workspace key keeps v2 while it keys the index.
        #expect(try await vault.rotateWorkspaceKey(acme) == 3)
        while try await vault.rewrapDataKeys(acme, after: nil, limit: 100).next != nil {}
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [])
        #expect(try await store.workspaceKeys(acme).map(\.version) == [1, 2, 3])
        let audit = try await store.auditEntries(workspace: acme, filter: AuditFilter(limit: 1_000)).flatMap(\.draft.attributes)
        #expect(audit.contains("blind_index:v2:active") && audit.contains("blind_index:v1:drained"))
    }

    @Test func entryNamesOfDifferentVersionsNeverMeet() {
        let email = AttributeName(trusted: "email")
        #expect(BlindIndexVersions.entryName(email, version: 1).rawValue == "email")
        #expect(BlindIndexVersions.entryName(email, version: 12).rawValue == "email#12")
        #expect(BlindIndexVersions.parse(entryName: "email#12").attribute == "email")
        #expect(BlindIndexVersions.parse(entryName: "email#12").version == 12)
        #expect(BlindIndexVersions.parse(entryName: "email").version == 1)
        var entries: [String: [UInt8]] = ["email": [1], "email#3": [2], "mobile": [3], "email_2": [4]]
        BlindIndexVersions.remove(email, from: &entries)
        #expect(entries.keys.sorted() == ["email_2", "mobile"])
    }
}
