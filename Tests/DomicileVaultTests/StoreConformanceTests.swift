import Crypto
import DomicileCore
import Foundation
import Testing

/// What every `VaultStore` must do. Each case runs against every backend in `StoreBackend`.
@Suite("Store conformance")
struct StoreConformanceTests {
    let workspace = WorkspaceID(trusted: "acme")

    func seeded(_ backend: StoreBackend) async throws -> any VaultStore {
        let store = try await backend.makeStore()
        try await store.createWorkspace(
            WorkspaceRecord(id: workspace, region: "local", rateLimitPerMinute: 10),
            key: WorkspaceKeyRecord(workspaceID: workspace, version: 1, wrappedKey: [1, 2, 3]),
            apiKey: APIKeyRecord(workspaceID: workspace, keyID: "k1", secretHash: [9]))
        return store
    }

    func row(_ id: String, revision: Int64 = 1, attributes: [String: [UInt8]] = ["email": [1]],
             index: [String: [UInt8]] = [:], restricted: Bool = false) -> StoredCustomer {
        StoredCustomer(workspaceID: workspace, customerID: CustomerID(trusted: id), dataKey: [7, 7],
                       attributes: attributes, blindIndex: index, restricted: restricted,
                       createdAt: Date(timeIntervalSince1970: 1_700_000_000), updatedAt: Date(timeIntervalSince1970: 1_700_000_001),
                       revision: revision)
    }

    func write(_ customer: StoredCustomer) -> CustomerMutation {
        CustomerMutation(customerID: customer.customerID) { _ in .write(customer) }
    }

    @Test(arguments: StoreBackend.allCases)
    func workspacesRoundTripAndIdsAreUnique(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let stored = try #require(try await store.workspace(workspace))
        #expect(stored.rateLimitPerMinute == 10 && stored.region == "local" && !stored.suspended)
        await #expect(throws: StoreError.self) {
            try await store.createWorkspace(WorkspaceRecord(id: workspace, region: "local"),
                                            key: WorkspaceKeyRecord(workspaceID: workspace, version: 1, wrappedKey: [1]),
                                            apiKey: APIKeyRecord(workspaceID: workspace, keyID: "k2", secretHash: [1]))
        }
        var changed = stored
        changed.rateLimitPerMinute = 5000
        changed.suspended = true
        changed.allowIdentifyingCustomerIDs = true
        changed.retentionDays = 30
        changed.refuseErasedCustomerIDs = true
        changed.eventsURL = "http://127.0.0.1:9/events"
        changed.sealedEventsSecret = [1, 2, 3]
        try await store.updateWorkspace(changed)
        #expect(try await store.workspace(workspace) == changed)
        #expect(try await store.workspaces().map(\.id) == [workspace])
        #expect(try await store.workspace(WorkspaceID(trusted: "nope")) == nil)
        await #expect(throws: StoreError.self) {
            try await store.updateWorkspace(WorkspaceRecord(id: WorkspaceID(trusted: "nope"), region: "local"))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func workspaceKeysAreVersioned(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        try await store.addWorkspaceKey(WorkspaceKeyRecord(workspaceID: workspace, version: 2, wrappedKey: [4]))
        #expect(try await store.workspaceKeys(workspace).map(\.version) == [1, 2])
        #expect(try await store.workspaceKeys(workspace).last?.wrappedKey == [4])
        await #expect(throws: (any Error).self) {
            try await store.addWorkspaceKey(WorkspaceKeyRecord(workspaceID: workspace, version: 2, wrappedKey: [5]))
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func blindIndexStatesAreKeptPerVersion(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let since = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.addWorkspaceKey(WorkspaceKeyRecord(workspaceID: workspace, version: 2, wrappedKey: [4],
                                                           blindIndex: BlindIndexState(role: .building, since: since)))
        #expect(try await store.workspaceKeys(workspace).map(\.blindIndex) == [nil, BlindIndexState(role: .building, since: since)])
        try await store.setBlindIndexStates([1: BlindIndexState(role: .draining, since: since, cursor: CustomerID(trusted: "c-9")),
                                             2: BlindIndexState(role: .active, since: since)], workspace: workspace)
        #expect(try await store.workspaceKeys(workspace).map(\.blindIndex)
            == [BlindIndexState(role: .draining, since: since, cursor: CustomerID(trusted: "c-9")), BlindIndexState(role: .active, since: since)])
        try await store.setBlindIndexStates([1: nil], workspace: workspace)
        #expect(try await store.workspaceKeys(workspace).first?.blindIndex == nil)
    }

