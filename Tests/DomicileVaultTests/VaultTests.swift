import DomicileCore
import DomicileSQLite
import Foundation
import Testing
@testable import DomicileVault

@Suite("Vault: ingest and read")
struct VaultTests {
    @Test func upsertMergesAndNullRemoves() async throws {
        let f = try await VaultFixture.make()
        try await f.ingest(f.customer("c-1", ["email": .string("Jane@Example.com"), "first_name": .string("Jane"), "plan": .string("gold")]))
        let report = try await f.ingest(f.customer("c-1", ["mobile": .string("+971501234567"), "first_name": .null]))
        #expect(report.updated == 1 && report.created == 0)
        #expect(try await f.read("c-1") == [
            "email": .string("jane@example.com"), "mobile": .string("+971501234567"), "plan": .string("gold"),
        ])
    }

    @Test func readsAreMaskedByType() async throws {
        let f = try await VaultFixture.make()
        try await f.vault.defineAttribute(AttributeDefinition(name: AttributeName(trusted: "tier"), type: .text, pii: false),
                                          workspace: f.workspace.id)
        try await f.vault.defineAttribute(AttributeDefinition(name: AttributeName(trusted: "birthday"), type: .date),
                                          workspace: f.workspace.id)
        try await f.ingest(f.customer("c-1", [
            "email": .string("john@example.com"), "mobile": .string("+971501234567"), "first_name": .string("John"),
            "birthday": .string("1990-04-17"), "tier": .string("gold"), "score": .integer(7),
        ]))
        #expect(try await f.read("c-1", reveal: false) == [
            "email": .string("j***@e******.com"), "mobile": .string("+9715*****567"), "first_name": .string("J***"),
            "birthday": .string("1990-**-**"), "tier": .string("gold"), "score": .string("********"),
        ])
    }

    @Test func updateExistingOnlySkipsUnknownCustomers() async throws {
        let f = try await VaultFixture.make()
        let skipped = try await f.ingest(f.customer("c-1", ["email": .string("a@b.co")], updateExistingOnly: true))
        #expect(skipped.skipped == 1 && skipped.created == 0)
        #expect(try await f.read("c-1") == nil)
        try await f.ingest(f.customer("c-1", ["first_name": .string("A")]))
        let updated = try await f.ingest(f.customer("c-1", ["email": .string("a@b.co")], updateExistingOnly: true))
        #expect(updated.updated == 1)
        #expect(try await f.read("c-1")?["email"] == .string("a@b.co"))
    }

    @Test func thePIILimitCountsWhatTheCustomerAlreadyHas() async throws {
        let f = try await VaultFixture.make()
        var first: [String: JSONValue] = [:]
        for i in 0..<15 { first["a\(i)"] = .string("v") }
        try await f.ingest(f.customer("c-1", first))
        var second: [String: JSONValue] = [:]
        for i in 15..<21 { second["a\(i)"] = .string("v") }
        let report = try await f.ingest(f.customer("c-1", second))
        #expect(report.refused.map(\.kind) == [.tooManyAttributes])
        #expect(try await f.read("c-1")?.count == 15)
        // Removing some in the same update makes room.
        second["a0"] = .null
        second["a1"] = .null
        #expect(try await f.ingest(f.customer("c-1", second)).updated == 1)
        #expect(try await f.read("c-1")?.count == 19)
    }

    @Test func refusedElementsWriteNothingAndValidOnesAreStored() async throws {
        let f = try await VaultFixture.make()
        let report = try await f.ingest(
            f.customer("c-1", ["email": .string("ok@example.com")]),
            f.customer("c-2", ["email": .string("not-an-email"), "first_name": .string("X")]),
            f.customer("guest", ["email": .string("x@example.com")]),
            f.customer("c-3", ["mobile": .string("0501234567")]))
        #expect(report.created == 1)
        #expect(report.refused.map(\.element) == [1, 2, 3])
        #expect(report.refused.map(\.attribute) == ["email", "customer_id", "mobile"])
        #expect(try await f.read("c-2") == nil)
        #expect(try await f.read("c-3") == nil)
    }

    @Test func lookupsGoThroughTheBlindIndex() async throws {
        let f = try await VaultFixture.make()
        try await f.ingest(
            f.customer("c-1", ["email": .string("shared@example.com"), "mobile": .string("+971501234567")]),
            f.customer("c-2", ["email": .string("Shared@Example.com ")]),
            f.customer("c-3", ["email": .string("other@example.com")]))
        let shared = try await f.vault.find(.email("  SHARED@example.com"), workspace: f.workspace.id)
        #expect(shared.map(\.customerID.rawValue) == ["c-1", "c-2"])
        #expect(shared.first?.attributes["email"] == .string("s***@e******.com"))
        let byMobile = try await f.vault.find(.mobile("+971 50 123 4567"), workspace: f.workspace.id)
        #expect(byMobile.map(\.customerID.rawValue) == ["c-1"])
        // Changing or removing the value moves the index with it.
        try await f.ingest(f.customer("c-1", ["email": .string("new@example.com"), "mobile": .null]))
        #expect(try await f.vault.find(.email("shared@example.com"), workspace: f.workspace.id).map(\.customerID.rawValue) == ["c-2"])
        #expect(try await f.vault.find(.email("new@example.com"), workspace: f.workspace.id).map(\.customerID.rawValue) == ["c-1"])
        #expect(try await f.vault.find(.mobile("+971501234567"), workspace: f.workspace.id).isEmpty)
        await #expect(throws: Failure.self) { try await f.vault.find(.email("nope"), workspace: f.workspace.id) }
        await #expect(throws: Failure.self) {
            try await f.vault.find(.attribute(AttributeName(trusted: "first_name"), "Jane"), workspace: f.workspace.id)
        }
    }

    @Test func customAttributesCanBeIndexed() async throws {
        let f = try await VaultFixture.make()
        try await f.vault.defineAttribute(AttributeDefinition(name: AttributeName(trusted: "loyalty_no"), type: .text, indexed: true),
                                          workspace: f.workspace.id)
        try await f.ingest(f.customer("c-9", ["loyalty_no": .string("L-123")]))
        let found = try await f.vault.find(.attribute(AttributeName(trusted: "loyalty_no"), "L-123"), workspace: f.workspace.id)
        #expect(found.map(\.customerID.rawValue) == ["c-9"])
    }

    @Test func aValueCopiedToAnotherCustomerDoesNotDecrypt() async throws {
        let f = try await VaultFixture.make()
        try await f.ingest(f.customer("c-1", ["email": .string("a@example.com")]), f.customer("c-2", ["email": .string("b@example.com")]))
        let store = f.vault.store
        let one = try #require(try await store.customer(CustomerID(trusted: "c-1"), workspace: f.workspace.id))
        var two = try #require(try await store.customer(CustomerID(trusted: "c-2"), workspace: f.workspace.id))
        // An attacker with write access to storage swaps in c-1's ciphertext and data key.
        two.attributes["email"] = one.attributes["email"]
        two.dataKey = one.dataKey
        two.revision += 1
        let forged = two
        _ = try await store.commit(CommitBatch(workspaceID: f.workspace.id, mutations: [
            CustomerMutation(customerID: forged.customerID) { _ in .write(forged) },
        ]))
        await #expect(throws: KeyError.self) { try await f.read("c-2") }
        #expect(try await f.read("c-1")?["email"] == .string("a@example.com"))
    }

    @Test func workspaceKeyRotationKeepsOldCustomersReadable() async throws {
        let f = try await VaultFixture.make()
        try await f.ingest(f.customer("old", ["email": .string("old@example.com")]))
        #expect(try await f.vault.rotateWorkspaceKey(f.workspace.id) == 2)
        try await f.ingest(f.customer("new", ["email": .string("new@example.com")]))
        let newRow = try #require(try await f.vault.store.customer(CustomerID(trusted: "new"), workspace: f.workspace.id))
        #expect(try Envelope.workspaceKeyVersion(ofWrappedDataKey: newRow.dataKey) == 2)
        #expect(try await f.read("old")?["email"] == .string("old@example.com"))
        #expect(try await f.read("new")?["email"] == .string("new@example.com"))
        // The blind index key is stable across rotation.
        #expect(try await f.vault.find(.email("old@example.com"), workspace: f.workspace.id).count == 1)
        #expect(try await f.vault.find(.email("new@example.com"), workspace: f.workspace.id).count == 1)
    }

    @Test func concurrentUpsertsOfOneCustomerAllLand() async throws {
        let f = try await VaultFixture.make()
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<20 {
                group.addTask { try await f.ingest(f.customer("c-1", ["a\(i)": .string("v\(i)")])) }
            }
            try await group.waitForAll()
        }
        let attributes = try #require(try await f.read("c-1"))
        #expect(attributes.count == 20)
        #expect(attributes["a13"] == .string("v13"))
    }
}

