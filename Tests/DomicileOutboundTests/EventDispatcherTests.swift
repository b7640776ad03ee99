import Crypto
import DomicileCore
import DomicileOutbound
import DomicileSQLite
import DomicileVault
import Foundation
import GRDB
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import Synchronization
import Testing

/// A stand-in for the main data center's receiver: records what it is sent and answers with
/// the statuses it is told to, in turn.
final class Receiver: Sendable {
    let bodies = Mutex<[(timestamp: String?, signature: String?, body: [UInt8])]>([])
    let statuses: Mutex<[HTTPResponse.Status]>

    init(statuses: [HTTPResponse.Status]) { self.statuses = Mutex(statuses) }

    var router: Router<BasicRequestContext> {
        let router = Router()
        router.post("events") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            self.bodies.withLock {
                $0.append((request.headers[HTTPField.Name(EventSignature.timestampHeader)!],
                           request.headers[HTTPField.Name(EventSignature.signatureHeader)!], Array(buffer: body)))
            }
            return self.statuses.withLock { $0.isEmpty ? .ok : $0.removeFirst() }
        }
        return router
    }
}

@Suite("Events for the main data center")
struct EventDispatcherTests {
    /// A vault on a fresh SQLite file with the workspace `acme`; the path is the database's.
    static func vaultWithWorkspace() async throws -> (Vault, SQLiteVaultStore, String) {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-events-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let path = folder.appendingPathComponent("domicile.sqlite").path
        let store = try SQLiteVaultStore(path: path)
        let vault = Vault(store: store, root: LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)), region: "local", cacheLifetime: .zero)
        _ = try await vault.createWorkspace(WorkspaceID(trusted: "acme"))
        _ = try await vault.setEgressAllowlist(WorkspaceID(trusted: "acme"), hosts: ["127.0.0.1"], actor: .commandLine)
        return (vault, store, path)
    }

    @Test func erasedEventsAreDeliveredSignedInOrderAndRetried() async throws {
        let (vault, store, _) = try await Self.vaultWithWorkspace()
        let workspace = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(WorkspaceID(trusted: "quiet"))
        _ = try await vault.setEgressAllowlist(WorkspaceID(trusted: "quiet"), hosts: ["127.0.0.1"], actor: .commandLine)
        let marker = "marker-\(UUID().uuidString.prefix(6))@example.com"
        _ = try await vault.ingest((0..<3).map { i in
            .object(["type": .string("customer"), "customer_id": .string("c-\(i)"),
                     "attributes": .object(["email": .string(marker), "first_name": .string("Markus")])])
        }, workspace: try await vault.workspace(workspace)!, actor: .apiKey(id: "test"))

        let receiver = Receiver(statuses: [.internalServerError])
        let app = Application(router: receiver.router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let secret = try await vault.configureEvents(workspace, url: "http://127.0.0.1:\(port)/events")
            try await vault.erase([CustomerID(trusted: "c-0")], workspace: workspace, actor: .apiKey(id: "k"), requestID: nil)
            try await vault.erase([CustomerID(trusted: "c-2"), CustomerID(trusted: "c-1")], workspace: workspace, actor: .apiKey(id: "k"),
                                  requestID: nil)
            let dispatcher = EventDispatcher(vault: vault, logger: Logger(label: "test"), maximumBackoff: .milliseconds(20))
            // The first answer is a 500: nothing is marked delivered.
            #expect(await dispatcher.deliverOnce() == 0)
            #expect(try await store.pendingEvents(workspace: workspace, limit: 10).count == 3)
            try await Task.sleep(for: .milliseconds(60))
            #expect(await dispatcher.deliverOnce() == 3)
            #expect(try await store.pendingEvents(workspace: workspace, limit: 10).isEmpty)
            #expect(await dispatcher.deliverOnce() == 0)

            let deliveries = receiver.bodies.withLock { $0 }
            #expect(deliveries.count == 2)
            let last = try #require(deliveries.last)
            #expect(EventSignature.verify(body: last.body, timestamp: last.timestamp, signature: last.signature, secret: Array(secret.utf8)))
            #expect(!EventSignature.verify(body: last.body + [0x20], timestamp: last.timestamp, signature: last.signature,
                                           secret: Array(secret.utf8)))
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let batch = try decoder.decode(MainDataCenterBatch.self, from: Data(last.body))
            #expect(batch.events.map(\.type) == ["erased", "erased", "erased"])
            #expect(batch.events.first?.customerID == "c-0")
            #expect(Set(batch.events.map(\.customerID)) == ["c-0", "c-1", "c-2"])
            for delivery in deliveries {
                let text = String(decoding: delivery.body, as: UTF8.self)
                #expect(!text.contains(marker) && !text.contains("Markus"))
            }
        }
    }

    /// The checkpoints the main data center receives anchor the chain outside the database: a
    /// writer who removes the newest entries and moves the head back is caught with them.
    @Test func auditCheckpointsTravelWithTheEventsAndAnchorTheChain() async throws {
        let (vault, store, path) = try await Self.vaultWithWorkspace()
        let workspace = WorkspaceID(trusted: "acme")
        _ = try await vault.ingest([.object(["type": .string("customer"), "customer_id": .string("c-1"),
                                             "attributes": .object(["email": .string("a@example.com")])])],
                                   workspace: try await vault.workspace(workspace)!, actor: .apiKey(id: "test"))
        let receiver = Receiver(statuses: [])
        let app = Application(router: receiver.router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            _ = try await vault.configureEvents(workspace, url: "http://127.0.0.1:\(port)/events")
            try await vault.erase([CustomerID(trusted: "c-1")], workspace: workspace, actor: .apiKey(id: "k"), requestID: nil)
            let dispatcher = EventDispatcher(vault: vault, logger: Logger(label: "test"), checkpointInterval: .zero)
            #expect(await dispatcher.deliverOnce() == 1)
            // No event to carry it: the checkpoint of a grown chain goes alone.
            try await vault.audit([AuditDraft(actor: .apiKey(id: "k"), action: .lookup)], workspace: workspace)
            #expect(await dispatcher.deliverOnce() == 0)
            // Nothing new: nothing sent.
            #expect(await dispatcher.deliverOnce() == 0)

            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            let batches = try receiver.bodies.withLock { $0 }.map { try decoder.decode(MainDataCenterBatch.self, from: Data($0.body)) }
            #expect(batches.map(\.events.count) == [1, 0])
            let checkpoints = batches.compactMap(\.auditCheckpoint)
            #expect(checkpoints.count == 2)
            let head = try #require(try await store.auditHead(workspace: workspace))
            #expect(checkpoints.last?.seq == head.seq && checkpoints.last?.head == head.hash.hexEncoded)
            let publicKey = try await vault.auditCheckpointPublicKey(workspace: workspace)
            #expect(checkpoints.allSatisfy { $0.verifies(publicKey: publicKey) })
            #expect(try await vault.verifyAudit(workspace: workspace, checkpoints: checkpoints)
                    == .intact(entries: Int(head.seq), checkpoints: 2))

            // The newest entry removed and the head moved back to the one before: the chain alone still holds.
            let database = try DatabaseQueue(path: path)
            try await database.write { db in
                try db.execute(sql: "DELETE FROM audit_log WHERE workspace_id = 'acme' AND seq = ?", arguments: [head.seq])
                try db.execute(sql: """
                    UPDATE audit_heads SET seq = seq - 1,
                        hash = (SELECT hash FROM audit_log WHERE workspace_id = 'acme' AND seq = audit_heads.seq - 1)
                    WHERE workspace_id = 'acme'
                    """)
            }
            #expect(try await vault.verifyAudit(workspace: workspace) == .intact(entries: Int(head.seq) - 1))
            #expect(try await vault.verifyAudit(workspace: workspace, checkpoints: checkpoints)
                    == .broken(atSeq: head.seq, reason: "entries \(head.seq)…\(head.seq) were removed: a signed checkpoint names entry \(head.seq)"))
            // A checkpoint altered to hide it does not verify.
            var altered = try #require(checkpoints.last)
            altered.seq -= 1
            #expect(try await vault.verifyAudit(workspace: workspace, checkpoints: [altered])
                    == .broken(atSeq: head.seq - 1, reason: "a checkpoint's signature is not this workspace's (forged or altered)"))
        }
    }

    /// Two nodes run the dispatcher; the one holding the lease delivers, the other stands by
    /// (taking over once a lease runs out is the store's part: `leasesGoToOneHolderAtATime`).
    @Test func oneNodeOfTheRegionDeliversEvents() async throws {
        let (vault, store, _) = try await Self.vaultWithWorkspace()
        let workspace = WorkspaceID(trusted: "acme")
        let receiver = Receiver(statuses: [])
        let app = Application(router: receiver.router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            _ = try await vault.configureEvents(workspace, url: "http://127.0.0.1:\(try #require(client.port))/events")
            let first = EventDispatcher(vault: vault, logger: Logger(label: "test"), checkpointInterval: .zero, node: "a")
            let second = EventDispatcher(vault: vault, logger: Logger(label: "test"), checkpointInterval: .zero, node: "b")
            // Configuring the events endpoint was audited: the chain has a head to checkpoint.
            _ = await first.deliverOnce()
            let afterFirst = receiver.bodies.withLock { $0.count }
            #expect(afterFirst == 1)
            try await vault.audit([AuditDraft(actor: .apiKey(id: "k"), action: .lookup)], workspace: workspace)
            _ = await second.deliverOnce()
            #expect(receiver.bodies.withLock { $0.count } == afterFirst)
            _ = await first.deliverOnce()
            #expect(receiver.bodies.withLock { $0.count } == afterFirst + 1)
        }
    }

    @Test func signaturesRefuseStaleTimestamps() {
        let body = Array(#"{"events":[]}"#.utf8)
        let secret = Array("whsec_test".utf8)
        let now = Date()
        let stale = Int(now.timeIntervalSince1970) - 301
        #expect(!EventSignature.verify(body: body, timestamp: String(stale),
                                       signature: EventSignature.sign(body: body, timestamp: stale, secret: secret), secret: secret, now: now))
        let fresh = Int(now.timeIntervalSince1970)
        #expect(EventSignature.verify(body: body, timestamp: String(fresh),
                                      signature: EventSignature.sign(body: body, timestamp: fresh, secret: secret), secret: secret, now: now))
    }
}
