import Crypto
import DomicileCore
import DomicileVault
import Foundation
import Testing

@Suite("Workspace key rotation")
struct KeyRotationTests {
    static func element(_ id: String) -> JSONValue {
        .object(["type": .string("customer"), "customer_id": .string(id),
                 "attributes": .object(["email": .string("\(id)@example.com"), "first_name": .string("Name \(id)")])])
    }

    /// Customers written before, during and after a rotation all read back, on this node and on
    /// another; once every data key is rewrapped, the versions nothing uses are gone from the store.
    @Test(arguments: StoreBackend.allCases)
    func rotationRewrapsEveryCustomerAndRetiresWhatNothingUses(_ backend: StoreBackend) async throws {
        let store = try await backend.makeStore()
        let root = LocalKeyFileRootKey(key: SymmetricKey(size: .bits256))
        let vault = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        let acme = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(acme)
        func ingest(_ ids: [String]) async throws {
            let report = try await vault.ingest(ids.map(Self.element), workspace: try await vault.workspace(acme)!, actor: .apiKey(id: "k"))
            #expect(report.refused.isEmpty)
        }
        func rewrapAll() async throws -> Int {
            var cursor: CustomerID?, total = 0
            repeat {
                let (count, next) = try await vault.rewrapDataKeys(acme, after: cursor, limit: 7)
                total += count
                cursor = next
            } while cursor != nil
            return total
        }
        try await ingest((0..<30).map { "before-\($0)" })
        #expect(try await vault.rotateWorkspaceKey(acme) == 2)
        try await ingest((0..<10).map { "during-\($0)" })
        // Half-way through a rewrap, more customers arrive, and an old one is updated.
        let (first, cursor) = try await vault.rewrapDataKeys(acme, after: nil, limit: 10)
        #expect(first == 10)
        try await ingest((10..<15).map { "during-\($0)" } + ["before-29"])
        var rest = 0, next = cursor
        repeat {
            let step = try await vault.rewrapDataKeys(acme, after: next, limit: 7)
            rest += step.rewrapped
            next = step.next
        } while next != nil
        #expect(first + rest == 30)
        var status = try await vault.keyStatus(acme)
        #expect(status.versions == [1, 2] && status.done == 45 && status.total == 45)

        #expect(try await vault.rotateWorkspaceKey(acme) == 3)
        try await ingest(["after-0"])
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [], "v2 is still used")
        #expect(try await rewrapAll() == 45)
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [2])
        #expect(try await store.workspaceKeys(acme).map(\.version).sorted() == [1, 3], "the retired version is still in the store")
        status = try await vault.keyStatus(acme)
        #expect(status.customersByVersion == [3: 46])

        // This node and a fresh one (no cached keys) read every customer.
        let other = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        for node in [vault, other] {
            for id in (0..<30).map({ "before-\($0)" }) + (0..<15).map({ "during-\($0)" }) + ["after-0"] {
                let view = try await node.customerView(CustomerID(trusted: id), workspace: acme, reveal: true)
                #expect(view?.attributes["email"] == .string("\(id)@example.com"), "\(id)")
            }
        }
        let audit = try await store.auditEntries(workspace: acme, filter: AuditFilter(limit: 1_000))
        #expect(audit.contains { $0.draft.attributes == ["workspace_key:v2:retired"] })
    }

    @Test func aVersionStillNamedByADataKeyIsNotRetired() async throws {
        // A node that has not seen the newest version yet wraps a new customer with the one
        // before: the retirement's own statement finds it and keeps that version.
        let store = try await StoreBackend.sqlite.makeStore()
        let root = LocalKeyFileRootKey(key: SymmetricKey(size: .bits256))
        let vault = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        let acme = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(acme)
        _ = try await vault.rotateWorkspaceKey(acme)
        let stale = Vault(store: store, root: root, region: "local", cacheLifetime: .seconds(3600))
        _ = try await stale.keyring.keys(for: acme)  // v2 is current for this node from now on
        #expect(try await vault.rotateWorkspaceKey(acme) == 3)
        _ = try await stale.ingest([Self.element("late")], workspace: try await stale.workspace(acme)!, actor: .apiKey(id: "k"))
        let late = try #require(try await store.customer(CustomerID(trusted: "late"), workspace: acme))
        #expect(try Envelope.workspaceKeyVersion(ofWrappedDataKey: late.dataKey) == 2)
        #expect(try await store.retireWorkspaceKey(2, workspace: acme) == false)
        #expect(try await vault.rewrapDataKeys(acme, after: nil, limit: 100).rewrapped == 1)
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [], "the secrets key moves to v3 first")
        #expect(try await vault.retireUnusedKeyVersions(acme, grace: .zero) == [2])
        #expect(try await stale.customerView(CustomerID(trusted: "late"), workspace: acme, reveal: true)?.attributes["email"]
            == .string("late@example.com"))
    }
}

@Suite("Root key rotation, local key file")
struct RootKeyRotationTests {
    @Test func everyWorkspaceKeyIsWrappedWithTheNewFileAndAnInterruptedRotationStillOpens() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-root-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("root.key").path
        let store = try await StoreBackend.sqlite.makeStore()
        let (root, _) = try LocalKeyFileRootKey.loadOrCreate(at: path)
        let vault = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        // A server started before the rotation, whose keys are unwrapped again at each use.
        let (running, _) = try LocalKeyFileRootKey.loadOrCreate(at: path)
        let server = Vault(store: store, root: running, region: "local", cacheLifetime: .zero, keyLifetime: .milliseconds(1))
        let acme = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(acme)
        _ = try await vault.rotateWorkspaceKey(acme)
        _ = try await vault.ingest([KeyRotationTests.element("c-1")], workspace: try await vault.workspace(acme)!, actor: .apiKey(id: "k"))
        let before = try String(contentsOfFile: path, encoding: .utf8)

        // Cut short after the new file was written: both keys open, whatever was rewrapped.
        try await root.beginRotation()
        #expect(FileManager.default.fileExists(atPath: path + ".next"))
        let (resumed, _) = try LocalKeyFileRootKey.loadOrCreate(at: path)
        let afterCrash = Vault(store: store, root: resumed, region: "local", cacheLifetime: .zero)
        #expect(try await afterCrash.rotateRoot() == 2)

        #expect(!FileManager.default.fileExists(atPath: path + ".next"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) != before)
        let (fresh, _) = try LocalKeyFileRootKey.loadOrCreate(at: path)
        for node in [Vault(store: store, root: fresh, region: "local", cacheLifetime: .zero), server] {
            let view = try await node.customerView(CustomerID(trusted: "c-1"), workspace: acme, reveal: true)
            #expect(view?.attributes["email"] == .string("c-1@example.com"))
        }
        // The old key opens nothing any more.
        let old = LocalKeyFileRootKey(key: SymmetricKey(data: Data(base64Encoded: before.trimmingCharacters(in: .whitespacesAndNewlines))!))
        let wrapped = try #require(try await store.workspaceKeys(acme).first?.wrappedKey)
        await #expect(throws: KeyError.self) { _ = try await old.unwrap(wrapped, context: "workspace/acme/v1") }
    }
}
