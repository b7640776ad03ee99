import Crypto
import DomicileCore
import DomicileOutbound
import DomicileSQLite
import DomicileVault
import Foundation
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
    @Test func erasedEventsAreDeliveredSignedInOrderAndRetried() async throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-events-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store = try SQLiteVaultStore(path: folder.appendingPathComponent("domicile.sqlite").path)
        let vault = Vault(store: store, root: LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)), region: "local", cacheLifetime: .zero)
        let workspace = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(workspace)
        _ = try await vault.createWorkspace(WorkspaceID(trusted: "quiet"))
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
