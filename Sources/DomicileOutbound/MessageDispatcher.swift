import AsyncHTTPClient
import DomicileCore
import DomicileVault
import Foundation
import Logging
import Metrics
import NIOCore
import NIOPosix
import ServiceLifecycle

/// Builds the provider for a workspace's channel from its sealed settings.
public typealias ProviderFactory = @Sendable (_ kind: String, _ settings: [String: String], _ channel: DomicileCore.Channel) throws
    -> any MessageProvider

/// Delivers the outbox: claims due messages, hands each to its workspace's provider with a
/// concurrency limit per provider, retries transient failures with exponential backoff and
/// jitter, dead-letters a message after `maximumAttempts`, and deletes the outbox copy (the only
/// place the address and content are kept) as soon as the provider has the message or the
/// message is final.
public actor MessageDispatcher: Service {
    let vault: Vault
    let logger: Logger
    let factory: ProviderFactory
    let maximumAttempts: Int
    let concurrencyPerProvider: Int
    let baseBackoff: Duration
    let maximumBackoff: Duration
    let lease: Duration
    let idleInterval: Duration
    /// This node's name in its claims: unique among the nodes sharing a database, and the same
    /// across the node's restarts, so that a restarted node releases its own claims at once.
    let node: String
    /// This node's recent renewals of its claims, oldest first: each extended to `until` every
    /// claim of the node whose lease had not run out `at` that time (see `leaseEnd(of:)`).
    private var renewals: [(at: Date, until: Date)] = []

    public init(vault: Vault, logger: Logger, factory: @escaping ProviderFactory, node: String = "embedded", maximumAttempts: Int = 8,
                concurrencyPerProvider: Int = 128, baseBackoff: Duration = .seconds(2), maximumBackoff: Duration = .seconds(600),
                lease: Duration = .seconds(120), idleInterval: Duration = .milliseconds(100)) {
        self.vault = vault
        self.logger = logger
        self.factory = factory
        self.maximumAttempts = maximumAttempts
        self.concurrencyPerProvider = concurrencyPerProvider
        self.baseBackoff = baseBackoff
        self.maximumBackoff = maximumBackoff
        self.lease = lease
        self.idleInterval = idleInterval
        self.node = node
    }

    public func run() async throws {
        // A message this node claimed before it was killed mid-send is due again at once, not when
        // its lease would have run out; other nodes' claims are left to them. (At least once: the
        // provider may see it twice, which is why the message id travels as the provider's
        // idempotency key where one exists.)
        do {
            let released = try await vault.store.releaseClaims(node: node, now: Date())
            if released > 0 { logger.notice("outbox: released messages claimed before a restart", metadata: ["count": "\(released)"]) }
        } catch {
            logger.error("outbox: cannot release old claims", metadata: ["error.type": "\(type(of: error))"])
        }
        // Claims are renewed while they are held, so that a message waiting behind a slow
        // provider stays this node's instead of being sent again by another node once its first
        // lease runs out; a node that dies stops renewing, and its claims run out.
        let renewer = Task { await self.renewClaimsWhileRunning() }
        await pipeline()
        renewer.cancel()
    }

    private func renewClaimsWhileRunning() async {
        let interval = lease / 3
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            guard !Task.isCancelled else { return }
            await renewClaims()
        }
    }

    /// Extends this node's running claims by a lease; remembered only when the store confirms.
    func renewClaims() async {
        let now = Date()
        let until = now.addingTimeInterval(Double(lease.components.seconds))
        do {
            _ = try await vault.store.renewClaims(node: node, now: now, until: until)
            renewals.append((now, until))
            if renewals.count > 16 { renewals.removeFirst(renewals.count - 16) }
        } catch {
            logger.error("outbox: cannot renew claims", metadata: ["error.type": "\(type(of: error))"])
        }
    }

    /// Until when this node's claim of `message` holds: its lease from the claim, extended by
    /// each later renewal made while it still held (a renewal at a time the claim had already
    /// run out did not touch it, as another node may have claimed it meanwhile).
    func leaseEnd(of message: OutboxMessage) -> Date {
        var end = message.nextAttemptAt
        for renewal in renewals where end > renewal.at { end = max(end, renewal.until) }
        return end
    }

    private enum PipelineEvent: Sendable { case delivered, tick }

    /// The running dispatcher: a continuous pipeline rather than rounds. Up to four times
    /// `concurrencyPerProvider` messages are out at once (each provider limited to
    /// `concurrencyPerProvider`); whenever a quarter of that room is free, the next due messages
    /// are claimed in one transaction, so a slow message never holds back the ones behind it.
    /// A tick every `idleInterval` looks for newly due messages (new batches, ended backoffs).
    /// On shutdown no new message is claimed, and those out are finished.
    private func pipeline() async {
        let maximumInFlight = max(concurrencyPerProvider * 4, 4)
        await withTaskGroup(of: PipelineEvent.self) { group in
            var inFlight = 0
            var ticking = false
            var turn = 0
            while !Task.isCancelled && !Task.isShuttingDownGracefully {
                let room = maximumInFlight - inFlight
                if room >= maximumInFlight / 4 {
                    let claimed = await claim(limit: room)
                    for message in claimed {
                        turn &+= 1
                        group.addTask(executorPreference: EventLoopTaskExecutor.turn(turn)) {
                            await self.deliverInSlot(message)
                            return .delivered
                        }
                    }
                    inFlight += claimed.count
                    if !claimed.isEmpty { continue }
                }
                if !ticking {
                    ticking = true
                    group.addTask { [idleInterval] in
                        try? await Task.sleep(for: idleInterval)
                        return .tick
                    }
                }
                switch await group.next() {
                case .delivered?: inFlight -= 1
                case .tick?: ticking = false
                case nil: break
                }
            }
        }
    }

    /// Marks up to `limit` due messages as being sent, for the lease; none when the store fails (logged).
    private func claim(limit: Int) async -> [OutboxMessage] {
        let now = Date()
        do {
            return try await vault.store.claimDueMessages(node: node, route: .providers, now: now, leaseUntil: now.addingTimeInterval(Double(lease.components.seconds)),
                                                          limit: limit)
        } catch {
            logger.error("outbox: cannot claim messages", metadata: ["error.type": "\(type(of: error))"])
            return []
        }
    }

    private var running: [ProviderKey: Int] = [:]
    private var waiting: [ProviderKey: [CheckedContinuation<Void, Never>]] = [:]
    private var providers: [ProviderKey: (provider: (any MessageProvider)?, until: ContinuousClock.Instant)] = [:]

    /// One message, within its provider's concurrency limit. Only the slot and the provider
    /// lookup are on the actor; the delivery itself (open, provider call, record) runs on the
    /// task's event loop, so deliveries spread over every core instead of queueing on the actor.
    private func deliverInSlot(_ message: OutboxMessage) async {
        let key = ProviderKey(workspace: message.workspaceID, channel: message.channel)
        if running[key, default: 0] < concurrencyPerProvider {
            running[key, default: 0] += 1
        } else {
            // The slot is handed over by the delivery that frees it.
            await withCheckedContinuation { waiting[key, default: []].append($0) }
        }
        // A message that waited for its slot until its claim's lease (nearly) ran out, renewals
        // included, may already be claimed by another node: leave it to whoever claims it next,
        // rather than send it twice. (`nextAttemptAt` of a claimed message is the end of its lease.)
        if leaseEnd(of: message).timeIntervalSinceNow > Double(lease.components.seconds) / 10 {
            await deliver(message, provider: await provider(for: key))
        } else {
            logger.notice("outbox: a claim ran out before its turn; left for the next claim")
        }
        if var queue = waiting[key], !queue.isEmpty {
            let next = queue.removeFirst()
            waiting[key] = queue
            next.resume()
        } else {
            running[key, default: 1] -= 1
        }
    }

    /// The provider of a workspace's channel, built from its settings at most every 5 s (a
    /// change through the CLI or the API applies within that time).
    private func provider(for key: ProviderKey) async -> (any MessageProvider)? {
        let now = ContinuousClock.now
        if let cached = providers[key], cached.until > now { return cached.provider }
        let built: (any MessageProvider)?
        do {
            built = try await vault.provider(key.workspace, channel: key.channel).map { try factory($0.kind, $0.settings, key.channel) }
        } catch {
            logger.error("outbox: provider settings unusable", metadata: ["workspace": "\(key.workspace)", "channel": "\(key.channel.rawValue)"])
            built = nil
        }
        providers[key] = (built, now + .seconds(5))
        return built
    }

    struct ProviderKey: Hashable { let workspace: WorkspaceID; let channel: DomicileCore.Channel }

    /// One round: claims what is due and settles it.
    /// - Returns: how many messages were claimed.
    @discardableResult
    public func dispatchOnce(limit: Int = 512) async -> Int {
        let claimed = await claim(limit: limit)
        guard !claimed.isEmpty else { return 0 }
        await withTaskGroup(of: Void.self) { all in
            for (turn, message) in claimed.enumerated() {
                all.addTask(executorPreference: EventLoopTaskExecutor.turn(turn)) { await self.deliverInSlot(message) }
            }
        }
        return claimed.count
    }

    @concurrent private nonisolated func deliver(_ message: OutboxMessage, provider: (any MessageProvider)?) async {
        let outcome: ProviderOutcome
        do {
            guard let payload = try await vault.openPayload(of: message) else {
                // The customer was erased: the key that sealed this copy is gone.
                await settle(message, status: .cancelled, errorCode: "erased")
                return
            }
            guard let provider else {
                outcome = .transient(code: "no_provider")
                await retry(message, code: "no_provider", outcome: outcome)
                return
            }
            // Checked before every connection: a host taken off the allowlist receives nothing
            // more, and the message waits (retried with backoff) for the list or the provider to change.
            guard let workspace = try await vault.workspace(message.workspaceID),
                  (try? vault.checkEgress(workspace, to: provider.endpoint, when: .connecting)) != nil
            else {
                await retry(message, code: "egress_refused", outcome: .transient(code: "egress_refused"))
                return
            }
            outcome = await provider.send(payload, message: message)
            Self.count(outcome, channel: message.channel, kind: provider.kind)
        } catch {
            logger.error("outbox: cannot open a message", metadata: ["error.type": "\(type(of: error))"])
            await retry(message, code: "internal", outcome: .transient(code: "internal"))
            return
        }
        switch outcome {
        case .accepted(let providerID):
            var sent = message
            sent.providerMessageID = providerID
            sent.attempts += 1
            await settle(sent, status: .sent, errorCode: nil)
        case .permanent(let code), .bounced(let code):
            var failed = message
            failed.attempts += 1
            // The provider refused the hand-over itself, or the address: no retry will change that.
            let status: MessageStatus = if case .bounced = outcome { .bounced } else { .deadLetter }
            await settle(failed, status: status, errorCode: code)
        case .transient(let code):
            await retry(message, code: code, outcome: outcome)
        }
    }

    /// Hand-overs by channel, provider kind and outcome (`sent`, `transient`, `permanent`, `bounced`).
    static func count(_ outcome: ProviderOutcome, channel: DomicileCore.Channel, kind: ProviderKind) {
        let name = switch outcome {
        case .accepted: "sent"
        case .transient: "transient"
        case .permanent: "permanent"
        case .bounced: "bounced"
        }
        Counter(label: "domicile_message_handovers_total",
                dimensions: [("channel", channel.rawValue), ("provider_kind", kind.rawValue), ("outcome", name)]).increment()
    }

    @concurrent private nonisolated func retry(_ message: OutboxMessage, code: String, outcome: ProviderOutcome) async {
        var next = message
        next.attempts += 1
        let now = Date()
        let policy = RetryPolicy(maximumAttempts: maximumAttempts, baseBackoff: baseBackoff, maximumBackoff: maximumBackoff)
        guard let due = policy.nextAttempt(after: next.attempts, now: now) else {
            await settle(next, status: .deadLetter, errorCode: code)
            return
        }
        next.status = .queued
        next.errorCode = code
        next.updatedAt = now
        next.nextAttemptAt = due
        do {
            try await vault.store.record(next, change: MessageStatusChange(status: .queued, at: next.updatedAt, errorCode: code), event: nil,
                                         onlyIf: .sending)
        } catch {
            logger.error("outbox: cannot record a retry", metadata: ["error.type": "\(type(of: error))"])
        }
    }

    /// Records a status the dispatcher will not retry from, deleting the outbox copy with it.
    @concurrent private nonisolated func settle(_ message: OutboxMessage, status: MessageStatus, errorCode: String?) async {
        var settled = message
        settled.status = status
        settled.errorCode = errorCode
        settled.sealedPayload = nil
        settled.updatedAt = Date()
        let change = MessageStatusChange(status: status, at: settled.updatedAt, errorCode: errorCode)
        if status != .sent {
            // Dead letters, bounces and cancellations: what will not be sent.
            Counter(label: "domicile_messages_failed_total", dimensions: [("channel", message.channel.rawValue), ("status", status.rawValue)])
                .increment()
        }
        do {
            try await vault.store.record(settled, change: change, event: OutboundEvent.status(of: settled, change), onlyIf: .sending)
        } catch {
            logger.error("outbox: cannot record a delivery", metadata: ["error.type": "\(type(of: error))"])
        }
    }
}

/// The providers Domicile ships.
public enum Providers {
    /// The process's client for HTTP providers: like `HTTPClient.shared` (never shut down), but
    /// with as many connections per host as the dispatcher sends at once. The shared client's 8
    /// made 56 of the 64 concurrent deliveries to one provider wait for a connection.
    public static let client = HTTPClient(
        eventLoopGroupProvider: .singleton,
        configuration: .init(connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 64)))

    public static func factory(client: HTTPClient = Providers.client) -> ProviderFactory {
        { kind, settings, channel in
            switch ProviderKind(rawValue: kind) {
            case .privateSSP: try PrivateSSPProvider(settings: settings, client: client)
            case .twilio: try TwilioProvider(settings: settings, channel: channel, client: client)
            case .whatsappCloud: try WhatsAppCloudProvider(settings: settings, client: client)
            case .smtp: try SMTPProvider(settings: settings)
            case nil: throw ProviderSettingsError(description: "unknown provider kind")
            }
        }
    }
}
