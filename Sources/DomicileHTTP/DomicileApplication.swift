import DomicileCore
import DomicileVault
import HTTPTypes
import Hummingbird
import Logging
import ServiceLifecycle

/// Builds Domicile's HTTP API over a vault.
public enum DomicileAPI {
    public static func router(vault: Vault, limiter: RateLimiter = RateLimiter()) -> Router<DomicileRequestContext> {
        let router = Router(context: DomicileRequestContext.self)
        router.add(middleware: RequestLogMiddleware())
        HealthController(vault: vault).addRoutes(to: router)
        OperatorController(vault: vault).addLogin(to: router)
        let api = router.group("v1").add(middleware: DataAPIAuthMiddleware(vault: vault, limiter: limiter))
        IngestController(vault: vault).addRoutes(to: api)
        CustomerController(vault: vault).addRoutes(to: api)
        OperatorController(vault: vault).addRoutes(to: api)
        SchemaController(vault: vault).addRoutes(to: api)
        SubjectRequestController(vault: vault).addRoutes(to: api)
        AuditController(vault: vault).addRoutes(to: api)
        ProviderController(vault: vault).addRoutes(to: api)
        let send = router.group("v1").add(middleware: SendAuthMiddleware(vault: vault, limiter: limiter))
        MessagesController(vault: vault).addRoutes(to: send)
        CallbackController(vault: vault).addRoutes(to: router)
        router.add(middleware: AllowedMethodsMiddleware(routes: router.routes))
        return router
    }

    public static func application(vault: Vault, host: String, port: Int, logger: Logger, limiter: RateLimiter = RateLimiter(),
                                   services: [any Service] = [],
                                   onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        Application(
            router: router(vault: vault, limiter: limiter),
            configuration: .init(address: .hostname(host, port: port), serverName: "domicile"),
            services: services,
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
