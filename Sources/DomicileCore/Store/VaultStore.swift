import Foundation

/// What a mutation decided once it saw the customer's current row.
public enum MutationDecision: Sendable {
    case write(StoredCustomer)
    /// Crypto-shredding: the row (with its wrapped data key) and its blind-index entries are
    /// deleted; a tombstone keyed by a digest of the customer id is kept, naming no one.
    case erase(tombstone: [UInt8])
    /// Nothing to do (for example `update_existing_only` on an unknown customer).
    case skip
    case refuse(Failure)
}

/// A change to one customer, decided inside the store's transaction against the current row.
///
/// The store calls `resolve` with the row as it is at that moment (nil when absent) and writes
/// whatever it returns; the work that can be done beforehand (encryption) is done by the caller
/// and reused when the row has not changed in between.
public struct CustomerMutation: Sendable {
    /// A row decided before the transaction against the row read then (`assumed`, nil when
    /// the customer did not exist).
    public struct Prepared: Sendable {
        public var assumed: StoredCustomer?
        public var row: StoredCustomer

        public init(assumed: StoredCustomer?, row: StoredCustomer) {
            self.assumed = assumed
            self.row = row
        }
    }

    public var customerID: CustomerID
    public var resolve: @Sendable (StoredCustomer?) throws -> MutationDecision
    /// When set, the store may write `row` without reading the customer again, provided the row
    /// is still as assumed (absent, or at the assumed revision); otherwise it reads the current
    /// row and calls `resolve` as usual.
    public var prepared: Prepared?

    public init(customerID: CustomerID, prepared: Prepared? = nil,
                resolve: @escaping @Sendable (StoredCustomer?) throws -> MutationDecision) {
        self.customerID = customerID
        self.prepared = prepared
        self.resolve = resolve
    }
}

public enum MutationOutcome: Sendable {
    case created(StoredCustomer)
    case updated(StoredCustomer)
    case skipped
    case erased
    case refused(Failure)
}

/// Everything one request writes: it is committed durably, all or nothing, before the store answers.
public struct CommitBatch: Sendable {
    public var workspaceID: WorkspaceID
    public var mutations: [CustomerMutation]
    /// Attributes seen for the first time, added to the workspace's schema in the same transaction.
    public var schemaAdditions: [AttributeDefinition]
    /// Audit entries, chained in the same transaction as the change they record.
    public var audit: AuditAppend?
    /// Events for the main data center, queued in the same transaction.
    public var events: [OutboundEvent]
    /// Customers whose messages not yet handed to a provider are cancelled (their payloads
    /// deleted, a `cancelled` status event queued) in the same transaction, so no crash can
    /// leave a message queued for a customer erased or restricted by this batch.
    public var cancelMessages: [MessageCancellation]

    public init(workspaceID: WorkspaceID, mutations: [CustomerMutation], schemaAdditions: [AttributeDefinition] = [],
                audit: AuditAppend? = nil, events: [OutboundEvent] = [], cancelMessages: [MessageCancellation] = []) {
        self.workspaceID = workspaceID
        self.mutations = mutations
        self.schemaAdditions = schemaAdditions
        self.audit = audit
        self.events = events
        self.cancelMessages = cancelMessages
    }
}

/// Audit entries to append to a workspace's chain, and the key that links them.
public struct AuditAppend: Sendable {
    public var drafts: [AuditDraft]
    public var key: AuditChainKey

    public init(_ drafts: [AuditDraft], key: AuditChainKey) {
        self.drafts = drafts
        self.key = key
    }
}

/// A customer's pending messages to cancel, and the error code their `cancelled` status carries
/// to the main data center.
public struct MessageCancellation: Sendable, Hashable {
    public enum Reason: String, Sendable, Hashable {
        /// The customer was erased: the key that sealed the payload is gone.
        case erased
        /// Processing of the customer's data was restricted.
        case restricted
    }

    public var customerID: CustomerID
    public var reason: Reason

    public init(customerID: CustomerID, reason: Reason) {
        self.customerID = customerID
        self.reason = reason
    }
}

public enum StoreError: Error, Sendable, CustomStringConvertible {
    case alreadyExists(String)
    case notFound(String)
    case corrupt(String)
    /// The store's disk (or quota) is full: nothing was written, and the same write can succeed
    /// once space is freed. A condition of the node, not of the request.
    case full
    /// The store cannot be reached (a database server down or restarting): nothing was written,
    /// and the same write can succeed once it answers again.
    case unavailable

