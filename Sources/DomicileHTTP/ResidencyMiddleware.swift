import DomicileCore
import DomicileVault
import Hummingbird

/// Refuses a request for a workspace homed in another region with `421` and that region's
/// endpoint, before credentials are checked or a body is read: nothing of the request is used,
/// and nothing is forwarded. It runs first on every route that names a workspace in its path;
/// the login, whose workspace is in its body, asks the vault the same question.
struct ResidencyMiddleware: RouterMiddleware {
    typealias Context = DomicileRequestContext
    let vault: Vault

    @concurrent func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        if let raw = context.parameters.get("workspace"), let workspace = try? WorkspaceID(validating: raw) {
            try await vault.checkResidency(workspace)
        }
        return try await next(request, context)
    }
}
