import ArgumentParser
import DomicileCore
import DomicileHTTP
import DomicileOutbound
import DomicileSQLite
import DomicileVault
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the HTTP API (embedded SQLite, local root key by default).")

    @OptionGroup var node: NodeOptions
    @OptionGroup var network: ServeOptions

    @Option(help: "Address to listen on. Env: DOMICILE_HOST.")
    var host: String = ProcessInfo.processInfo.environment["DOMICILE_HOST"] ?? "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one). Env: DOMICILE_PORT.")
    var port: Int = Int(ProcessInfo.processInfo.environment["DOMICILE_PORT"] ?? "") ?? 8080

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. Env: DOMICILE_LOG_LEVEL.")
    var logLevel: String = ProcessInfo.processInfo.environment["DOMICILE_LOG_LEVEL"] ?? "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw ValidationError("unknown log level \(logLevel)")
        }
        network.bootstrapLogging(level: level)
        let registry = network.bootstrapMetrics()
        let logger = Logger(label: "domicile")
        guard loginAttemptsPerClient > 0 else { throw ValidationError("--login-attempts-per-client must be positive") }
        let transport = try network.transport()
        try network.checkPlainHTTP(host: host, transport: transport)
        var policy = OperatorPolicy()
        policy.loginAttemptsPerClient = loginAttemptsPerClient
        let vault = try await node.openVault(logger: logger, operatorPolicy: policy, directory: try network.directory())
        let workspaces = try await vault.store.workspaces()
        let retention = RetentionService(vault: vault, interval: .seconds(retentionIntervalSeconds), node: nodeID, logger: logger)
        let events = EventDispatcher(vault: vault, logger: logger, node: nodeID)
        let limiter = RateLimiter()
        let counters = CounterService(synchronizer: CounterSynchronizer(
            store: vault.store, counters: [limiter.counter, vault.revealLimiter, vault.loginLimiter]), logger: logger)
        let outbox = MessageDispatcher(vault: vault, logger: logger, factory: Providers.factory(), node: nodeID,
                                       lease: .seconds(outboxLeaseSeconds))
        var services: [any Service] = [retention, events, outbox, counters,
                                       OutboxGaugeService(vault: vault, interval: .seconds(15), logger: logger),
                                       KeyRotationService(vault: vault, node: nodeID, interval: .seconds(keyRotationIntervalSeconds),
                                                          batch: rewrapBatch, pause: .milliseconds(rewrapPauseMs),
                                                          grace: .seconds(keyRetireGraceSeconds), logger: logger)]
        if let transport { services.append(CertificateReloadService(identity: transport.identity, logger: logger)) }
        if let metricsPort = network.metricsPort {
            services.append(DomicileAPI.metricsApplication(registry: registry, host: host, port: metricsPort, logger: logger))
        }
        let scheme = transport == nil ? "http" : "https"
        let security = transport == nil
            ? "plain HTTP: for loopback development or behind a TLS-terminating proxy"
            : "TLS 1.2+" + (transport?.clientCertificateAuthorities == nil ? "" : ", client certificates required on the send routes")
        let app = try DomicileAPI.application(vault: vault, host: host, port: port, logger: logger, limiter: limiter, transport: transport,
                                              metrics: network.metricsPort == nil ? registry : nil,
                                              services: services) { [node] port in
            // Unbuffered, so a supervisor or a test reading the pipe sees it at once.
            FileHandle.standardOutput.write(Data("""
                Domicile listening on \(scheme)://\(host):\(port) (region \(node.region), \(node.storeDescription), node \(nodeID))
                Transport: \(security); metrics at \(network.metricsPort.map { "port \($0)" } ?? "/metrics")
                \(workspaces.isEmpty ? "No workspace yet. Create one:" : "Workspaces: \(workspaces.map(\.id.rawValue).joined(separator: ", ")). Add one:")
                  swift run -c release domicile workspace create acme --data-dir \(node.dataDir)

                """.utf8))
        }
        try await app.runService()
        // The server has stopped taking requests: write the audit entries of the last reads.
        await vault.flushReadAudit()
        logger.notice("stopped")
    }

    @Option(help: "Seconds between retention runs.") var retentionIntervalSeconds: Int = 3600

    @Option(name: .customLong("node-id"), help: ArgumentHelp(
        "This node's name in the outbox's claims: unique among the nodes sharing a database and kept across restarts (a restarted node releases its own claims at once). Env: DOMICILE_NODE_ID. Default: the host name.",
        valueName: "name"))
    var nodeIDOption: String?

    /// How long a claim on a message lasts before another node may send it (tests shorten it).
    @Option(help: .hidden) var outboxLeaseSeconds: Int = 120

    /// The key-rotation job: how often it looks for work, its page size, a pause between pages
    /// (tests lengthen it), and how old the current version must be before older ones are retired.
    @Option(help: .hidden) var keyRotationIntervalSeconds: Int = 10
    @Option(help: .hidden) var rewrapBatch: Int = 500
    @Option(help: .hidden) var rewrapPauseMs: Int = 0
    @Option(help: .hidden) var keyRetireGraceSeconds: Int = 60

    var nodeID: String {
        nodeIDOption ?? ProcessInfo.processInfo.environment["DOMICILE_NODE_ID"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ProcessInfo.processInfo.hostName
    }

    @Option(help: "Operator login attempts one client address may make per 15 minutes, on this node. Env: DOMICILE_LOGIN_ATTEMPTS_PER_CLIENT.")
    var loginAttemptsPerClient: Int = Int(ProcessInfo.processInfo.environment["DOMICILE_LOGIN_ATTEMPTS_PER_CLIENT"] ?? "") ?? 30
}

/// Erases customers past their workspace's retention period, on a timer, as the `retention` system
/// job: on one node of the region, the one holding the job's lease (renewed at each run, so that
/// another node takes over two intervals after the holder stops).
struct RetentionService: Service {
    let vault: Vault
    let interval: Duration
    let node: String
    let logger: Logger

    func run() async throws {
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let now = Date()
                let until = now.addingTimeInterval(2 * Double(interval.components.seconds))
                guard try await vault.store.acquireLease("retention", holder: node, now: now, until: until) else {
                    try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
                    continue
                }
                let erased = try await vault.runRetention()
                if erased > 0 { logger.notice("retention erased customers", metadata: ["count": "\(erased)"]) }
            } catch {
                logger.error("retention run failed", metadata: ["error.type": "\(type(of: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// Shares this node's request, reveal and login counts with the other nodes, four times a second.
struct CounterService: Service {
    let synchronizer: CounterSynchronizer
    let logger: Logger

    func run() async throws {
        var failing = false
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                try await synchronizer.synchronizeOnce()
                failing = false
            } catch {
                // Logged once per outage: decisions go on with what this node counts.
                if !failing { logger.error("limits: cannot share counts", metadata: ["error.type": "\(type(of: error))"]) }
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: synchronizer.interval) }
        }
    }
}
