import DomicileCore
import Foundation
import Metrics

extension Vault {
    /// How a provider names a message in its callbacks.
    public enum ProviderReference: Sendable {
        case providerMessageID(String)
        case messageID(String)
    }

    static func rank(_ status: MessageStatus) -> Int {
        switch status {
        case .queued: 0
        case .sending: 1
        case .sent: 2
        case .delivered: 3
        case .read: 4
        case .bounced, .failed, .deadLetter, .cancelled: 5
        }
    }

    /// Applies a provider's status report: history, and an event for the main data center that
    /// carries ids, the status and the provider's error code, never the address the report carried.
    /// A report older than what is known (delivered after read) is kept in the history only.
    /// - Returns: false when no message has this reference.
    @discardableResult
    public func applyProviderStatus(_ reference: ProviderReference, status: MessageStatus, errorCode: String?,
                                    workspace: WorkspaceID) async throws -> Bool {
        let found: OutboxMessage? = switch reference {
        case .providerMessageID(let id): try await store.message(providerMessageID: id, workspace: workspace)
        case .messageID(let id): try await store.message(id, workspace: workspace)
        }
        guard var message = found else { return false }
        let change = MessageStatusChange(status: status, at: Date(), errorCode: errorCode)
        let advances = Self.rank(status) > Self.rank(message.status)
        if advances {
            message.status = status
            message.errorCode = errorCode ?? message.errorCode
            message.updatedAt = change.at
            message.sealedPayload = nil
        }
        try await store.record(message, change: change, event: advances ? OutboundEvent.status(of: message, change) : nil, onlyIf: nil)
        Counter(label: "domicile_message_reports_total", dimensions: [("channel", message.channel.rawValue), ("status", status.rawValue)])
            .increment()
        return true
    }
}