    public var description: String {
        switch self {
        case .alreadyExists(let what): "\(what) already exists"
        case .notFound(let what): "\(what) not found"
        case .corrupt(let what): "stored data is corrupt: \(what)"
        case .full: "the store's storage is full"
        case .unavailable: "the store cannot be reached"
        }
    }
}

/// Where Domicile keeps its state: one protocol per aggregate, so that a backend, a test double
/// or a reader sees only what it needs. Storage is untrusted: everything identifying arrives
/// sealed. Every backend passes the same conformance suite.
public protocol VaultStore: WorkspaceStore, CustomerStore, OperatorStore, SubjectRequestStore, AuditStore, OutboxStore,
    CoordinationStore, KeyRotationStore {
    /// Checks that the store answers (readiness).
    func ping() async throws
    /// Makes deleted data unrecoverable from the store's own files (a backend that keeps old
    /// copies of pages, such as a write-ahead log, overwrites or truncates them).
    func purgeDeleted() async throws
}

/// Workspaces and everything configured per workspace: keys, data API keys, the schema, the
/// main data center's send keys and the providers.
public protocol WorkspaceStore: Sendable {
    /// Creates a workspace with its first key and data API key; `StoreError.alreadyExists` if the id is taken.
    func createWorkspace(_ workspace: WorkspaceRecord, key: WorkspaceKeyRecord, apiKey: APIKeyRecord) async throws
    func workspace(_ id: WorkspaceID) async throws -> WorkspaceRecord?
    func workspaces() async throws -> [WorkspaceRecord]
    /// `StoreError.notFound` if there is no such workspace.
    func updateWorkspace(_ workspace: WorkspaceRecord) async throws
    func workspaceKeys(_ id: WorkspaceID) async throws -> [WorkspaceKeyRecord]
    func addWorkspaceKey(_ key: WorkspaceKeyRecord) async throws

    // Data API keys
    func apiKey(workspace: WorkspaceID, keyID: String) async throws -> APIKeyRecord?
    func apiKeys(workspace: WorkspaceID) async throws -> [APIKeyRecord]
    /// Inserts or replaces these keys in one transaction (creation, rotation, revocation).
    func saveAPIKeys(_ keys: [APIKeyRecord]) async throws

    // Schema
    func schema(_ workspace: WorkspaceID) async throws -> [AttributeDefinition]
    func saveSchemaAttribute(_ definition: AttributeDefinition, workspace: WorkspaceID) async throws

    // Send keys and providers
    func saveSendKey(_ key: SendKeyRecord) async throws
    func sendKey(workspace: WorkspaceID, keyID: String) async throws -> SendKeyRecord?
    func sendKeys(workspace: WorkspaceID) async throws -> [SendKeyRecord]
    func saveProvider(_ provider: ProviderRecord) async throws
    func provider(workspace: WorkspaceID, channel: Channel) async throws -> ProviderRecord?
}

/// Customers, their blind-index entries and tombstones, and the one transaction that changes
/// them together with what records the change.
public protocol CustomerStore: Sendable {
    func customer(_ id: CustomerID, workspace: WorkspaceID) async throws -> StoredCustomer?
    func customers(_ ids: [CustomerID], workspace: WorkspaceID) async throws -> [CustomerID: StoredCustomer]
    /// Only the customer's wrapped data key (what opening an outbox copy needs); nil when the
    /// customer does not exist (erased).
    func wrappedDataKey(of id: CustomerID, workspace: WorkspaceID) async throws -> [UInt8]?
    /// The customers whose `attribute` has this blind-index digest.
    func customerIDs(attribute: AttributeName, digest: [UInt8], workspace: WorkspaceID) async throws -> [CustomerID]
    /// Customers of a workspace in id order, after `after` (paging), at most `limit`.
    func customerIDs(workspace: WorkspaceID, after: CustomerID?, limit: Int) async throws -> [CustomerID]
    /// Customers not updated since `before`, at most `limit` (retention).
    func customerIDs(workspace: WorkspaceID, updatedBefore before: Date, limit: Int) async throws -> [CustomerID]
    /// Whether a customer id with this digest was erased.
    func isTombstoned(_ digest: [UInt8], workspace: WorkspaceID) async throws -> Bool