@Suite("Vault: data API keys")
struct DataAPIKeyTests {
    @Test func onlyTheRightKeyForTheRightWorkspaceAuthenticates() async throws {
        let f = try await VaultFixture.make()
        #expect(try await f.vault.authenticate(workspace: "acme", key: f.apiKey.secret)?.id == f.workspace.id)
        #expect(try await f.vault.authenticate(workspace: "other", key: f.apiKey.secret) == nil)
        #expect(try await f.vault.authenticate(workspace: "acme", key: f.apiKey.secret + "x") == nil)
        #expect(try await f.vault.authenticate(workspace: "acme", key: "") == nil)
        #expect(try await f.vault.authenticate(workspace: "acme", key: "dk_0000000000000000_x") == nil)
    }

    @Test func rotationKeepsTheOldKeyForTheGracePeriodOnly() async throws {
        let f = try await VaultFixture.make()
        let withGrace = try await f.vault.rotateAPIKey(f.workspace.id, grace: .seconds(3600))
        #expect(try await f.vault.authenticate(workspace: "acme", key: f.apiKey.secret) != nil)
        #expect(try await f.vault.authenticate(workspace: "acme", key: withGrace.secret) != nil)
        let immediate = try await f.vault.rotateAPIKey(f.workspace.id, grace: .zero)
        #expect(try await f.vault.authenticate(workspace: "acme", key: f.apiKey.secret) == nil)
        #expect(try await f.vault.authenticate(workspace: "acme", key: withGrace.secret) == nil)
        #expect(try await f.vault.authenticate(workspace: "acme", key: immediate.secret) != nil)
    }

