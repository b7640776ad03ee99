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
    /// Customers not updated for this many days are erased by the retention job; nil keeps them.
    public var retentionDays: Int?
    /// Refuse data for a customer id that was erased before.
    public var refuseErasedCustomerIDs: Bool
    /// Where events for the main data center are posted; none are sent until it is set.
    public var eventsURL: String?
    /// The key that signs those posts, sealed with the workspace key.
    public var sealedEventsSecret: [UInt8]?
    /// The hosts outbound connections may reach; nil: the providers' documented hosts.
    public var egressHosts: [String]?
    /// Who encrypts the customers' values; chosen when the workspace is created, never changed.
    public var protection: ProtectionMode
    public var createdAt: Date

    /// What outbound connections of this workspace may reach.
    public var egressAllowlist: EgressAllowlist { egressHosts.map(EgressAllowlist.init(hosts:)) ?? .defaults }

    public init(id: WorkspaceID, region: String, rateLimitPerMinute: Int = Self.defaultRateLimitPerMinute,
                suspended: Bool = false, allowIdentifyingCustomerIDs: Bool = false, retentionDays: Int? = nil,
                refuseErasedCustomerIDs: Bool = false, eventsURL: String? = nil, sealedEventsSecret: [UInt8]? = nil,
                egressHosts: [String]? = nil, protection: ProtectionMode = .vault, createdAt: Date = Date()) {
        self.egressHosts = egressHosts
        self.protection = protection
        self.eventsURL = eventsURL
        self.sealedEventsSecret = sealedEventsSecret
        self.retentionDays = retentionDays
        self.refuseErasedCustomerIDs = refuseErasedCustomerIDs
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
    /// What the blind index keyed with this version is doing; nil: nothing (no version marked
    /// active means the first version keys the index, as before the index had versions).
    public var blindIndex: BlindIndexState?

    public init(workspaceID: WorkspaceID, version: UInt32, wrappedKey: [UInt8], createdAt: Date = Date(),
                blindIndex: BlindIndexState? = nil) {
        self.workspaceID = workspaceID
        self.version = version
        self.wrappedKey = wrappedKey
        self.createdAt = createdAt
        self.blindIndex = blindIndex
    }
}

/// A workspace's secrets key, and the keys that must outlive every workspace key version, kept
/// apart from the versions so that any version, the first included, can be retired.
///
/// The secrets key seals the workspace's own secrets (send keys, provider settings, the events
/// secret, operator e-mails, reveal reasons); it is wrapped by a workspace key version exactly as
/// a customer's data key is, and a rotation rewraps it. The derived keys (tombstones, the audit
/// chain, its checkpoints) are sealed with the secrets key: their digests, links and public key
/// must stay comparable for ever, so they are computed once from the first version and kept.
public struct WorkspaceSecretsRecord: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    /// Bytes 2–5 name the workspace key version that wraps it, as in a wrapped data key.
    public var wrappedKey: [UInt8]
    public var sealedDerivedKeys: [UInt8]

    public init(workspaceID: WorkspaceID, wrappedKey: [UInt8], sealedDerivedKeys: [UInt8]) {
        self.workspaceID = workspaceID
        self.wrappedKey = wrappedKey
        self.sealedDerivedKeys = sealedDerivedKeys
    }
}

/// One sealed value replaced by the same value sealed again: applied only if the stored value is
/// still `old`, so a concurrent change (a revocation, a new secret) is never undone.
public enum SecretReseal: Sendable, Hashable {
    /// The secrets key, wrapped with another workspace key version.
    case secretsKey(workspace: WorkspaceID, old: [UInt8], new: [UInt8])
    case eventsSecret(workspace: WorkspaceID, old: [UInt8], new: [UInt8])
    case sendKey(workspace: WorkspaceID, keyID: String, old: [UInt8], new: [UInt8])
    case provider(workspace: WorkspaceID, channel: Channel, old: [UInt8], new: [UInt8])
    case operatorEmail(operatorID: String, old: [UInt8], new: [UInt8])
    /// A copy of an audit entry's reason: the chain links the original's bytes, which stay.
    case auditReason(workspace: WorkspaceID, seq: Int64, copy: [UInt8])
}

/// The state of the blind index keyed with one workspace key version.
///
/// A rotation of the index goes building → active, while the version before goes active →
/// draining → nothing: lookups use the active version only; writes keep the digests of every
/// version that is active or building; the job moves `cursor` through the customers (in id
/// order), and each step waits until `since` is older than every node's cache of this state.
public struct BlindIndexState: Sendable, Hashable {
    public enum Role: String, Sendable, Hashable, CaseIterable {
        /// Digests are being added for every customer; lookups do not use them yet.
        case building
        /// Lookups use these digests.
        case active
        /// Replaced: its digests are being removed from every customer.
        case draining
    }

    public var role: Role
    /// When the role was taken.
    public var since: Date
    /// The last customer the building or draining pass has done; nil: none yet.
    public var cursor: CustomerID?