    /// Applies the batch in one transaction, durable before this returns, and reports each
    /// mutation's outcome in order. Mutations of one batch see each other's writes.
    func commit(_ batch: CommitBatch) async throws -> [MutationOutcome]
}

/// Operators of the brand and their sessions.
public protocol OperatorStore: Sendable {
    /// Inserts or replaces; `StoreError.alreadyExists` when another operator has the same e-mail digest.
    func saveOperator(_ record: OperatorRecord) async throws
    func operatorRecord(id: String) async throws -> OperatorRecord?
    /// Counts a failed login in one atomic step: the count goes up by one, and when it reaches
    /// `maximum` the account is locked until `lockUntil` and the count starts again from zero.
    /// Concurrent failures each count (a read-modify-write would let a burst of parallel guesses
    /// count as one). A failure while the account is locked at `now` changes nothing: it neither
    /// counts nor extends the lock.
    func recordFailedLogin(operatorID: String, maximum: Int, now: Date, lockUntil: Date) async throws
    /// Clears the failure count after a good password, in one atomic step, unless the account is
    /// locked at `now` (a lock set by concurrent failures while the password was checked).
    /// - Returns: false when the account is locked, and nothing changed.
    func recordSuccessfulLogin(operatorID: String, now: Date) async throws -> Bool
    func operatorRecord(emailDigest: [UInt8], workspace: WorkspaceID) async throws -> OperatorRecord?
    func operators(workspace: WorkspaceID) async throws -> [OperatorRecord]
    func saveSession(_ session: SessionRecord) async throws
    func session(tokenHash: [UInt8]) async throws -> SessionRecord?
    func deleteSession(tokenHash: [UInt8]) async throws
}

/// Data-subject requests (OpenGDPR) and their status.
public protocol SubjectRequestStore: Sendable {
    func saveSubjectRequest(_ record: SubjectRequestRecord) async throws
    func subjectRequest(id: String, workspace: WorkspaceID) async throws -> SubjectRequestRecord?
}

/// The audit log, read back. Entries are appended by `CustomerStore.commit`, in the transaction
/// of the change they record.
public protocol AuditStore: Sendable {
    func auditEntries(workspace: WorkspaceID, filter: AuditFilter) async throws -> [AuditEntry]
    /// The last (seq, hash) recorded for the workspace's chain, kept apart from the entries so
    /// that removing entries from the end is detected.
    func auditHead(workspace: WorkspaceID) async throws -> (seq: Int64, hash: [UInt8])?
}

/// The outbox of messages to providers, and the events for the main data center.
public protocol OutboxStore: Sendable {
    /// Durably adds messages whose ids are new; answers, per message, whether it was added
    /// (false: the id was seen before, and nothing changed).
    func enqueue(_ messages: [OutboxMessage], workspace: WorkspaceID) async throws -> [Bool]
    func message(_ id: String, workspace: WorkspaceID) async throws -> OutboxMessage?
    func messages(_ ids: [String], workspace: WorkspaceID) async throws -> [String: OutboxMessage]
    func message(providerMessageID: String, workspace: WorkspaceID) async throws -> OutboxMessage?
    func messageHistory(_ id: String, workspace: WorkspaceID) async throws -> [MessageStatusChange]
    /// Takes up to `limit` messages of `route` that are due, marking them `sending` by `node`
    /// until `leaseUntil` (a message whose sender died becomes due again when its lease runs out).
    /// Nodes claiming at once never take the same message.
    func claimDueMessages(node: String, route: OutboxRoute, now: Date, leaseUntil: Date, limit: Int) async throws -> [OutboxMessage]
    /// Saves a message's new state, appends the change to its history and queues the event for
    /// the main data center, in one transaction.
    /// With `onlyIf`, nothing is written unless the stored status is still that one (the
    /// dispatcher must not overwrite a callback's `delivered` or an erasure's `cancelled`).
    /// - Returns: whether it was written.
    @discardableResult
    func record(_ message: OutboxMessage, change: MessageStatusChange?, event: OutboundEvent?, onlyIf: MessageStatus?) async throws -> Bool
    /// Makes due again now the messages `node` had claimed (it restarted: its sends died with it),
    /// those whose lease ran out, and those claimed by a version that did not name its node;
    /// never a claim of another node whose lease still runs.
    func releaseClaims(node: String, now: Date) async throws -> Int
    /// Extends to `until` the lease of every message `node` has claimed whose lease has not run
    /// out at `now` (a claim that ran out may be another node's by now, so it is left alone).
    /// - Returns: how many claims were extended.
    func renewClaims(node: String, now: Date, until: Date) async throws -> Int

