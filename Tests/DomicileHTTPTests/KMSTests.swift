import Crypto
import DomicileCore
import DomicileHTTP
import DomicileKMS
import DomicileSQLite
import DomicileTestSupport
import DomicileVault
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// OpenBao's transit engine as the root of trust, a real server on loopback over TLS.
@Suite("OpenBao as the KMS", .serialized)
struct KMSTests {
    static func vault(_ bao: TestOpenBao, token: String, store: SQLiteVaultStore, keyLifetime: Duration = .seconds(1800)) throws -> Vault {
        let root = try OpenBaoTransit(address: bao.address, keyName: "domicile", token: token, caCertificatePath: bao.caPath,
                                      timeout: .seconds(2))
        return Vault(store: store, root: root, region: "local", cacheLifetime: .zero, keyLifetime: keyLifetime)
    }

    static func store() throws -> SQLiteVaultStore {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-kms-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return try SQLiteVaultStore(path: folder.appendingPathComponent("domicile.sqlite").path)
    }

    static let jane = customerJSON("c-1", #"{"email":"jane@example.com","first_name":"Jane"}"#)

    @Test func customersAreIngestedAndReadWithWorkspaceKeysWrappedByOpenBao() async throws {
        let bao = try await TestOpenBao.start()
        defer { bao.stop() }
        let store = try Self.store()
        let vault = try Self.vault(bao, token: try await bao.domicileToken(), store: store)
        let key = try await vault.createWorkspace(WorkspaceID(trusted: "acme"))
        let wrapped = try #require(try await store.workspaceKeys(WorkspaceID(trusted: "acme")).first?.wrappedKey)
        #expect(wrapped.first == 2 && String(decoding: wrapped.dropFirst(), as: UTF8.self).hasPrefix("vault:v1:"))
        try await Application(router: DomicileAPI.router(vault: vault)).test(.router) { client in
            let auth = APIFixture.basic("acme", key.secret)
            #expect(try await client.send(.post, "/v1/transition/acme", auth: auth, json: transition(Self.jane)).status == .ok)
            let read = try await client.send(.get, "/v1/workspaces/acme/customers/c-1", auth: auth)
            #expect((read.json["attributes"] as? [String: Any])?["email"] as? String == "j***@e******.com")
            let found = try await client.send(.get, "/v1/workspaces/acme/customers?email=jane%40example.com", auth: auth)
            #expect(found.text.contains("c-1"))
            let ready = try await client.send(.get, "/health/ready")
            #expect(ready.status == .ok)
            #expect((ready.json["checks"] as? [String: String]) == ["storage": "ok", "kms": "ok", "key_service": "openbao-transit"])
        }
        // A second node (a fresh keyring) opens the same keys through OpenBao.
        let other = try Self.vault(bao, token: try await bao.domicileToken(), store: store)
        let record = try await other.read(CustomerID(trusted: "c-1"), workspace: WorkspaceID(trusted: "acme"), actor: .apiKey(id: "k"),
                                          requestID: nil)
        #expect(record?.attributes["first_name"] == .string("J***"))
    }

    @Test func whileTheKMSIsAwayCachedWorkspacesServeAndOthersGet503ThenServiceResumes() async throws {
        let bao = try await TestOpenBao.start()
        defer { bao.stop() }
        let store = try Self.store()
        let token = try await bao.domicileToken()
        let node = try Self.vault(bao, token: token, store: store)
        let warm = try await node.createWorkspace(WorkspaceID(trusted: "warm"))
        // Created through another process: this node has never unwrapped its key.
        let cold = try await Self.vault(bao, token: token, store: store).createWorkspace(WorkspaceID(trusted: "cold"))
        try await Application(router: DomicileAPI.router(vault: node)).test(.router) { client in
            let warmAuth = APIFixture.basic("warm", warm.secret), coldAuth = APIFixture.basic("cold", cold.secret)
            #expect(try await client.send(.post, "/v1/transition/warm", auth: warmAuth, json: transition(Self.jane)).status == .ok)

            bao.stop()
            #expect(try await client.send(.post, "/v1/transition/warm", auth: warmAuth,
                                          json: transition(customerJSON("c-2", #"{"email":"ann@example.com"}"#))).status == .ok)
            #expect(try await client.send(.get, "/v1/workspaces/warm/customers/c-1", auth: warmAuth).status == .ok)
            let refused = try await client.send(.post, "/v1/transition/cold", auth: coldAuth, json: transition(Self.jane))
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.headers[.retryAfter] == "5")
            #expect(refused.error["type"] as? String == "ServiceUnavailableError")
            #expect(try await store.customer(CustomerID(trusted: "c-1"), workspace: WorkspaceID(trusted: "cold")) == nil,
                    "a write landed without its key")
            let ready = try await client.send(.get, "/health/ready")
            #expect(ready.status == .serviceUnavailable)
            #expect((ready.json["checks"] as? [String: String])?["kms"] == "unavailable")

            try await bao.restart()
            try await Task.sleep(for: .milliseconds(1100))  // the keyring's pause between attempts
            #expect(try await client.send(.post, "/v1/transition/cold", auth: coldAuth, json: transition(Self.jane)).status == .ok)
            #expect(try await client.send(.get, "/health/ready").status == .ok)
        }
    }

    @Test func rotatingTheRootRewrapsEveryWorkspaceKeyWithTheNewTransitVersion() async throws {
        let bao = try await TestOpenBao.start()
        defer { bao.stop() }
        let store = try Self.store()
        let token = try await bao.domicileToken()
        let vault = try Self.vault(bao, token: token, store: store)
        let acme = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(acme)
        _ = try await vault.ingest([.object(["type": .string("customer"), "customer_id": .string("c-1"),
                                             "attributes": .object(["email": .string("jane@example.com")])])],
                                   workspace: try await vault.workspace(acme)!, actor: .apiKey(id: "k"))
        // An administrator's token may rotate the transit key; Domicile's own only encrypts and decrypts.
        let administrator = try Self.vault(bao, token: bao.rootToken, store: store)
        #expect(try await administrator.rotateRoot() == 1)
        let wrapped = try #require(try await store.workspaceKeys(acme).first?.wrappedKey)
        #expect(String(decoding: wrapped.dropFirst(), as: UTF8.self).hasPrefix("vault:v2:"))
        // The old transit version no longer decrypts, and nothing needs it.
        try await bao.setMinimumDecryptionVersion(2)
        let fresh = try Self.vault(bao, token: token, store: store)
        let view = try await fresh.customerView(CustomerID(trusted: "c-1"), workspace: acme, reveal: true)
        #expect(view?.attributes["email"] == .string("jane@example.com"))
    }

    @Test func aRevokedTokenStopsWorkingWithinTheKeyCacheTime() async throws {
        let bao = try await TestOpenBao.start()
        defer { bao.stop() }
        let token = try await bao.domicileToken()
        let vault = try Self.vault(bao, token: token, store: try Self.store(), keyLifetime: .seconds(1))
        let key = try await vault.createWorkspace(WorkspaceID(trusted: "acme"))
        try await Application(router: DomicileAPI.router(vault: vault)).test(.router) { client in
            let auth = APIFixture.basic("acme", key.secret)
            #expect(try await client.send(.post, "/v1/transition/acme", auth: auth, json: transition(Self.jane)).status == .ok)
            try await bao.revoke(token: token)
            try await Task.sleep(for: .milliseconds(1200))
            let refused = try await client.send(.get, "/v1/workspaces/acme/customers/c-1", auth: auth)
            #expect(refused.status == .serviceUnavailable)
            #expect(refused.error["message"] as? String == "the key service (KMS) refused to open this workspace's key; nothing was written")
        }
    }
}
