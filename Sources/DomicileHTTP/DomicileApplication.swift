import DomicileCore
import DomicileVault
import HTTPTypes
import Hummingbird
import Logging

/// Builds Domicile's HTTP API over a vault.
public enum DomicileAPI {
    public static func router(vault: Vault, limiter: RateLimiter = RateLimiter()) -> Router<DomicileRequestContext> {
        let router = Router(context: DomicileRequestContext.self)
        router.add(middleware: RequestLogMiddleware())
        HealthController(vault: vault).addRoutes(to: router)
        let dataAPI = router.group("v1").add(middleware: DataAPIAuthMiddleware(vault: vault, limiter: limiter))
        IngestController(vault: vault).addRoutes(to: dataAPI)
        CustomerController(vault: vault).addRoutes(to: dataAPI)
        return router
    }

    public static func application(vault: Vault, host: String, port: Int, logger: Logger,
                                   onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> some ApplicationProtocol
    {
        Application(
            router: router(vault: vault),
            configuration: .init(address: .hostname(host, port: port), serverName: "domicile"),
            onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? port) },
            logger: logger)
    }
}
