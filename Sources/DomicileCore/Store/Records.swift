import Foundation

/// A brand's tenancy on this node.
public struct WorkspaceRecord: Sendable, Hashable {
    public static let defaultRateLimitPerMinute = 1_000

    public var id: WorkspaceID
    /// The region whose law the workspace's data lives under; a workspace lives in one region.
    public var region: String
    public var rateLimitPerMinute: Int
    public var suspended: Bool
    /// Accept customer ids that look like e-mail addresses or phone numbers.
    public var allowIdentifyingCustomerIDs: Bool
    public var createdAt: Date

    public init(id: WorkspaceID, region: String, rateLimitPerMinute: Int = Self.defaultRateLimitPerMinute,
                suspended: Bool = false, allowIdentifyingCustomerIDs: Bool = false, createdAt: Date = Date()) {
        self.id = id
        self.region = region
        self.rateLimitPerMinute = rateLimitPerMinute
        self.suspended = suspended
        self.allowIdentifyingCustomerIDs = allowIdentifyingCustomerIDs
        self.createdAt = createdAt
    }
}

/// One version of a workspace key, as stored: wrapped by the root key, never in clear.
public struct WorkspaceKeyRecord: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    public var version: UInt32
    public var wrappedKey: [UInt8]
    public var createdAt: Date

    public init(workspaceID: WorkspaceID, version: UInt32, wrappedKey: [UInt8], createdAt: Date = Date()) {
        self.workspaceID = workspaceID
        self.version = version
        self.wrappedKey = wrappedKey
        self.createdAt = createdAt
    }
}

/// A data API key: only a hash of the secret is kept.
public struct APIKeyRecord: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    /// The public part of the key, shown in listings and logs.
    public var keyID: String
    public var secretHash: [UInt8]
    public var createdAt: Date
    /// Set when the key is rotated: it keeps working until then.
    public var expiresAt: Date?
    public var revokedAt: Date?

    public init(workspaceID: WorkspaceID, keyID: String, secretHash: [UInt8], createdAt: Date = Date(),
                expiresAt: Date? = nil, revokedAt: Date? = nil) {
        self.workspaceID = workspaceID
        self.keyID = keyID
        self.secretHash = secretHash
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    public func isActive(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}

/// A customer as the store holds it: one row, every value sealed.
///
/// `attributes` maps attribute names to sealed values (see `SealedValue`); `blindIndex` maps
/// indexed attribute names to their blind-index digests. Neither holds anything in clear.
public struct StoredCustomer: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    public var customerID: CustomerID
    /// The customer's data key, wrapped by a workspace key.
    public var dataKey: [UInt8]
    public var attributes: [String: [UInt8]]
    public var blindIndex: [String: [UInt8]]
    public var restricted: Bool
    public var createdAt: Date
    public var updatedAt: Date
    /// Incremented on every write: lets work prepared outside a transaction detect a change.
    public var revision: Int64

    public init(workspaceID: WorkspaceID, customerID: CustomerID, dataKey: [UInt8],
                attributes: [String: [UInt8]], blindIndex: [String: [UInt8]], restricted: Bool = false,
                createdAt: Date, updatedAt: Date, revision: Int64) {
        self.workspaceID = workspaceID
        self.customerID = customerID
        self.dataKey = dataKey
        self.attributes = attributes
        self.blindIndex = blindIndex
        self.restricted = restricted
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.revision = revision
    }
}
