import DomicileCore
import Foundation
import Metrics

/// When a message that could not be handed over is tried again: exponential backoff with jitter,
/// and a dead letter after `maximumAttempts`. The nodes' dispatcher and the relay's reports both
/// follow it.
public struct RetryPolicy: Sendable {
    public var maximumAttempts: Int
    public var baseBackoff: Duration
    public var maximumBackoff: Duration

    public init(maximumAttempts: Int = 8, baseBackoff: Duration = .seconds(2), maximumBackoff: Duration = .seconds(600)) {
        self.maximumAttempts = maximumAttempts
        self.baseBackoff = baseBackoff
        self.maximumBackoff = maximumBackoff
    }

    /// When the next attempt is due after `attempts` attempts; nil when there is none (dead letter).
    public func nextAttempt(after attempts: Int, now: Date) -> Date? {
        guard attempts < maximumAttempts else { return nil }
        let exponential = baseBackoff * (1 << min(max(attempts - 1, 0), 20))
        let delay = min(maximumBackoff, exponential) * Double.random(in: 0.5...1.0)
        return now.addingTimeInterval(Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
    }
}

/// What the relay says became of one message it was handed.
public enum RelayOutcome: Sendable, Hashable {
    /// The provider took it; its callbacks name it by this id.
    case sent(providerMessageID: String)
    /// Worth another attempt (the provider was down, throttled, unreachable).
    case transient(code: String)
    /// Will not go however often it is tried (the brand's key cannot open it, a template variable is missing…).
    case permanent(code: String)
    /// The provider refused the address for good.
    case bounced(code: String)
}

/// A client-mode message accepted for the relay, or why not.
enum RelayQueueing {
    case queued(OutboxMessage)
    case refused(MessageRefusal)
}

extension Vault {
    static let relayRetry = RetryPolicy()

    /// The node name a workspace's relay claims under (one relay per workspace holds the claims).
    static func relayNode(_ workspace: WorkspaceID) -> String { "relay:\(workspace.rawValue)" }

    /// A client-mode message for the outbox: what the relay needs, sealed with the customer's
    /// data key. The templates stay as the main data center sent them (the relay renders them once
    /// it has opened the values); the attributes are the brand's envelopes, and values in clear
    /// only for attributes the schema marks non-PII.
    func relayMessage(_ request: MessageRequest, item: JSONValue, customer: StoredCustomer, keys: WorkspaceKeys,
                      needed: Set<String>, now: Date) throws -> RelayQueueing {
        let cipher = try Envelope.CustomerCipher(dataKey: keys.dataKey(of: customer), workspace: customer.workspaceID,
                                                 customer: customer.customerID)
        var attributes: [String: JSONValue] = [:]
        for (name, sealed) in customer.attributes where needed.contains(name) {
            let attribute = AttributeName(trusted: name)
            attributes[name] = try Envelope.kind(of: sealed) == .client
                ? try cipher.openEnvelope(sealed, attribute: attribute).json
                : try cipher.open(sealed, attribute: attribute).json
        }
        guard attributes[request.channel.contactAttribute.rawValue] != nil else { return .refused(.noContactForChannel) }
        // An opt-out the brand left in clear is honoured here; one it encrypted, by the relay.
        if case .bool(true)? = attributes[request.channel.optOutAttribute.rawValue] { return .refused(.noConsent) }
        let payload: JSONValue = .object(["content": item["content"] ?? .null, "data": item["data"] ?? .null, "attributes": .object(attributes)])
        var writer = JSONWriter()
        writer.value(payload)
        let sealed = try cipher.seal(.string(String(decoding: writer.bytes, as: UTF8.self)), attribute: Self.outboxAttribute(request.messageID))
        return .queued(OutboxMessage(workspaceID: customer.workspaceID, messageID: request.messageID, customerID: customer.customerID,
                                      campaignID: request.campaignID, channel: request.channel, nextAttemptAt: now, createdAt: now,
                                      updatedAt: now, sealedPayload: sealed, viaRelay: true))
    }

