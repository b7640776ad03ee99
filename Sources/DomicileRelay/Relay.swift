import DomicileClient
import DomicileCore
import DomicileHTTP
import DomicileOutbound
import DomicileVault
import Foundation
import Logging
import ServiceLifecycle

/// The brand's relay (client mode): pulls the workspace's messages from Domicile, opens the
/// brand's envelopes with the brand's key, renders the templates, hands each message to the
/// provider of its channel, and reports the outcome to Domicile. Providers' callbacks reach the
/// relay (see `DomicileAPI.callbackRouter`) and go on to Domicile as statuses.
///
/// At least once, never twice by its own retries: the journal records a message as being sent
/// before the provider call and its outcome after, so a message Domicile hands again (a report
/// lost, a restart) gets the recorded outcome reported again instead of a second send. Only a
/// relay killed during the provider call itself sends that message again, with the message id
/// as the provider's idempotency key where the provider has one.
public final class Relay: Service, CallbackTarget {
    let configuration: RelayConfiguration
    let journal: RelayJournal
    let domicile: DomicileConnection
    let providers: [DomicileCore.Channel: any MessageProvider]
    let logger: Logger

    public init(configuration: RelayConfiguration, logger: Logger, factory: ProviderFactory = Providers.factory()) throws {
        self.configuration = configuration
        self.logger = logger
        journal = try RelayJournal(path: configuration.journalPath)
        domicile = try DomicileConnection(configuration)
        var built: [DomicileCore.Channel: any MessageProvider] = [:]
        for (channel, provider) in configuration.providers {
            do {
                built[channel] = try factory(provider.kind, provider.settings, channel)
            } catch {
                throw ClientError("the \(channel.rawValue) provider's settings are unusable: \(error)")
            }
        }
        providers = built
    }

