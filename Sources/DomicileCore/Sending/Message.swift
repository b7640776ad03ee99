import Foundation

/// The channels Domicile delivers on.
public enum Channel: String, Sendable, Hashable, Codable, CaseIterable {
    case email, sms, whatsapp

    /// The attribute that holds the customer's contact for this channel.
    public var contactAttribute: AttributeName {
        switch self {
        case .email: AttributeName(trusted: "email")
        case .sms, .whatsapp: AttributeName(trusted: "mobile")
        }
    }

    /// A boolean attribute that, when true, means the customer opted out of this channel.
    public var optOutAttribute: AttributeName { AttributeName(trusted: "\(rawValue)_opt_out") }
}

/// One status vocabulary for every provider. `bounced` says the address cannot receive (a
/// recipient refused for good, an unknown or unreachable number); `failed`, that this message
/// was not delivered for another reason, the address perhaps still good.
public enum MessageStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case queued, sending, sent, delivered, read, bounced, failed
    case deadLetter = "dead_letter"
    case cancelled

    /// No attempt follows these.
    public var isFinal: Bool {
        switch self {
        case .queued, .sending: false
        default: true
        }
    }
}

/// Why a message was not accepted. Codes only: never an address or a value.
public enum MessageRefusal: String, Sendable, Hashable, Codable {
    case invalidMessage = "invalid_message"
    case unknownCustomer = "unknown_customer"
    case noContactForChannel = "no_contact_for_channel"
    case noConsent = "no_consent"
    case restricted
    case invalidTemplate = "invalid_template"
    case missingVariable = "missing_variable"
    case contentTooLong = "content_too_long"
    case noProvider = "no_provider"
}

/// A message in the outbox. `sealedPayload` (the address and the rendered content) is sealed
/// with the customer's data key and deleted once the provider has the message or it is final.
public struct OutboxMessage: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    public var messageID: String
    public var customerID: CustomerID
    public var campaignID: String?
    public var channel: Channel
    public var status: MessageStatus
    public var attempts: Int
    public var nextAttemptAt: Date
    public var providerMessageID: String?
    public var errorCode: String?
    public var segments: Int?
    public var encoding: String?
    public var createdAt: Date
    public var updatedAt: Date
    public var sealedPayload: [UInt8]?
    /// Handed to the brand's relay (a client-mode workspace) instead of to a provider by a node.
    public var viaRelay: Bool

    public init(workspaceID: WorkspaceID, messageID: String, customerID: CustomerID, campaignID: String?, channel: Channel,
                status: MessageStatus = .queued, attempts: Int = 0, nextAttemptAt: Date, providerMessageID: String? = nil,
                errorCode: String? = nil, segments: Int? = nil, encoding: String? = nil, createdAt: Date, updatedAt: Date,
                sealedPayload: [UInt8]?, viaRelay: Bool = false) {
        self.viaRelay = viaRelay
        self.workspaceID = workspaceID
        self.messageID = messageID
        self.customerID = customerID
        self.campaignID = campaignID
        self.channel = channel
        self.status = status
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.providerMessageID = providerMessageID
        self.errorCode = errorCode
        self.segments = segments
        self.encoding = encoding
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.sealedPayload = sealedPayload
    }
}

/// Which claimers may take a message: the nodes' dispatchers (`providers`), or one workspace's
/// relay. Stored as text: `provider`, or `relay:<workspace>`.
public enum OutboxRoute: Sendable, Hashable {
    case providers
    case relay(WorkspaceID)

    public init(_ message: OutboxMessage) {
        self = message.viaRelay ? .relay(message.workspaceID) : .providers
    }

    public var stored: String {
        switch self {
        case .providers: "provider"
        case .relay(let workspace): "relay:\(workspace.rawValue)"
        }
    }

    public static func isRelay(stored: String) -> Bool { stored.hasPrefix("relay:") }
}

/// One step of a message's history.
public struct MessageStatusChange: Sendable, Hashable {
    public var status: MessageStatus
    public var at: Date
    public var errorCode: String?

    public init(status: MessageStatus, at: Date, errorCode: String? = nil) {
        self.status = status
        self.at = at
        self.errorCode = errorCode
    }
}

/// A workspace's provider for a channel; its settings (credentials among them) are sealed.
public struct ProviderRecord: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    public var channel: Channel
    public var kind: String
    public var sealedSettings: [UInt8]

    public init(workspaceID: WorkspaceID, channel: Channel, kind: String, sealedSettings: [UInt8]) {
        self.workspaceID = workspaceID
        self.channel = channel
        self.kind = kind
        self.sealedSettings = sealedSettings
    }
}

/// A send key of the main data center: its secret is sealed, since verifying an HMAC needs it.
public struct SendKeyRecord: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    public var keyID: String
    public var sealedSecret: [UInt8]
    public var createdAt: Date
    public var expiresAt: Date?
    public var revokedAt: Date?

    public init(workspaceID: WorkspaceID, keyID: String, sealedSecret: [UInt8], createdAt: Date = Date(),
                expiresAt: Date? = nil, revokedAt: Date? = nil) {
        self.workspaceID = workspaceID
        self.keyID = keyID
        self.sealedSecret = sealedSecret
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    /// Relay keys' ids start with this; send keys' with `sk_`.
    public static let relayPrefix = "rk_"

    /// A key of the brand's relay (client mode), not of the main data center.
    public var isRelayKey: Bool { keyID.hasPrefix(Self.relayPrefix) }

    public func isActive(at now: Date) -> Bool {
        revokedAt == nil && (expiresAt.map { now < $0 } ?? true)
    }
}
