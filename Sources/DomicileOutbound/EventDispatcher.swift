import AsyncHTTPClient
import Crypto
import DomicileCore
import DomicileVault
import Foundation
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// One event as the main data center receives it. Its fields are ids, a type and a time: there
/// is nowhere in it for an address, a name or message content to go.
public struct MainDataCenterEvent: Codable, Sendable, Hashable {
    public var eventID: String
    public var type: String
    public var workspaceID: String
    public var customerID: String
    public var occurredAt: Date
    public var messageID: String?
    public var campaignID: String?
    public var channel: String?
    public var status: String?
    /// The provider's error code, when it gave one.
    public var errorCode: String?

    enum CodingKeys: String, CodingKey {
        case eventID = "event_id", type, workspaceID = "workspace_id", customerID = "customer_id", occurredAt = "occurred_at",
             messageID = "message_id", campaignID = "campaign_id", channel, status, errorCode = "error_code"
    }

    init(_ event: OutboundEvent) {
        eventID = event.id
        type = event.type
        workspaceID = event.workspaceID.rawValue
        customerID = event.customerID
        occurredAt = event.at
        messageID = event.messageID
        campaignID = event.campaignID
        channel = event.channel?.rawValue
        status = event.status?.rawValue
        errorCode = event.errorCode
    }
}

/// The body of one delivery: `{"events":[…], "audit_checkpoint":{…}}`, the checkpoint present
/// when the workspace's audit chain has grown since the last one delivered.
public struct MainDataCenterBatch: Codable, Sendable {
    public var events: [MainDataCenterEvent]
    public var auditCheckpoint: AuditCheckpoint?

    enum CodingKeys: String, CodingKey {
        case events, auditCheckpoint = "audit_checkpoint"
    }
}

/// How a delivery is signed, so the main data center can check it came from this vault:
/// `X-Domicile-Timestamp: <unix seconds>` and
/// `X-Domicile-Signature: v1=<hex HMAC-SHA256(secret, timestamp + "." + body)>`.
public enum EventSignature {
    public static let timestampHeader = "X-Domicile-Timestamp"
    public static let signatureHeader = "X-Domicile-Signature"

    public static func sign(body: [UInt8], timestamp: Int, secret: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(timestamp).".utf8) + body, using: SymmetricKey(data: secret))
        return "v1=" + mac.hexEncoded
    }

    /// Checks a signature and that the timestamp is within `tolerance` of `now`.
    public static func verify(body: [UInt8], timestamp: String?, signature: String?, secret: [UInt8],
                              now: Date = Date(), tolerance: TimeInterval = 300) -> Bool {
        guard let timestamp, let seconds = Int(timestamp), let signature,
              abs(now.timeIntervalSince1970 - Double(seconds)) <= tolerance
        else { return false }
        let expected = Array(sign(body: body, timestamp: seconds, secret: secret).utf8)
        let given = Array(signature.utf8)
        return ConstantTime.equals(expected, given)
    }
}

