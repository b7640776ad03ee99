import Foundation

/// What a mutation decided once it saw the customer's current row.
public enum MutationDecision: Sendable {
    case write(StoredCustomer)
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
    public var customerID: CustomerID
    public var resolve: @Sendable (StoredCustomer?) throws -> MutationDecision

    public init(customerID: CustomerID, resolve: @escaping @Sendable (StoredCustomer?) throws -> MutationDecision) {
        self.customerID = customerID
        self.resolve = resolve
    }
}

public enum MutationOutcome: Sendable {
    case created(StoredCustomer)
    case updated(StoredCustomer)
    case skipped
    case refused(Failure)
}

/// Everything one request writes: it is committed durably, all or nothing, before the store answers.
public struct CommitBatch: Sendable {
    public var workspaceID: WorkspaceID
    public var mutations: [CustomerMutation]
    /// Attributes seen for the first time, added to the workspace's schema in the same transaction.
    public var schemaAdditions: [AttributeDefinition]

    public init(workspaceID: WorkspaceID, mutations: [CustomerMutation], schemaAdditions: [AttributeDefinition] = []) {
        self.workspaceID = workspaceID
        self.mutations = mutations
        self.schemaAdditions = schemaAdditions
    }
}

public enum StoreError: Error, Sendable, CustomStringConvertible {
    case alreadyExists(String)
    case notFound(String)
    case corrupt(String)

    public var description: String {
        switch self {
        case .alreadyExists(let what): "\(what) already exists"
        case .notFound(let what): "\(what) not found"
        case .corrupt(let what): "stored data is corrupt: \(what)"
        }
    }
}

/// Where Domicile keeps its state. Storage is untrusted: everything identifying arrives sealed.
/// Every backend passes the same conformance suite.
public protocol VaultStore: Sendable {
    /// Checks that the store answers (readiness).
    func ping() async throws

    // MARK: Workspaces
    /// Creates a workspace with its first key and data API key; `StoreError.alreadyExists` if the id is taken.
    func createWorkspace(_ workspace: WorkspaceRecord, key: WorkspaceKeyRecord, apiKey: APIKeyRecord) async throws
    func workspace(_ id: WorkspaceID) async throws -> WorkspaceRecord?
    func workspaces() async throws -> [WorkspaceRecord]
    /// `StoreError.notFound` if there is no such workspace.
    func updateWorkspace(_ workspace: WorkspaceRecord) async throws
    func workspaceKeys(_ id: WorkspaceID) async throws -> [WorkspaceKeyRecord]
    func addWorkspaceKey(_ key: WorkspaceKeyRecord) async throws

    // MARK: Data API keys
    func apiKey(workspace: WorkspaceID, keyID: String) async throws -> APIKeyRecord?
    func apiKeys(workspace: WorkspaceID) async throws -> [APIKeyRecord]
    /// Inserts or replaces these keys in one transaction (creation, rotation, revocation).
    func saveAPIKeys(_ keys: [APIKeyRecord]) async throws

    // MARK: Schema
    func schema(_ workspace: WorkspaceID) async throws -> [AttributeDefinition]
    func saveSchemaAttribute(_ definition: AttributeDefinition, workspace: WorkspaceID) async throws

    // MARK: Customers
    func customer(_ id: CustomerID, workspace: WorkspaceID) async throws -> StoredCustomer?
    func customers(_ ids: [CustomerID], workspace: WorkspaceID) async throws -> [CustomerID: StoredCustomer]
    /// The customers whose `attribute` has this blind-index digest.
    func customerIDs(attribute: AttributeName, digest: [UInt8], workspace: WorkspaceID) async throws -> [CustomerID]
    /// Applies the batch in one durable transaction (fsync'd before this returns) and reports each mutation's outcome
    /// in order. Mutations of one batch see each other's writes.
    func commit(_ batch: CommitBatch) async throws -> [MutationOutcome]
}
