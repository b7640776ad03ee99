import ArgumentParser
import DomicileCore
import DomicileHTTP
import DomicileVault
import Foundation
import Logging
import Metrics
import Prometheus
import ServiceLifecycle
import UnixSignals

/// How `serve` meets the network: TLS, mutual TLS, the region directory, metrics and logs.
struct ServeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("PEM certificate chain of the listener (TLS 1.2 and up); read again on SIGHUP. Env: DOMICILE_TLS_CERTIFICATE.",
                               valueName: "file"))
    var tlsCertificate: String? = ProcessInfo.processInfo.environment["DOMICILE_TLS_CERTIFICATE"]

    @Option(help: ArgumentHelp("PEM private key of that certificate; read again on SIGHUP. Env: DOMICILE_TLS_KEY.", valueName: "file"))
    var tlsKey: String? = ProcessInfo.processInfo.environment["DOMICILE_TLS_KEY"]

    @Option(help: ArgumentHelp(
        "PEM CA certificates that issue the main data center's client certificates: the send and message-history routes then require one bound to the workspace (mutual TLS). Env: DOMICILE_TLS_CLIENT_CA.",
        valueName: "file"))
    var tlsClientCA: String? = ProcessInfo.processInfo.environment["DOMICILE_TLS_CLIENT_CA"]

    @Flag(help: "Listen in plain HTTP on an address other than loopback (behind a TLS-terminating proxy on the same host or network).")
    var allowPlainHTTP = false

    @Option(help: ArgumentHelp(
        "Region directory, a JSON file: {\"regions\": {code: endpoint}, \"workspaces\": {id: code}}. Requests for a workspace homed elsewhere get 421 and its endpoint. Env: DOMICILE_REGIONS.",
        valueName: "file"))
    var regions: String? = ProcessInfo.processInfo.environment["DOMICILE_REGIONS"]

    @Option(help: ArgumentHelp("Serve /metrics on this port instead of the API's (on the same address). Env: DOMICILE_METRICS_PORT.",
                               valueName: "port"))
    var metricsPort: Int? = Int(ProcessInfo.processInfo.environment["DOMICILE_METRICS_PORT"] ?? "")

    @Option(help: "Log format: text, or json (one object a line, for log shippers). Env: DOMICILE_LOG_FORMAT.")
    var logFormat: String = ProcessInfo.processInfo.environment["DOMICILE_LOG_FORMAT"] ?? "text"

    func validate() throws {
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-certificate and --tls-key go together") }
        if tlsClientCA != nil && tlsCertificate == nil { throw ValidationError("--tls-client-ca needs --tls-certificate and --tls-key") }
    }

    func directory() throws -> RegionDirectory {
        guard let regions else { return RegionDirectory() }
        do { return try RegionDirectory.load(path: regions) } catch { throw ValidationError("\(error)") }
    }

    func transport() throws -> TransportSecurity? {
        guard let tlsCertificate, let tlsKey else { return nil }
        do {
            return try TransportSecurity(identity: ServerIdentity(certificatePath: tlsCertificate, keyPath: tlsKey), clientCAPath: tlsClientCA)
        } catch {
            throw ValidationError("\(error)")
        }
    }

    /// Plain HTTP only on loopback unless asked for.
    func checkPlainHTTP(host: String, transport: TransportSecurity?) throws {
        guard transport == nil, !allowPlainHTTP else { return }
        let loopback = host == "localhost" || host == "::1" || host.hasPrefix("127.")
        guard loopback else {
            throw ValidationError("refusing plain HTTP on \(host): give --tls-certificate and --tls-key, or --allow-plain-http behind a TLS-terminating proxy")
        }
    }

    func bootstrapLogging(level: Logger.Level) {
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler = json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// The process's metrics go to one Prometheus registry, the one `/metrics` shows.
    func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }
}

/// Reads the listener's certificate and key again on each SIGHUP; a bad pair is logged and the old one kept.
struct CertificateReloadService: Service {
    let identity: ServerIdentity
    let logger: Logger

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        try await cancelWhenGracefulShutdown {
            for await _ in signals {
                do {
                    try identity.reload()
                    logger.notice("TLS certificate reloaded", metadata: ["certificate": "\(identity.certificatePath)"])
                } catch {
                    logger.error("TLS certificate not reloaded; the previous one stays", metadata: ["reason": "\(error)"])
                }
            }
        }
    }
}

/// Samples the outbox and the events waiting for the main data center into gauges.
struct OutboxGaugeService: Service {
    let vault: Vault
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let depth = Gauge(label: "domicile_outbox_depth")
        let age = Gauge(label: "domicile_outbox_oldest_due_age_seconds")
        let events = Gauge(label: "domicile_events_pending")
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                let statistics = try await vault.store.outboxStatistics()
                depth.record(statistics.depth)
                age.record(max(0, statistics.oldestDue.map { Date().timeIntervalSince($0) } ?? 0))
                events.record(statistics.pendingEvents)
            } catch {
                logger.warning("outbox statistics unavailable", metadata: ["error.type": "\(type(of: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}

/// One JSON object a line on standard error: `ts`, `level`, `label`, `message` and the metadata.
/// Written here because swift-log ships only the text handler. The same lines as the text
/// format: what Domicile logs never holds a request's values, whatever the format.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    init(label: String) {
        self.label = label
        metadataProvider = LoggingSystem.metadataProvider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get() { merged.merge(provided) { _, new in new } }
        if let extra = event.metadata { merged.merge(extra) { _, new in new } }
        var object: [String: String] = [:]
        for (key, value) in merged { object[key] = "\(value)" }
        object["ts"] = Timestamp.format(Date())
        object["level"] = event.level.rawValue
        object["label"] = label
        object["message"] = "\(event.message)"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        guard var line = try? encoder.encode(object) else { return }
        line.append(0x0A)
        FileHandle.standardError.write(line)
    }
}