    public init(role: Role, since: Date = Date(), cursor: CustomerID? = nil) {
        self.role = role
        self.since = since
        self.cursor = cursor
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

/// A person of the brand who uses the operator API. Their e-mail address is personal data too:
/// it is stored sealed, and found at login through a blind-index digest.
public struct OperatorRecord: Sendable, Hashable {
    public var id: String
    public var workspaceID: WorkspaceID
    public var emailDigest: [UInt8]
    public var sealedEmail: [UInt8]
    public var role: Role
    public var viewPII: Bool
    /// bcrypt.
    public var passwordHash: String
    public var failedAttempts: Int
    public var lockedUntil: Date?
    public var createdAt: Date

    public init(id: String, workspaceID: WorkspaceID, emailDigest: [UInt8], sealedEmail: [UInt8], role: Role, viewPII: Bool,
                passwordHash: String, failedAttempts: Int = 0, lockedUntil: Date? = nil, createdAt: Date = Date()) {
        self.id = id
        self.workspaceID = workspaceID
        self.emailDigest = emailDigest
        self.sealedEmail = sealedEmail
        self.role = role
        self.viewPII = viewPII
        self.passwordHash = passwordHash
        self.failedAttempts = failedAttempts
        self.lockedUntil = lockedUntil
        self.createdAt = createdAt
    }

    public var actor: Actor { .operator(id: id, role: role, viewPII: viewPII) }
}

/// A logged-in operator's session: only the token's hash is stored.
public struct SessionRecord: Sendable, Hashable {
    public var tokenHash: [UInt8]
    public var operatorID: String
    public var workspaceID: WorkspaceID
    public var createdAt: Date
    public var expiresAt: Date

    public init(tokenHash: [UInt8], operatorID: String, workspaceID: WorkspaceID, createdAt: Date = Date(), expiresAt: Date) {
        self.tokenHash = tokenHash
        self.operatorID = operatorID
        self.workspaceID = workspaceID
        self.createdAt = createdAt
        self.expiresAt = expiresAt
    }
}

/// A data-subject request (OpenGDPR). It keeps which customers it covered, never the identity
/// values it was asked with; exports are built when they are fetched.
public struct SubjectRequestRecord: Sendable, Hashable {
    public var id: String
    public var workspaceID: WorkspaceID
    public var type: String
    public var status: String
    public var submittedAt: Date?
    public var receivedAt: Date
    public var completedAt: Date?
    public var identityTypes: [String]
    public var customerIDs: [String]
    public var actorType: String
    public var actorID: String

    public init(id: String, workspaceID: WorkspaceID, type: String, status: String, submittedAt: Date?, receivedAt: Date,
                completedAt: Date?, identityTypes: [String], customerIDs: [String], actorType: String, actorID: String) {
        self.id = id
        self.workspaceID = workspaceID
        self.type = type
        self.status = status
        self.submittedAt = submittedAt
        self.receivedAt = receivedAt
        self.completedAt = completedAt
        self.identityTypes = identityTypes
        self.customerIDs = customerIDs
        self.actorType = actorType
        self.actorID = actorID
    }
}

/// An event for the main data center, queued in the same transaction as the change it reports.
/// It carries ids and a type, never a value.
public struct OutboundEvent: Sendable, Hashable {
    public var id: String
    public var workspaceID: WorkspaceID
    /// `erased`, or `message_status`.
    public var type: String
    public var customerID: String
    public var at: Date
    public var messageID: String?
    public var campaignID: String?
    public var channel: Channel?
    public var status: MessageStatus?
    public var errorCode: String?

    public init(id: String = RandomIdentifier.uuid(), workspaceID: WorkspaceID, type: String, customerID: String, at: Date = Date(),
                messageID: String? = nil, campaignID: String? = nil, channel: Channel? = nil, status: MessageStatus? = nil,
                errorCode: String? = nil) {
        self.id = id
        self.workspaceID = workspaceID
        self.type = type
        self.customerID = customerID
        self.at = at
        self.messageID = messageID
        self.campaignID = campaignID
        self.channel = channel
        self.status = status
        self.errorCode = errorCode
    }

    /// A message's status change, as the main data center hears of it.
    public static func status(of message: OutboxMessage, _ change: MessageStatusChange) -> OutboundEvent {
        OutboundEvent(workspaceID: message.workspaceID, type: "message_status", customerID: message.customerID.rawValue, at: change.at,
                      messageID: message.messageID, campaignID: message.campaignID, channel: message.channel, status: change.status,
                      errorCode: change.errorCode)
    }
}

/// Filters for reading the audit log.
public struct AuditFilter: Sendable, Hashable {
    public var action: AuditAction?
    public var customerID: String?
    public var actorID: String?
    public var since: Date?
    public var until: Date?
    public var afterSeq: Int64?
    public var limit: Int

    public init(action: AuditAction? = nil, customerID: String? = nil, actorID: String? = nil, since: Date? = nil,
                until: Date? = nil, afterSeq: Int64? = nil, limit: Int = 100) {
        self.action = action
        self.customerID = customerID
        self.actorID = actorID
        self.since = since
        self.until = until
        self.afterSeq = afterSeq
        self.limit = limit
    }
}

/// How both stores keep a workspace's egress hosts: one host a line (hosts hold no line breaks).
public enum EgressHostsColumn {
    public static func encode(_ hosts: [String]?) -> String? { hosts?.joined(separator: "\n") }
    public static func decode(_ text: String?) -> [String]? {
        text.map { $0.isEmpty ? [] : $0.split(separator: "\n").map(String.init) }
    }
}
