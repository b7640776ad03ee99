import Crypto
import DomicileCore
import DomicileVault
import Foundation
import Synchronization
import Testing

/// What several nodes sharing one store must agree on, with each node played by its own `Vault`
/// (and its own caches and counters) over the same store.
@Suite("Several nodes, one store")
struct SeveralNodesTests {
    @Test(arguments: StoreBackend.allCases)
    func leasesGoToOneHolderAtATime(_ backend: StoreBackend) async throws {
        let store = try await backend.makeStore()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(try await store.acquireLease("events", holder: "a", now: now, until: now.addingTimeInterval(30)))
        #expect(try await !store.acquireLease("events", holder: "b", now: now.addingTimeInterval(10), until: now.addingTimeInterval(40)))
        // The holder renews; another job is another lease.
        #expect(try await store.acquireLease("events", holder: "a", now: now.addingTimeInterval(20), until: now.addingTimeInterval(50)))
        #expect(try await store.acquireLease("retention", holder: "b", now: now, until: now.addingTimeInterval(30)))
        // Once it runs out, anyone takes it.
        #expect(try await !store.acquireLease("events", holder: "b", now: now.addingTimeInterval(49), until: now.addingTimeInterval(80)))
        #expect(try await store.acquireLease("events", holder: "b", now: now.addingTimeInterval(50), until: now.addingTimeInterval(80)))
        #expect(try await !store.acquireLease("events", holder: "a", now: now.addingTimeInterval(51), until: now.addingTimeInterval(81)))
    }

    @Test(arguments: StoreBackend.allCases)
    func countersAddUpAcrossNodesPerWindow(_ backend: StoreBackend) async throws {
        let store = try await backend.makeStore()
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let start: Int64 = 1_800_000_000 - 30
        #expect(try await store.addToCounters(scope: "requests", windowStart: start, windowEnd: start + 60,
                                              increments: ["acme": 3, "other": 1], now: now) == ["acme": 3, "other": 1])
        #expect(try await store.addToCounters(scope: "requests", windowStart: start, windowEnd: start + 60,
                                              increments: ["acme": 2, "third": 0], now: now) == ["acme": 5, "third": 0])
        // Another window, another scope: counted apart.
        #expect(try await store.addToCounters(scope: "requests", windowStart: start + 60, windowEnd: start + 120,
                                              increments: ["acme": 0], now: now) == ["acme": 0])
        #expect(try await store.addToCounters(scope: "reveals", windowStart: start, windowEnd: start + 60,
                                              increments: ["acme": 1], now: now) == ["acme": 1])
        // Windows that ended more than a minute ago are dropped.
        #expect(try await store.addToCounters(scope: "requests", windowStart: start, windowEnd: start + 60,
                                              increments: ["acme": 0], now: now.addingTimeInterval(200)) == ["acme": 5])
        #expect(try await store.addToCounters(scope: "requests", windowStart: start, windowEnd: start + 60,
                                              increments: ["acme": 0], now: now) == ["acme": 0])
    }

    /// Three nodes taking turns at admitting one workspace's requests, each synchronizing after
    /// its own, as their servers do every 250 ms: together they allow the limit once, give or
    /// take what the others admitted since a node last synchronized (here one each).
    @Test(arguments: StoreBackend.allCases)
    func aLimitHoldsAcrossNodes(_ backend: StoreBackend) async throws {
        let store = try await backend.makeStore()
        let clock = Date()
        let nodes = (0..<3).map { _ in SharedWindowCounter(scope: "requests", window: .seconds(3600), now: { clock }) }
        var allowed = 0
        for round in 0..<60 {
            let node = nodes[round % 3]
            if node.admit("acme", limit: 20).allowed { allowed += 1 }
            try await node.synchronize(with: store)
        }
        #expect((20...22).contains(allowed), "three nodes allowed \(allowed) of a limit of 20")
        for node in nodes {
            try await node.synchronize(with: store)
            #expect(!node.admit("acme", limit: 20).allowed)
        }
        // A node that never saw the workspace learns the total at its first synchronization.
        let late = SharedWindowCounter(scope: "requests", window: .seconds(3600), now: { clock })
        #expect(late.admit("acme", limit: 20).allowed)
        try await late.synchronize(with: store)
        #expect(!late.admit("acme", limit: 20).allowed)
    }

    /// A key version added through another process (the CLI, another node) is used for new
    /// customers once the cache lifetime has passed, without a restart.
    @Test(arguments: StoreBackend.allCases)
    func aNewWorkspaceKeyVersionReachesRunningNodes(_ backend: StoreBackend) async throws {
        let store = try await backend.makeStore()
        let root = LocalKeyFileRootKey(key: SymmetricKey(size: .bits256))
        let node = Vault(store: store, root: root, region: "local", cacheLifetime: .milliseconds(200))
        let cli = Vault(store: store, root: root, region: "local", cacheLifetime: .zero)
        let workspace = WorkspaceID(trusted: "acme")
        _ = try await cli.createWorkspace(workspace)
        func ingest(_ id: String) async throws -> UInt32 {
            _ = try await node.ingest([.object(["type": .string("customer"), "customer_id": .string(id),
                                                "attributes": .object(["email": .string("\(id)@example.com")])])],
                                      workspace: try await node.workspace(workspace)!, actor: .apiKey(id: "test"))
            let stored = try #require(try await store.customer(CustomerID(trusted: id), workspace: workspace))
            return try Envelope.workspaceKeyVersion(ofWrappedDataKey: stored.dataKey)
        }
        #expect(try await ingest("c-1") == 1)
        #expect(try await cli.rotateWorkspaceKey(workspace) == 2)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await ingest("c-2") == 2)
        // Both versions still open.
        #expect(try await node.customerView(CustomerID(trusted: "c-1"), workspace: workspace, reveal: true)?.attributes["email"]
                == .string("c-1@example.com"))
    }
}