    /// Undelivered events of one workspace, oldest first.
    func pendingEvents(workspace: WorkspaceID, limit: Int) async throws -> [OutboundEvent]
    func markEventsDelivered(_ ids: [String]) async throws

    /// What waits in the outbox and for the main data center, across workspaces: for monitoring.
    func outboxStatistics() async throws -> OutboxStatistics
}

public struct OutboxStatistics: Sendable, Hashable {
    /// Messages queued or being handed to a provider.
    public var depth: Int
    /// When the queued message due first is due (it may be in the future: a retry's backoff).
    public var oldestDue: Date?
    /// Events not yet delivered to the main data center.
    public var pendingEvents: Int

    public init(depth: Int, oldestDue: Date?, pendingEvents: Int) {
        self.depth = depth
        self.oldestDue = oldestDue
        self.pendingEvents = pendingEvents
    }
}

/// What the nodes sharing a store agree on through it: which node runs a job meant to run once
/// per region, and the counts that limits are checked against.
/// What rotating a workspace key needs: which versions customers' data keys are wrapped with,
/// rewrapping them, and removing a version nothing uses. A wrapped data key names its version in
/// bytes 2 to 5 (big-endian), which is what the queries read.
public protocol KeyRotationStore: Sendable {
    /// Customers per workspace key version their data key is wrapped with.
    func dataKeyVersions(workspace: WorkspaceID) async throws -> [UInt32: Int]
    /// Customers whose data key is not wrapped with `version`, in customer id order after `after`.
    func dataKeysNotWrapped(with version: UInt32, workspace: WorkspaceID, after: CustomerID?, limit: Int) async throws
        -> [(customerID: CustomerID, wrapped: [UInt8])]
    /// Replaces wrapped data keys, each only if it is still `old` (nothing else of the row changes).
    /// - Returns: how many were replaced.
    func rewrapDataKeys(_ changes: [(customerID: CustomerID, old: [UInt8], new: [UInt8])], workspace: WorkspaceID) async throws -> Int
    /// Deletes a workspace key version, in one statement, unless a customer's data key or the
    /// workspace's secrets key still names it. - Returns: whether it was deleted.
    func retireWorkspaceKey(_ version: UInt32, workspace: WorkspaceID) async throws -> Bool
    /// Replaces the wrapped form of workspace key versions (a root key rotation), all in one transaction.
    func replaceWrappedWorkspaceKeys(_ records: [WorkspaceKeyRecord]) async throws
    /// Sets the blind-index state of several versions of one workspace (nil clears it), in one transaction.
    func setBlindIndexStates(_ states: [UInt32: BlindIndexState?], workspace: WorkspaceID) async throws
    func workspaceSecrets(_ id: WorkspaceID) async throws -> WorkspaceSecretsRecord?
    /// Stores the record unless the workspace already has one. - Returns: whether it was stored.
    func createWorkspaceSecrets(_ record: WorkspaceSecretsRecord) async throws -> Bool
    /// Audit entries whose reason was sealed with a workspace key version (format byte 1) and has
    /// no copy yet, in seq order.
    func auditReasonsToReseal(workspace: WorkspaceID, limit: Int) async throws -> [(seq: Int64, sealed: [UInt8])]
    /// Applies each change whose stored value is still its `old` one, in one transaction.
    /// - Returns: how many were applied.
    func reseal(_ changes: [SecretReseal]) async throws -> Int
}

public protocol CoordinationStore: Sendable {
    /// Takes or renews `job`'s lease for `holder` until `until`. Granted when no one holds it,
    /// when `holder` already does, or when the holder's lease had run out at `now`.
    func acquireLease(_ job: String, holder: String, now: Date, until: Date) async throws -> Bool
    /// Adds to the counters of one fixed window (`scope`, `windowStart`) and returns each key's
    /// total across every node. An increment of 0 only reads. Counters of windows that ended
    /// before `now` minus a minute may be deleted.
    func addToCounters(scope: String, windowStart: Int64, windowEnd: Int64, increments: [String: Int],
                       now: Date) async throws -> [String: Int]
}
