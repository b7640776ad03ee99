import DomicileCore
import DomicileVault
import HTTPTypes
import Hummingbird
import HummingbirdTLS
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// Builds Domicile's HTTP API over a vault.
public enum DomicileAPI {
    /// - Parameters:
    ///   - requireClientCertificate: mutual TLS on the main data center's routes (send, message history).
    ///   - metrics: served at `/metrics` on the API's own port when given.
    public static func router(vault: Vault, limiter: RateLimiter = RateLimiter(), requireClientCertificate: Bool = false,
                              metrics: PrometheusCollectorRegistry? = nil) -> Router<DomicileRequestContext> {
        let router = Router(context: DomicileRequestContext.self)
        router.add(middleware: RequestLogMiddleware())
        HealthController(vault: vault).addRoutes(to: router)
        if let metrics { addMetrics(metrics, to: router) }
        OperatorController(vault: vault).addLogin(to: router)
        let api = router.group("v1").add(middleware: ResidencyMiddleware(vault: vault))
            .add(middleware: DataAPIAuthMiddleware(vault: vault, limiter: limiter))
        IngestController(vault: vault).addRoutes(to: api)
        CustomerController(vault: vault).addRoutes(to: api)
        OperatorController(vault: vault).addRoutes(to: api)
        SchemaController(vault: vault).addRoutes(to: api)
        SubjectRequestController(vault: vault).addRoutes(to: api)
        AuditController(vault: vault).addRoutes(to: api)
        ProviderController(vault: vault).addRoutes(to: api)
        EgressController(vault: vault).addRoutes(to: api)
        let send = router.group("v1").add(middleware: ResidencyMiddleware(vault: vault))
            .add(middleware: SendAuthMiddleware(vault: vault, limiter: limiter, requireClientCertificate: requireClientCertificate))
        MessagesController(vault: vault).addRoutes(to: send)
        let relay = router.group("v1").add(middleware: ResidencyMiddleware(vault: vault))
            .add(middleware: SendAuthMiddleware(vault: vault, limiter: limiter, requireClientCertificate: requireClientCertificate, relay: true))
        RelayController(vault: vault).addRoutes(to: relay)
        CallbackController(target: vault).addRoutes(to: router.group("v1/callbacks").add(middleware: ResidencyMiddleware(vault: vault)))
        router.add(middleware: AllowedMethodsMiddleware(routes: router.routes))
        return router
    }

    /// `GET /metrics`: the Prometheus text format. Nothing in it names a customer, a value or an
    /// address: labels are route templates, statuses, channels, provider kinds and refusal reasons.
    static func addMetrics<Context: RequestContext>(_ registry: PrometheusCollectorRegistry, to router: Router<Context>) {
        router.get("metrics") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8", .cacheControl: "no-store"],
                     body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
    }

    /// The API's server: plain HTTP, or TLS when `transport` is given.
    public static func application(vault: Vault, host: String, port: Int, logger: Logger, limiter: RateLimiter = RateLimiter(),
                                   transport: TransportSecurity? = nil, metrics: PrometheusCollectorRegistry? = nil,
                                   services: [any Service] = [],
                                   onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) throws
        -> some ApplicationProtocol
    {
        let router = router(vault: vault, limiter: limiter, requireClientCertificate: transport?.clientCertificateAuthorities != nil,
                            metrics: metrics)
        return Application(
            router: HeadAsGet(router),
            server: try transport.map { try .tls(.http1(), tlsConfiguration: $0.tlsConfiguration) } ?? .http1(),
            configuration: .init(address: .hostname(host, port: port), serverName: "domicile"),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }

    /// `/metrics` alone, on a port of its own (kept off the API's listener, e.g. for a private network).
    public static func metricsApplication(registry: PrometheusCollectorRegistry, host: String, port: Int, logger: Logger)
        -> some ApplicationProtocol & Service
    {
        let router = Router()
        addMetrics(registry, to: router)
        return Application(router: router, configuration: .init(address: .hostname(host, port: port), serverName: "domicile-metrics"),
                           logger: logger)
    }
}