    /// `workers` claim-and-send loops, so that one batch's provider calls and reports overlap the
    /// next batch's claim; and one loop that forwards the providers' statuses and reports what a
    /// failed call left in the journal.
    public func run() async throws {
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(configuration.workers, 1) {
                group.addTask {
                    await self.loop { try await self.claimAndSend() }
                }
            }
            group.addTask {
                await self.loop {
                    try await self.reportOutcomes()
                    return try await self.forwardStatuses()
                }
            }
        }
        try? await domicile.shutdown()
    }

    /// Runs `step` until shutdown, pausing when it had nothing to do or Domicile could not be reached.
    private func loop(_ step: () async throws -> Bool) async {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            var busy = false
            do {
                busy = try await step()
            } catch {
                // Domicile unreachable or refusing: the journal keeps what is owed, tried again shortly.
                logger.warning("relay: Domicile call failed", metadata: ["error": "\(error)"])
            }
            if !busy { try? await Task.sleep(for: configuration.idleInterval) }
        }
    }

    // MARK: Hand-overs

    /// Claims a batch, sends it and reports it; whether there was any.
    func claimAndSend() async throws -> Bool {
        let answer = try await domicile.post("claim", .object(["limit": .integer(Int64(configuration.batch)),
                                                               "lease_seconds": .integer(configuration.lease.components.seconds)]))
        guard case .array(let messages)? = answer["messages"], !messages.isEmpty else { return false }
        var handed: [(id: String, message: JSONValue)] = []
        for message in messages {
            if case .string(let id)? = message["message_id"] { handed.append((id, message)) }
        }
        let known = try journal.entries(handed.map(\.id))
        // Those the journal has an outcome for were handed again: Domicile never heard of the
        // outcome. They are reported again from the journal, not sent again.
        var again: [JournalOutcome] = []
        var toSend: [(id: String, message: JSONValue)] = []
        for entry in handed {
            if case .done(let outcome, let providerID, let code)? = known[entry.id] {
                again.append((entry.id, outcome, providerID, code))
            } else {
                toSend.append(entry)
            }
        }
        try journal.markSending(toSend.map(\.id))
        let outcomes = await withTaskGroup(of: (String, RelayOutcome).self) { group in
            for (id, message) in toSend { group.addTask { (id, await self.deliver(message)) } }
            var all: [(String, RelayOutcome)] = []
            for await outcome in group { all.append(outcome) }
            return all
        }
        let done: [JournalOutcome] = outcomes.map { id, outcome in
            switch outcome {
            case .sent(let providerID): (id, "sent", providerID, nil)
            case .transient(let code): (id, "transient", nil, code)
            case .permanent(let code): (id, "permanent", nil, code)
            case .bounced(let code): (id, "bounced", nil, code)
            }
        }
        try journal.markDone(done)
        try await report(again + done)
        return true
    }

    typealias JournalOutcome = (id: String, outcome: String, providerMessageID: String?, code: String?)

    /// Reports outcomes to Domicile; once it has them, the journal marks them reported.
    func report(_ outcomes: [JournalOutcome]) async throws {
        guard !outcomes.isEmpty else { return }
        let results: [JSONValue] = outcomes.map { entry in
            var fields: [String: JSONValue] = ["message_id": .string(entry.id), "outcome": .string(entry.outcome)]
            if let providerID = entry.providerMessageID { fields["provider_message_id"] = .string(providerID) }
            if let code = entry.code { fields["code"] = .string(code) }
            return .object(fields)
        }
        _ = try await domicile.post("results", .object(["results": .array(results)]))
        try journal.markReported(outcomes.map(\.id))
    }

    /// Reports what the journal holds and Domicile has not confirmed (a report that failed).
    func reportOutcomes() async throws {
        while true {
            let pending = try journal.unreported(limit: 500)
            try await report(pending)
            if pending.count < 500 { return }
        }
    }

    /// One message: open, render, send. Never throws: every failure is an outcome.
    func deliver(_ handed: JSONValue) async -> RelayOutcome {
        let request: MessageRequest
        do {
            request = try MessageRequest.parse(handed)
        } catch {
            return .permanent(code: "invalid_message")
        }
        var attributes: [String: AttributeValue] = [:]
        if case .object(let values)? = handed["attributes"] {
            for (name, value) in values {
                do {
                    if ClientEnvelope.looksLikeEnvelope(value) {
                        let envelope = try ClientEnvelope.parse(value, attribute: name)
                        attributes[name] = try configuration.keys.open(envelope, workspace: configuration.workspace.rawValue,
                                                                       customer: request.customerID.rawValue, attribute: name)
                    } else if let scalar = AttributeValue(json: value) {
                        attributes[name] = scalar
                    }
                } catch {
                    // Not the brand's key, or an envelope moved from another customer or attribute.
                    logger.error("relay: an envelope does not open", metadata: ["attribute": "\(name)", "message_id": "\(request.messageID)"])
                    return .permanent(code: "envelope_unreadable")
                }
            }
        }
        guard case .string(let address)? = attributes[request.channel.contactAttribute.rawValue] else {
            return .permanent(code: MessageRefusal.noContactForChannel.rawValue)
        }
        if case .bool(true)? = attributes[request.channel.optOutAttribute.rawValue] { return .permanent(code: MessageRefusal.noConsent.rawValue) }
        let payload: OutboxPayload
        do {
            payload = try MessageRendering.render(request, to: address, attributes: attributes) { source, flavour throws(Failure) in
                try MessageTemplate(source, flavour: flavour)
            }.payload
        } catch {
            return .permanent(code: error.reason.rawValue)
        }
        guard let provider = providers[request.channel] else { return .transient(code: "no_provider") }
        let now = Date()
        let message = OutboxMessage(workspaceID: configuration.workspace, messageID: request.messageID, customerID: request.customerID,
                                    campaignID: request.campaignID, channel: request.channel, nextAttemptAt: now, createdAt: now,
                                    updatedAt: now, sealedPayload: nil)
        switch await provider.send(payload, message: message) {
        case .accepted(let providerID): return .sent(providerMessageID: providerID)
        case .transient(let code): return .transient(code: code)
        case .permanent(let code): return .permanent(code: code)
        case .bounced(let code): return .bounced(code: code)
        }
    }

    // MARK: Callbacks

    public func knows(_ workspace: WorkspaceID) async throws -> Bool { workspace == configuration.workspace }

    public func provider(_ workspace: WorkspaceID, channel: DomicileCore.Channel) async throws -> (kind: String, settings: [String: String])? {
        workspace == configuration.workspace ? configuration.providers[channel] : nil
    }

    /// A provider's report, checked and mapped by the shared callback routes: kept in the
    /// journal (the provider gets its 200 once it is on disk), forwarded by the run loop.
    @discardableResult
    public func applyProviderStatus(_ reference: Vault.ProviderReference, status: MessageStatus, errorCode: String?,
                                    workspace: WorkspaceID) async throws -> Bool {
        var fields: [String: JSONValue] = ["status": .string(status.rawValue)]
        switch reference {
        case .providerMessageID(let id): fields["provider_message_id"] = .string(id)
        case .messageID(let id): fields["message_id"] = .string(id)
        }
        if let errorCode { fields["code"] = .string(errorCode) }
        var writer = JSONWriter()
        writer.value(.object(fields))
        try journal.addStatus(String(decoding: writer.bytes, as: UTF8.self))
        return true
    }

    /// Forwards the kept reports; whether there were any.
    func forwardStatuses() async throws -> Bool {
        let pending = try journal.pendingStatuses(limit: 500)
        guard let last = pending.last else { return false }
        let statuses = pending.compactMap { try? JSONParser.parse(Array($0.body.utf8)) }
        _ = try await domicile.post("statuses", .object(["statuses": .array(statuses)]))
        try journal.removeStatuses(through: last.id)
        return true
    }
}

extension AttributeValue {
    /// A JSON scalar as an attribute value; nil for null, arrays and objects.
    init?(json: JSONValue) {
        switch json {
        case .string(let text): self = .string(text)
        case .integer(let number): self = .integer(number)
        case .double(let number): self = .double(number)
        case .bool(let flag): self = .bool(flag)
        default: return nil
        }
    }
}