    /// Hands a client-mode workspace's due messages to its relay: each claimed for `lease` (due
    /// again if no report comes), opened from Domicile's layer only. What the relay receives holds
    /// the brand's envelopes, never a value Domicile could read. A message whose customer was
    /// erased meanwhile is cancelled here instead.
    public func claimForRelay(workspace: WorkspaceRecord, actor: Actor, limit: Int, lease: Duration) async throws -> [JSONValue] {
        try actor.require(.relay)
        try requireClientMode(workspace)
        guard (1...500).contains(limit) else { throw Failure(.attribute, attribute: "limit", "limit must be 1 to 500") }
        guard (10...3600).contains(lease.components.seconds) else {
            throw Failure(.attribute, attribute: "lease_seconds", "lease_seconds must be 10 to 3600")
        }
        let now = Date()
        let claimed = try await store.claimDueMessages(node: Self.relayNode(workspace.id), route: .relay(workspace.id), now: now,
                                                       leaseUntil: now.addingTimeInterval(Double(lease.components.seconds)), limit: limit)
        var handed: [JSONValue] = []
        for message in claimed {
            guard let sealed = message.sealedPayload,
                  let wrapped = try await store.wrappedDataKey(of: message.customerID, workspace: message.workspaceID)
            else {
                try await settle(message, status: .cancelled, errorCode: "erased", providerMessageID: nil)
                continue
            }
            let dataKey = try await keyring.dataKey(wrapped: wrapped, customer: message.customerID, workspace: message.workspaceID)
            guard case .string(let json) = try Envelope.open(sealed, with: dataKey, workspace: message.workspaceID, customer: message.customerID,
                                                              attribute: Self.outboxAttribute(message.messageID)),
                  case .object(var body) = try JSONParser.parse(Array(json.utf8))
            else { throw KeyError.malformedCiphertext }
            body["message_id"] = .string(message.messageID)
            body["customer_id"] = .string(message.customerID.rawValue)
            body["channel"] = .string(message.channel.rawValue)
            body["attempt"] = .integer(Int64(message.attempts + 1))
            if let campaign = message.campaignID { body["campaign_id"] = .string(campaign) }
            handed.append(.object(body))
        }
        Counter(label: "domicile_relay_handovers_total").increment(by: Int64(handed.count))
        return handed
    }

    /// Records what the relay reports of messages it was handed. A report for a message that is
    /// no longer out with the relay (already reported, cancelled by an erasure, its lease run out
    /// and handed again) changes nothing.
    /// - Returns: per message id, whether the report was recorded.
    public func recordRelayResults(_ results: [(messageID: String, outcome: RelayOutcome)], workspace: WorkspaceRecord,
                                   actor: Actor) async throws -> [Bool] {
        try actor.require(.relay)
        try requireClientMode(workspace)
        // Concurrently, so that the store's group commit makes the batch one write.
        return try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            for (position, result) in results.enumerated() {
                group.addTask { (position, try await self.recordRelayResult(result.messageID, result.outcome, workspace: workspace.id)) }
            }
            var recorded = [Bool](repeating: false, count: results.count)
            for try await (position, done) in group { recorded[position] = done }
            return recorded
        }
    }

    private func recordRelayResult(_ messageID: String, _ outcome: RelayOutcome, workspace: WorkspaceID) async throws -> Bool {
        guard var message = try await store.message(messageID, workspace: workspace), message.viaRelay, message.status == .sending else {
            return false
        }
        message.attempts += 1
        switch outcome {
        case .sent(let providerID):
            return try await settle(message, status: .sent, errorCode: nil, providerMessageID: providerID)
        case .permanent(let code):
            return try await settle(message, status: .deadLetter, errorCode: code, providerMessageID: nil)
        case .bounced(let code):
            return try await settle(message, status: .bounced, errorCode: code, providerMessageID: nil)
        case .transient(let code):
            let now = Date()
            guard let next = Self.relayRetry.nextAttempt(after: message.attempts, now: now) else {
                return try await settle(message, status: .deadLetter, errorCode: code, providerMessageID: nil)
            }
            message.status = .queued
            message.errorCode = code
            message.updatedAt = now
            message.nextAttemptAt = next
            return try await store.record(message, change: MessageStatusChange(status: .queued, at: now, errorCode: code),
                                          event: nil, onlyIf: .sending)
        }
    }

    /// Applies the provider statuses the relay received in its callbacks (delivered, read, a
    /// later bounce or failure), as a node applies its own providers' callbacks.
    public func applyRelayStatus(_ reference: ProviderReference, status: MessageStatus, errorCode: String?, workspace: WorkspaceRecord,
                                 actor: Actor) async throws -> Bool {
        try actor.require(.relay)
        try requireClientMode(workspace)
        guard [.sent, .delivered, .read, .bounced, .failed].contains(status) else {
            throw Failure(.attribute, attribute: "status", "status must be sent, delivered, read, bounced or failed")
        }
        return try await applyProviderStatus(reference, status: status, errorCode: errorCode, workspace: workspace.id)
    }

    func requireClientMode(_ workspace: WorkspaceRecord) throws(Failure) {
        guard workspace.protection == .client else {
            throw Failure(.conflict, "this workspace encrypts values itself (protection vault): its messages go to providers from Domicile, not to a relay")
        }
    }

    /// A final status for a message out with the relay: the outbox copy goes with it.
    @discardableResult
    private func settle(_ message: OutboxMessage, status: MessageStatus, errorCode: String?, providerMessageID: String?) async throws -> Bool {
        var settled = message
        settled.status = status
        settled.errorCode = errorCode
        settled.providerMessageID = providerMessageID ?? message.providerMessageID
        settled.sealedPayload = nil
        settled.updatedAt = Date()
        let change = MessageStatusChange(status: status, at: settled.updatedAt, errorCode: errorCode)
        return try await store.record(settled, change: change, event: OutboundEvent.status(of: settled, change), onlyIf: .sending)
    }
}
