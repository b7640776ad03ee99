import Crypto
import DomicileCore
@testable import DomicileVault
import Foundation
import Testing

@Suite("Retiring a workspace's first key version")
struct FirstVersionRetirementTests {
    /// A workspace made before secrets keys existed has everything of its own sealed with, or
    /// derived from, version 1. After a rotation with the blind index, everything moves off v1,
    /// v1 is deleted, and every secret, digest, link and signature still works on a fresh node.
    @Test(arguments: StoreBackend.allCases)
    func everythingMovesOffTheFirstVersionAndItGoes(_ backend: StoreBackend) async throws {
        let store = try await backend.makeStore()
        let root = LocalKeyFileRootKey(key: SymmetricKey(size: .bits256))
        let vault = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        let acme = WorkspaceID(trusted: "acme")
        // As an earlier version created it: no secrets record.
        try await store.createWorkspace(WorkspaceRecord(id: acme, region: "local", refuseErasedCustomerIDs: true),
                                        key: try await vault.keyring.newWorkspaceKey(for: acme, version: 1),
                                        apiKey: APIKeyRecord(workspaceID: acme, keyID: "k", secretHash: [1]))
        #expect(try await store.workspaceSecrets(acme) == nil)

        let eventsSecret = try await vault.configureEvents(acme, url: "https://api.twilio.com/events")
        let sendKey = try await vault.issueSendKey(acme)
        let admin = Actor.operator(id: "admin", role: .admin, viewPII: true)
        try await vault.setProvider(acme, channel: .sms, kind: "twilio", settings: ["account_sid": "AC1", "auth_token": "token-1"],
                                    actor: admin)
        let (person, password) = try await vault.createOperator(workspace: acme, email: "Ops@Example.com", role: .viewer, viewPII: false)
        let report = try await vault.ingest((0..<12).map { KeyRotationTests.element("c-\($0)") }, workspace: try await vault.workspace(acme)!,
                                            actor: .apiKey(id: "k"))
        #expect(report.refused.isEmpty)
        _ = try await vault.reveal(CustomerID(trusted: "c-1"), attributes: ["email"], reason: "ticket 4711", workspace: acme,
                                   actor: admin, requestID: nil)
        _ = try await vault.erase([CustomerID(trusted: "c-11")], workspace: acme, actor: admin, requestID: nil)
        let publicKey = try await vault.auditCheckpointPublicKey(workspace: acme)
        let checkpoint = try #require(try await vault.auditCheckpoint(workspace: acme))
        for sealed in [try await store.workspace(acme)!.sealedEventsSecret!, try await store.sendKeys(workspace: acme)[0].sealedSecret] {
            #expect(WorkspaceKeys.isSealedWithVersion(sealed), "the setup did not seal with v1")
        }

        // The rotation: a secrets key first, then v2 with the blind index built under it.
        #expect(try await vault.rotateWorkspaceKey(acme, rebuildingBlindIndex: true) == 2)
        #expect(try await store.workspaceSecrets(acme) != nil)
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [], "v1 still keys the blind index")
        while try await vault.rewrapDataKeys(acme, after: nil, limit: 100).next != nil {}
        var step = Vault.BlindIndexStep.idle
        repeat { step = try await vault.stepBlindIndexRotation(acme, grace: .zero, limit: 5) } while step != .idle
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [], "the first pass moves the secrets")
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [1])
        #expect(try await store.workspaceKeys(acme).map(\.version) == [2], "v1 is still in the store")
        let secretsVersion = try Envelope.workspaceKeyVersion(ofWrappedDataKey: try #require(try await store.workspaceSecrets(acme)).wrappedKey)
        #expect(secretsVersion == 2)

        // A fresh node, knowing nothing of v1.
        let node = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        let keys = try await node.keyring.keys(for: acme)
        #expect(keys.versions.keys.sorted() == [2])
        #expect(try await node.eventsSecret(of: try await node.workspace(acme)!) == Array(eventsSecret.utf8))
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let signature = Vault.sendSignature(secret: sendKey.secret, timestamp: timestamp, method: "POST", path: "/v1/x", body: [])
        #expect(try await node.verifySendRequest(workspace: acme, keyID: sendKey.keyID, timestamp: timestamp, signature: signature,
                                                 method: "POST", path: "/v1/x", body: []))
        #expect(try await node.provider(acme, channel: .sms)?.settings["auth_token"] == "token-1")
        #expect(try await node.operatorEmail(try #require(try await store.operatorRecord(id: person.id))) == "ops@example.com")
        _ = try await node.login(workspace: "acme", email: "ops@example.com", password: password, client: nil)
        let audit = try await node.auditLog(workspace: acme, filter: AuditFilter(limit: 1_000), actor: admin)
        #expect(audit.contains { $0.reason == "ticket 4711" }, "the reveal's reason no longer opens")
        let verification = try await node.verifyAudit(workspace: acme, checkpoints: [checkpoint])
        guard case .intact = verification else { Issue.record("\(verification)"); return }
        #expect(try await node.auditCheckpointPublicKey(workspace: acme) == publicKey, "the checkpoint key changed")
        #expect(try await node.find(.email("c-3@example.com"), workspace: acme).map(\.customerID.rawValue) == ["c-3"])
        let again = try await node.ingest([KeyRotationTests.element("c-11")], workspace: try await node.workspace(acme)!,
                                          actor: .apiKey(id: "k"))
        #expect(again.refused.count == 1, "the erased id's tombstone no longer matches")
        for id in ["c-0", "c-5"] {
            #expect(try await node.customerView(CustomerID(trusted: id), workspace: acme, reveal: true)?.attributes["email"]
                == .string("\(id)@example.com"))
        }
        // Secrets made from now on are sealed with the secrets key.
        _ = try await node.issueSendKey(acme)
        #expect(try await store.sendKeys(workspace: acme).allSatisfy { !WorkspaceKeys.isSealedWithVersion($0.sealedSecret) })
    }

    @Test func aNewWorkspaceHasASecretsKeyFromTheStart() async throws {
        let store = try await StoreBackend.sqlite.makeStore()
        let vault = Vault(store: store, root: LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)), region: "local", cacheLifetime: .zero)
        let acme = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(acme)
        let record = try #require(try await store.workspaceSecrets(acme))
        #expect(try Envelope.workspaceKeyVersion(ofWrappedDataKey: record.wrappedKey) == 1)
        _ = try await vault.configureEvents(acme, url: "https://api.twilio.com/events")
        #expect(!WorkspaceKeys.isSealedWithVersion(try await store.workspace(acme)!.sealedEventsSecret!))
        // A plain rotation (the index stays on v1) keeps v1 and retires nothing else.
        _ = try await vault.rotateWorkspaceKey(acme)
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [])
        #expect(try await vault.keyStatus(acme).retirable == [])
    }
}