    @Test(arguments: StoreBackend.allCases)
    func apiKeysAreSavedAndReplaced(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        var first = try #require(try await store.apiKey(workspace: workspace, keyID: "k1"))
        #expect(first.secretHash == [9] && first.revokedAt == nil)
        first.revokedAt = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.saveAPIKeys([first, APIKeyRecord(workspaceID: workspace, keyID: "k2", secretHash: [8])])
        #expect(try await store.apiKeys(workspace: workspace).map(\.keyID).sorted() == ["k1", "k2"])
        #expect(try await store.apiKey(workspace: workspace, keyID: "k1")?.revokedAt == first.revokedAt)
        #expect(try await store.apiKey(workspace: workspace, keyID: "k3") == nil)
    }

    @Test(arguments: StoreBackend.allCases)
    func schemaAttributesAreSavedAndReplaced(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let plan = AttributeDefinition(name: AttributeName(trusted: "plan"), type: .text, pii: false, indexed: false)
        try await store.saveSchemaAttribute(plan, workspace: workspace)
        var replaced = plan
        replaced.indexed = true
        try await store.saveSchemaAttribute(replaced, workspace: workspace)
        #expect(try await store.schema(workspace) == [replaced])
        // Schema additions made by ingestion never overwrite a definition an administrator set.
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [],
                                               schemaAdditions: [AttributeDefinition(name: plan.name, type: .number)]))
        #expect(try await store.schema(workspace) == [replaced])
    }

    @Test(arguments: StoreBackend.allCases)
    func preparedRowsAreWrittenOnlyWhileTheirAssumptionHolds(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let id = CustomerID(trusted: "c-1")
        func prepared(assumed: StoredCustomer?, row: StoredCustomer, resolved: @escaping @Sendable (StoredCustomer?) -> MutationDecision)
            -> CustomerMutation
        {
            CustomerMutation(customerID: id, prepared: .init(assumed: assumed, row: row)) { current in resolved(current) }
        }
        // Assumed absent and absent: the prepared row is created with its index entries, resolve is not needed.
        let first = row("c-1", index: ["email": [1]])
        var outcomes = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            prepared(assumed: nil, row: first) { _ in .refuse(Failure(.attribute, "resolve should not run")) },
        ]))
        #expect(outcomes.map(Self.label) == ["created"])
        #expect(try await store.customerIDs(attribute: AttributeName(trusted: "email"), digest: [1], workspace: workspace) == [id])

        // Assumed absent but present: nothing of the prepared row is written; resolve decides against the current row.
        outcomes = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            prepared(assumed: nil, row: row("c-1", attributes: ["email": [9]])) { current in
                guard var next = current else { return .refuse(Failure(.attribute, "missing")) }
                next.revision += 1
                next.attributes["mobile"] = [2]
                return .write(next)
            },
        ]))
        #expect(outcomes.map(Self.label) == ["updated"])
        let second = try #require(try await store.customer(id, workspace: workspace))
        #expect(second.revision == 2 && second.attributes == ["email": [1], "mobile": [2]])

        // Assumed at revision 2 and still there: the update applies and the index follows the new digests.
        let third = row("c-1", revision: 3, attributes: ["email": [3]], index: ["email": [3]])
        outcomes = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            prepared(assumed: second, row: third) { _ in .refuse(Failure(.attribute, "resolve should not run")) },
        ]))
        #expect(outcomes.map(Self.label) == ["updated"])
        #expect(try await store.customer(id, workspace: workspace) == third)
        #expect(try await store.customerIDs(attribute: AttributeName(trusted: "email"), digest: [1], workspace: workspace).isEmpty)
        #expect(try await store.customerIDs(attribute: AttributeName(trusted: "email"), digest: [3], workspace: workspace) == [id])

        // Assumed at revision 2, but it is at 3 now: the stale row is not written.
        outcomes = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            prepared(assumed: second, row: row("c-1", revision: 3, attributes: ["email": [4]])) { current in
                current?.revision == 3 ? .refuse(Failure(.attribute, "changed meanwhile")) : .skip
            },
        ]))
        #expect(outcomes.map(Self.label) == ["refused"])
        #expect(try await store.customer(id, workspace: workspace) == third)
    }

    @Test(arguments: StoreBackend.allCases)
    func commitCreatesUpdatesSkipsAndRefuses(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let outcomes = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            write(row("c-1")),
            CustomerMutation(customerID: CustomerID(trusted: "c-2")) { _ in .skip },
            CustomerMutation(customerID: CustomerID(trusted: "c-3")) { _ in .refuse(Failure(.attribute, "no")) },
        ]))
        #expect(outcomes.map(Self.label) == ["created", "skipped", "refused"])
        #expect(try await store.customer(CustomerID(trusted: "c-1"), workspace: workspace) == row("c-1"))
        #expect(try await store.customer(CustomerID(trusted: "c-2"), workspace: workspace) == nil)
        #expect(try await store.customer(CustomerID(trusted: "c-3"), workspace: workspace) == nil)

        let seen = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            CustomerMutation(customerID: CustomerID(trusted: "c-1")) { current in
                guard let current else { return .refuse(Failure(.attribute, "missing")) }
                var next = current
                next.revision += 1
                next.attributes["mobile"] = [2]
                return .write(next)
            },
        ]))
        #expect(seen.map(Self.label) == ["updated"])
        let updated = try #require(try await store.customer(CustomerID(trusted: "c-1"), workspace: workspace))
        #expect(updated.revision == 2 && updated.attributes == ["email": [1], "mobile": [2]])
        #expect(updated.createdAt == row("c-1").createdAt)
    }

    @Test(arguments: StoreBackend.allCases)
    func mutationsOfOneBatchSeeEachOther(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let id = CustomerID(trusted: "c-1")
        let bump = CustomerMutation(customerID: id) { current in
            .write(self.row("c-1", revision: (current?.revision ?? 0) + 1))
        }
        let outcomes = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [bump, bump, bump]))
        #expect(outcomes.map(Self.label) == ["created", "updated", "updated"])
        #expect(try await store.customer(id, workspace: workspace)?.revision == 3)
    }

    @Test(arguments: StoreBackend.allCases)
    func aFailingBatchLeavesItsGroupUntouched(_ backend: StoreBackend) async throws {
        struct Boom: Error {}
        let store = try await seeded(backend)
        async let good = store.commit(CommitBatch(workspaceID: workspace, mutations: [write(row("good"))]))
        async let bad = store.commit(CommitBatch(workspaceID: workspace, mutations: [
            write(row("half")), CustomerMutation(customerID: CustomerID(trusted: "boom")) { _ in throw Boom() },
        ]))
        #expect(try await good.map(Self.label) == ["created"])
        let badResult: Result<[MutationOutcome], any Error>
        do { badResult = .success(try await bad) } catch { badResult = .failure(error) }
        #expect(throws: Boom.self) { try badResult.get() }
        #expect(try await store.customer(CustomerID(trusted: "good"), workspace: workspace) != nil)
        #expect(try await store.customer(CustomerID(trusted: "half"), workspace: workspace) == nil)
    }

    /// A bulk import's batch: rows prepared as new, one of which appeared meanwhile, and one
    /// customer named twice. Each outcome is the one applying the mutations in order would give.
    @Test(arguments: StoreBackend.allCases)
    func aBatchOfNewRowsKeepsItsOrderAndAssumptions(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [write(row("taken", index: ["email": [5]]))]))
        func new(_ id: String, digest: UInt8) -> CustomerMutation {
            let prepared = row(id, index: ["email": [digest]])
            return CustomerMutation(customerID: prepared.customerID, prepared: .init(assumed: nil, row: prepared)) { current in
                guard var next = current else { return .write(prepared) }
                next.revision += 1
                next.attributes["again"] = [digest]
                return .write(next)
            }
        }
        let outcomes = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            new("n-1", digest: 1), new("twice", digest: 2), new("taken", digest: 3), new("n-2", digest: 4), new("twice", digest: 6),
        ]))
        #expect(outcomes.map(Self.label) == ["created", "created", "updated", "created", "updated"])
        let twice = try #require(try await store.customer(CustomerID(trusted: "twice"), workspace: workspace))
        #expect(twice.revision == 2 && twice.attributes["again"] == [6] && twice.blindIndex == ["email": [2]])
        let taken = try #require(try await store.customer(CustomerID(trusted: "taken"), workspace: workspace))
        #expect(taken.revision == 2 && taken.blindIndex == ["email": [5]])
        for (digest, id) in [(UInt8(1), "n-1"), (2, "twice"), (4, "n-2"), (5, "taken")] {
            #expect(try await store.customerIDs(attribute: AttributeName(trusted: "email"), digest: [digest], workspace: workspace)
                    == [CustomerID(trusted: id)])
        }
        #expect(try await store.customerIDs(attribute: AttributeName(trusted: "email"), digest: [3], workspace: workspace).isEmpty)
    }

    /// Two batches change the same two customers in opposite orders, each pausing after its first:
    /// on a backend with row locks they deadlock, the database aborts one, and the store runs it
    /// again. Both apply, whole.
    @Test(arguments: StoreBackend.allCases)
    func batchesThatDeadlockAreRunAgain(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [write(row("a")), write(row("b"))]))
        func bump(_ id: String, pause: Bool) -> CustomerMutation {
            CustomerMutation(customerID: CustomerID(trusted: id)) { current in
                guard var row = current else { return .skip }
                // Holding the first row's lock while the other batch takes its own first row.
                if pause { Thread.sleep(forTimeInterval: 0.3) }
                row.revision += 1
                row.attributes["touched"] = Array((row.attributes["touched"] ?? []) + [UInt8(row.revision)])
                return .write(row)
            }
        }
        async let forward = store.commit(CommitBatch(workspaceID: workspace, mutations: [bump("a", pause: true), bump("b", pause: false)]))
        async let backward = store.commit(CommitBatch(workspaceID: workspace, mutations: [bump("b", pause: true), bump("a", pause: false)]))
        #expect(try await forward.map(Self.label) == ["updated", "updated"])
        #expect(try await backward.map(Self.label) == ["updated", "updated"])
        for id in ["a", "b"] {
            let stored = try #require(try await store.customer(CustomerID(trusted: id), workspace: workspace))
            #expect(stored.revision == 3 && stored.attributes["touched"] == [2, 3])
        }
    }

    @Test(arguments: StoreBackend.allCases)
    func blindIndexFollowsTheRow(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let email = AttributeName(trusted: "email")
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            write(row("c-1", index: ["email": [0xAA], "mobile": [0xBB]])),
            write(row("c-2", index: ["email": [0xAA]])),
        ]))
        #expect(try await store.customerIDs(attribute: email, digest: [0xAA], workspace: workspace).map(\.rawValue) == ["c-1", "c-2"])
        #expect(try await store.customerIDs(attribute: AttributeName(trusted: "mobile"), digest: [0xBB], workspace: workspace).count == 1)
        // The digest is per attribute: the same bytes under another attribute find nothing.
        #expect(try await store.customerIDs(attribute: AttributeName(trusted: "mobile"), digest: [0xAA], workspace: workspace).isEmpty)
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            write(row("c-1", revision: 2, index: ["email": [0xCC]])),
        ]))
        #expect(try await store.customerIDs(attribute: email, digest: [0xAA], workspace: workspace).map(\.rawValue) == ["c-2"])
        #expect(try await store.customerIDs(attribute: email, digest: [0xCC], workspace: workspace).map(\.rawValue) == ["c-1"])
        #expect(try await store.customerIDs(attribute: AttributeName(trusted: "mobile"), digest: [0xBB], workspace: workspace).isEmpty)
        #expect(try await store.customerIDs(attribute: email, digest: [0xAA], workspace: WorkspaceID(trusted: "other")).isEmpty)
    }

    @Test(arguments: StoreBackend.allCases)
    func customersAreFetchedInBulk(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let ids = (0..<1_200).map { "c-\($0)" }
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: ids.map { write(row($0)) }))
        let found = try await store.customers((ids + ["absent"]).map(CustomerID.init(trusted:)), workspace: workspace)
        #expect(found.count == 1_200)
        #expect(found[CustomerID(trusted: "c-1199")]?.customerID.rawValue == "c-1199")
        #expect(try await store.customers([], workspace: workspace).isEmpty)
    }

    @Test(arguments: StoreBackend.allCases)
    func concurrentCommitsAreAllApplied(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 0..<200 {
                group.addTask {
                    let outcomes = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [write(row("c-\(i)"))]))
                    #expect(outcomes.map(Self.label) == ["created"])
                }
            }
            try await group.waitForAll()
        }
        let found = try await store.customers((0..<200).map { CustomerID(trusted: "c-\($0)") }, workspace: workspace)
        #expect(found.count == 200)
    }

    @Test(arguments: StoreBackend.allCases)
    func eraseDeletesTheRowAndItsIndexAndKeepsATombstone(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let email = AttributeName(trusted: "email")
        let mobile = AttributeName(trusted: "mobile")
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [
            write(row("c-1", index: ["email": [0xAA], "mobile": [0xBB]])),
            write(row("c-2", index: ["email": [0xAA]])),
        ]))
        let outcomes = try await store.commit(CommitBatch(
            workspaceID: workspace,
            mutations: [CustomerMutation(customerID: CustomerID(trusted: "c-1")) { _ in .erase(tombstone: [0x70]) }],
            events: [OutboundEvent(workspaceID: workspace, type: "erased", customerID: "c-1")]))
        #expect(outcomes.map(Self.label) == ["erased"])
        #expect(try await store.customer(CustomerID(trusted: "c-1"), workspace: workspace) == nil)
        // Every entry of the erased customer is gone; another customer's entry under the same digest stays.
        #expect(try await store.customerIDs(attribute: email, digest: [0xAA], workspace: workspace).map(\.rawValue) == ["c-2"])
        #expect(try await store.customerIDs(attribute: mobile, digest: [0xBB], workspace: workspace).isEmpty)
        #expect(try await store.isTombstoned([0x70], workspace: workspace))
        #expect(try await !store.isTombstoned([0x71], workspace: workspace))
        let events = try await store.pendingEvents(workspace: workspace, limit: 10)
        #expect(events.map(\.type) == ["erased"] && events.map(\.customerID) == ["c-1"])
        try await store.markEventsDelivered(events.map(\.id))
        #expect(try await store.pendingEvents(workspace: workspace, limit: 10).isEmpty)
        #expect(try await store.pendingEvents(workspace: WorkspaceID(trusted: "other"), limit: 10).isEmpty)
        try await store.purgeDeleted()
    }

    @Test(arguments: StoreBackend.allCases)
    func customersArePagedAndFoundByAge(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        var old = row("old")
        old.updatedAt = Date(timeIntervalSince1970: 1_000)
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [write(row("b")), write(row("a")), write(old)]))
        #expect(try await store.customerIDs(workspace: workspace, after: nil, limit: 2).map(\.rawValue) == ["a", "b"])
        #expect(try await store.customerIDs(workspace: workspace, after: CustomerID(trusted: "b"), limit: 2).map(\.rawValue) == ["old"])
        #expect(try await store.customerIDs(workspace: workspace, updatedBefore: Date(timeIntervalSince1970: 2_000), limit: 10)
            .map(\.rawValue) == ["old"])
    }

    @Test(arguments: StoreBackend.allCases)
    func auditEntriesAreChainedPerWorkspace(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let drafts = (0..<3).map { AuditDraft(actor: .apiKey(id: "k1"), action: .readMasked, customerID: "c-\($0)") }
        let key = AuditChainKey(workspaceKey: SymmetricKey(size: .bits256), workspace: workspace)
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [], audit: AuditAppend(Array(drafts[0..<2]), key: key)))
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [], audit: AuditAppend([drafts[2]], key: key)))
        let entries = try await store.auditEntries(workspace: workspace, filter: AuditFilter())
        #expect(entries.map(\.seq) == [1, 2, 3])
        #expect(entries[0].previousHash == AuditEntry.genesis)
        #expect(entries[1].previousHash == entries[0].hash && entries[2].previousHash == entries[1].hash)
        let head = try #require(try await store.auditHead(workspace: workspace))
        #expect(head.seq == 3 && head.hash == entries[2].hash)
        #expect(entries.allSatisfy { $0.format == .keyed })
        #expect(AuditVerification.check(entries, head: head, key: key) == .intact(entries: 3))
        // Another key does not verify the links.
        let other = AuditChainKey(workspaceKey: SymmetricKey(size: .bits256), workspace: workspace)
        #expect(AuditVerification.check(entries, head: head, key: other) == .broken(atSeq: 1, reason: "its content does not match its hash (altered)"))
        #expect(try await store.auditEntries(workspace: workspace, filter: AuditFilter(customerID: "c-1")).map(\.seq) == [2])
        #expect(try await store.auditEntries(workspace: workspace, filter: AuditFilter(afterSeq: 1, limit: 1)).map(\.seq) == [2])
        #expect(try await store.auditHead(workspace: WorkspaceID(trusted: "other")) == nil)
    }

    /// Failed logins at once each count: a read-modify-write would let a burst of parallel
    /// guesses count as one and never lock the account.
    @Test(arguments: StoreBackend.allCases)
    func concurrentFailedLoginsEachCountAndLock(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        try await store.saveOperator(OperatorRecord(id: "op-1", workspaceID: workspace, emailDigest: [1], sealedEmail: [2], role: .admin,
                                                    viewPII: true, passwordHash: "h", createdAt: Date(timeIntervalSince1970: 1_700_000_000)))
        let now = Date(timeIntervalSince1970: 1_800_000_000), until = now.addingTimeInterval(900)
        func fail(_ times: Int) async throws {
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<times {
                    group.addTask { try await store.recordFailedLogin(operatorID: "op-1", maximum: 5, now: now, lockUntil: until) }
                }
                try await group.waitForAll()
            }
        }
        try await fail(4)
        var record = try #require(try await store.operatorRecord(id: "op-1"))
        #expect(record.failedAttempts == 4 && record.lockedUntil == nil)
        // The fifth locks; the other 49, while it is locked, neither count nor extend the lock.
        try await fail(50)
        record = try #require(try await store.operatorRecord(id: "op-1"))
        #expect(record.lockedUntil == until && record.failedAttempts == 0)
        // A good password while locked changes nothing; after the lock it clears the count.
        #expect(try await store.recordSuccessfulLogin(operatorID: "op-1", now: now) == false)
        #expect(try await store.operatorRecord(id: "op-1")?.lockedUntil == until)
        try await store.recordFailedLogin(operatorID: "op-1", maximum: 5, now: until.addingTimeInterval(1), lockUntil: until.addingTimeInterval(901))
        #expect(try await store.operatorRecord(id: "op-1")?.failedAttempts == 1)
        #expect(try await store.recordSuccessfulLogin(operatorID: "op-1", now: until.addingTimeInterval(2)) == true)
        record = try #require(try await store.operatorRecord(id: "op-1"))
        #expect(record.failedAttempts == 0 && record.lockedUntil == nil)
    }

    @Test(arguments: StoreBackend.allCases)
    func operatorsSessionsAndSubjectRequests(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let first = OperatorRecord(id: "op-1", workspaceID: workspace, emailDigest: [1], sealedEmail: [2], role: .admin, viewPII: true,
                                   passwordHash: "$2b$04$x", createdAt: Date(timeIntervalSince1970: 1_700_000_000))
        try await store.saveOperator(first)
        #expect(try await store.operatorRecord(id: "op-1") == first)
        #expect(try await store.operatorRecord(emailDigest: [1], workspace: workspace) == first)
        var locked = first
        locked.failedAttempts = 3
        locked.lockedUntil = Date(timeIntervalSince1970: 1_800_000_000)
        try await store.saveOperator(locked)
        #expect(try await store.operatorRecord(id: "op-1") == locked)
        await #expect(throws: StoreError.self) {
            try await store.saveOperator(OperatorRecord(id: "op-2", workspaceID: workspace, emailDigest: [1], sealedEmail: [3],
                                                        role: .viewer, viewPII: false, passwordHash: "h"))
        }
        #expect(try await store.operators(workspace: workspace).map(\.id) == ["op-1"])

        let session = SessionRecord(tokenHash: [5, 5], operatorID: "op-1", workspaceID: workspace,
                                    createdAt: Date(timeIntervalSince1970: 1_700_000_000), expiresAt: Date(timeIntervalSince1970: 1_700_003_600))
        try await store.saveSession(session)
        #expect(try await store.session(tokenHash: [5, 5]) == session)
        try await store.deleteSession(tokenHash: [5, 5])
        #expect(try await store.session(tokenHash: [5, 5]) == nil)

        let request = SubjectRequestRecord(id: "r-1", workspaceID: workspace, type: "access", status: "completed",
                                           submittedAt: Date(timeIntervalSince1970: 1_700_000_000), receivedAt: Date(timeIntervalSince1970: 1_700_000_001),
                                           completedAt: Date(timeIntervalSince1970: 1_700_000_002), identityTypes: ["email"],
                                           customerIDs: ["c-1", "c-2"], actorType: "api_key", actorID: "k1")
        try await store.saveSubjectRequest(request)
        #expect(try await store.subjectRequest(id: "r-1", workspace: workspace) == request)
        #expect(try await store.subjectRequest(id: "r-1", workspace: WorkspaceID(trusted: "other")) == nil)
    }

    /// Several nodes claiming at once take every due message exactly once; a claim whose lease
    /// ran out is released by any node.
    @Test(arguments: StoreBackend.allCases)
    func nodesClaimDisjointMessagesAndExpiredLeasesAreReleased(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        let messages = (0..<120).map { i in
            OutboxMessage(workspaceID: workspace, messageID: "m-\(i)", customerID: CustomerID(trusted: "c-1"), campaignID: nil, channel: .sms,
                          nextAttemptAt: now, createdAt: now, updatedAt: now, sealedPayload: [1])
        }
        _ = try await store.enqueue(messages, workspace: workspace)
        let claims = try await withThrowingTaskGroup(of: [String].self) { group in
            for node in 0..<4 {
                group.addTask {
                    var mine: [String] = []
                    while true {
                        let batch = try await store.claimDueMessages(node: "n\(node)", route: .providers, now: now, leaseUntil: now.addingTimeInterval(60), limit: 7)
                        if batch.isEmpty { return mine }
                        mine += batch.map(\.messageID)
                    }
                }
            }
            return try await group.reduce(into: [String]()) { $0 += $1 }
        }
        #expect(claims.count == 120 && Set(claims).count == 120)
        // Leases still running: nothing to release for a new node; once they ran out, everything.
        #expect(try await store.releaseClaims(node: "n9", now: now) == 0)
        #expect(try await store.releaseClaims(node: "n9", now: now.addingTimeInterval(61)) == 120)
    }

    @Test(arguments: StoreBackend.allCases)
    func aRelaysMessagesAreClaimedByItsRouteOnly(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func message(_ id: String, relay: Bool) -> OutboxMessage {
            OutboxMessage(workspaceID: workspace, messageID: id, customerID: CustomerID(trusted: "c-1"), campaignID: nil, channel: .sms,
                          nextAttemptAt: now, createdAt: now, updatedAt: now, sealedPayload: [1], viaRelay: relay)
        }
        _ = try await store.enqueue([message("node", relay: false), message("relay", relay: true)], workspace: workspace)
        #expect(try await store.message("relay", workspace: workspace)?.viaRelay == true)
        #expect(try await store.message("node", workspace: workspace)?.viaRelay == false)
        let other = WorkspaceID(trusted: "other")
        #expect(try await store.claimDueMessages(node: "r", route: .relay(other), now: now, leaseUntil: now + 60, limit: 10).isEmpty)
        #expect(try await store.claimDueMessages(node: "n", route: .providers, now: now, leaseUntil: now + 60, limit: 10).map(\.messageID) == ["node"])
        let relayed = try await store.claimDueMessages(node: "r", route: .relay(workspace), now: now, leaseUntil: now + 60, limit: 10)
        #expect(relayed.map(\.messageID) == ["relay"] && relayed.first?.viaRelay == true)
    }

    @Test(arguments: StoreBackend.allCases)
    func outboxClaimsRecordsAndReleases(_ backend: StoreBackend) async throws {
        let store = try await seeded(backend)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        func message(_ id: String, due: Date = now) -> OutboxMessage {
            OutboxMessage(workspaceID: workspace, messageID: id, customerID: CustomerID(trusted: "c-1"), campaignID: "camp", channel: .sms,
                          nextAttemptAt: due, createdAt: now, updatedAt: now, sealedPayload: [1, 2, 3])
        }
        #expect(try await store.enqueue([message("a"), message("b", due: now.addingTimeInterval(60)), message("a")], workspace: workspace)
            == [true, true, false])
        let claimed = try await store.claimDueMessages(node: "n1", route: .providers, now: now, leaseUntil: now.addingTimeInterval(120), limit: 10)
        #expect(claimed.map(\.messageID) == ["a"] && claimed.first?.status == .sending)
        #expect(try await store.claimDueMessages(node: "n2", route: .providers, now: now, leaseUntil: now.addingTimeInterval(120), limit: 10).isEmpty)
        // Another node starting leaves a live claim alone; the node that made it releases it (a restart).
        #expect(try await store.releaseClaims(node: "n2", now: now) == 0)
        // Renewals extend only the node's own claims, and only while they hold.
        #expect(try await store.renewClaims(node: "n2", now: now, until: now.addingTimeInterval(300)) == 0)
        #expect(try await store.renewClaims(node: "n1", now: now.addingTimeInterval(100), until: now.addingTimeInterval(220)) == 1)
        #expect(try await store.message("a", workspace: workspace)?.nextAttemptAt == now.addingTimeInterval(220))
        #expect(try await store.renewClaims(node: "n1", now: now.addingTimeInterval(230), until: now.addingTimeInterval(350)) == 0,
                "a claim that ran out was renewed")
        #expect(try await store.releaseClaims(node: "n1", now: now) == 1)
        var sent = try #require(try await store.claimDueMessages(node: "n1", route: .providers, now: now, leaseUntil: now.addingTimeInterval(120), limit: 10).first)
        sent.status = .sent
        sent.providerMessageID = "SM1"
        sent.sealedPayload = nil
        let change = MessageStatusChange(status: .sent, at: now)
        #expect(try await store.record(sent, change: change, event: OutboundEvent.status(of: sent, change), onlyIf: .sending))
        // A second writer that expected `sending` does not overwrite what is there now.
        #expect(try await !store.record(sent, change: change, event: nil, onlyIf: .sending))
        #expect(try await store.message(providerMessageID: "SM1", workspace: workspace)?.messageID == "a")
        #expect(try await store.message("a", workspace: workspace)?.sealedPayload == nil)
        #expect(try await store.messageHistory("a", workspace: workspace).map(\.status) == [.queued, .sent])
        #expect(try await store.messages(["a", "b", "c"], workspace: workspace).count == 2)
        // A batch cancels what is still pending in its own transaction, with the reason as the error code.
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [],
                                               cancelMessages: [MessageCancellation(customerID: CustomerID(trusted: "c-1"), reason: .restricted)]))
        let cancelled = try #require(try await store.message("b", workspace: workspace))
        #expect(cancelled.status == .cancelled && cancelled.sealedPayload == nil)
        #expect(try await store.messageHistory("b", workspace: workspace).last?.errorCode == "restricted")
        #expect(try await store.message("a", workspace: workspace)?.status == .sent)
        let events = try await store.pendingEvents(workspace: workspace, limit: 10)
        #expect(events.compactMap(\.status) == [.queued, .queued, .sent, .cancelled])
        #expect(events.last?.errorCode == "restricted")
    }

    static func label(_ outcome: MutationOutcome) -> String {
        switch outcome {
        case .created: "created"
        case .updated: "updated"
        case .skipped: "skipped"
        case .erased: "erased"
        case .refused: "refused"
        }
    }
}