    @Test func revocationIsImmediate() async throws {
        let f = try await VaultFixture.make()
        let second = try await f.vault.rotateAPIKey(f.workspace.id, grace: .seconds(3600))
        #expect(try await f.vault.revokeAPIKeys(f.workspace.id, keyID: f.apiKey.keyID) == [f.apiKey.keyID])
        #expect(try await f.vault.authenticate(workspace: "acme", key: f.apiKey.secret) == nil)
        #expect(try await f.vault.authenticate(workspace: "acme", key: second.secret) != nil)
        try await f.vault.revokeAPIKeys(f.workspace.id)
        #expect(try await f.vault.authenticate(workspace: "acme", key: second.secret) == nil)
        await #expect(throws: StoreError.self) { try await f.vault.revokeAPIKeys(f.workspace.id, keyID: "ffffffffffffffff") }
    }

    @Test func keysHaveTheDocumentedShapeAndOnlyAHashIsStored() async throws {
        let f = try await VaultFixture.make()
        #expect(f.apiKey.secret.hasPrefix("dk_\(f.apiKey.keyID)_"))
        #expect(DataAPIKey.keyID(in: f.apiKey.secret) == f.apiKey.keyID)
        let stored = try #require(try await f.vault.store.apiKey(workspace: f.workspace.id, keyID: f.apiKey.keyID))
        #expect(stored.secretHash == DataAPIKey.hash(f.apiKey.secret))
        #expect(!"\(f.apiKey)".contains(f.apiKey.secret))
    }
}