/// Delivers queued events to each workspace's main data center, in order, batched, signed, and
/// retried with exponential backoff until a 2xx acknowledges them. A workspace whose endpoint
/// fails waits; the others go on.
///
/// Each delivery also carries a signed checkpoint of the workspace's audit chain head when the
/// chain has grown; with no events to carry it, one goes alone at most every `checkpointInterval`.
/// The main data center keeps them: they anchor the chain outside the vault's database.
public actor EventDispatcher: Service {
    let vault: Vault
    let client: HTTPClient
    let logger: Logger
    let batchSize: Int
    let interval: Duration
    let maximumBackoff: Duration
    let checkpointInterval: Duration
    /// This node's name on the lease that lets one node of a region deliver events.
    let node: String
    /// How long a node's turn at delivering lasts unless renewed (each pass renews it): when a
    /// node stops, another takes over within this time.
    let lease: TimeInterval
    /// The last checkpoint each workspace's endpoint acknowledged, and when.
    private var checkpointed: [WorkspaceID: (seq: Int64, at: ContinuousClock.Instant)] = [:]
    private var backoff: [WorkspaceID: (until: ContinuousClock.Instant, delay: Duration)] = [:]

    public init(vault: Vault, client: HTTPClient = .shared, logger: Logger, batchSize: Int = 500,
                interval: Duration = .milliseconds(500), maximumBackoff: Duration = .seconds(300),
                checkpointInterval: Duration = .seconds(60), node: String = "embedded", lease: TimeInterval = 30) {
        self.vault = vault
        self.client = client
        self.logger = logger
        self.batchSize = batchSize
        self.interval = interval
        self.maximumBackoff = maximumBackoff
        self.checkpointInterval = checkpointInterval
        self.node = node
        self.lease = lease
    }

    public func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let delivered = await deliverOnce()
            if delivered == 0 {
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            }
        }
    }

    /// One pass over every workspace with an events endpoint.
    /// - Returns: how many events were acknowledged.
    @discardableResult
    public func deliverOnce() async -> Int {
        var delivered = 0
        let workspaces: [WorkspaceRecord]
        do {
            // One node of the region delivers, so that the nodes do not send each event once each.
            let now = Date()
            guard try await vault.store.acquireLease("events", holder: node, now: now, until: now.addingTimeInterval(lease)) else {
                return 0
            }
            workspaces = try await vault.store.workspaces()
        } catch {
            logger.error("event delivery: cannot list workspaces", metadata: ["error.type": "\(type(of: error))"])
            return 0
        }
        let now = ContinuousClock.now
        for workspace in workspaces where workspace.eventsURL != nil {
            if let wait = backoff[workspace.id], wait.until > now { continue }
            do {
                delivered += try await deliver(workspace)
                backoff[workspace.id] = nil
            } catch {
                let delay = min(maximumBackoff, (backoff[workspace.id]?.delay ?? .milliseconds(250)) * 2)
                // Jitter keeps many workspaces from retrying in step.
                let jittered = delay * Double.random(in: 0.8...1.2)
                backoff[workspace.id] = (ContinuousClock.now + jittered, delay)
                logger.warning("event delivery failed; will retry", metadata: [
                    "workspace": "\(workspace.id)", "error.type": "\(type(of: error))", "retry_in_ms": "\(jittered.components.seconds * 1000)",
                ])
            }
        }
        return delivered
    }

    struct Refused: Error { let status: UInt }

    private func deliver(_ workspace: WorkspaceRecord) async throws -> Int {
        guard let url = workspace.eventsURL, let secret = try await vault.eventsSecret(of: workspace) else { return 0 }
        // The events stay pending (retried with backoff) while their host is off the allowlist.
        try vault.checkEgress(workspace, to: try EgressEndpoint(url: url, setting: "events_url"), when: .connecting)
        var delivered = 0
        while true {
            let events = try await vault.store.pendingEvents(workspace: workspace.id, limit: batchSize)
            let checkpoint = try await checkpointDue(workspace.id, withEvents: !events.isEmpty)
            guard !events.isEmpty || checkpoint != nil else { return delivered }
            let encoder = JSONEncoder()
            encoder.dateEncodingStrategy = .iso8601
            encoder.outputFormatting = .sortedKeys
            let body = Array(try encoder.encode(MainDataCenterBatch(events: events.map(MainDataCenterEvent.init), auditCheckpoint: checkpoint)))
            let timestamp = Int(Date().timeIntervalSince1970)
            var request = HTTPClientRequest(url: url)
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.headers.add(name: EventSignature.timestampHeader, value: String(timestamp))
            request.headers.add(name: EventSignature.signatureHeader, value: EventSignature.sign(body: body, timestamp: timestamp, secret: secret))
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await client.execute(request, timeout: .seconds(10))
            _ = try? await response.body.collect(upTo: 64 * 1024)
            guard (200..<300).contains(response.status.code) else { throw Refused(status: response.status.code) }
            if !events.isEmpty { try await vault.store.markEventsDelivered(events.map(\.id)) }
            if let checkpoint { checkpointed[workspace.id] = (checkpoint.seq, ContinuousClock.now) }
            delivered += events.count
        }
    }

    /// The checkpoint to send with this delivery: the head's, if the chain grew since the last
    /// one acknowledged, and either events go anyway or the interval has passed.
    private func checkpointDue(_ workspace: WorkspaceID, withEvents: Bool) async throws -> AuditCheckpoint? {
        let last = checkpointed[workspace]
        if !withEvents, let last, ContinuousClock.now - last.at < checkpointInterval { return nil }
        guard let checkpoint = try await vault.auditCheckpoint(workspace: workspace), checkpoint.seq > last?.seq ?? 0 else { return nil }
        return checkpoint
    }
}
