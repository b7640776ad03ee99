import DomicileCore
import DomicileVault
import Hummingbird

/// `GET` and `PUT /v1/workspaces/{ws}/egress` (administrators): the hosts the workspace's
/// providers and events endpoint may be reached at. Replacing the list is audited.
struct EgressController {
    let vault: Vault

    struct Hosts: Codable {
        var hosts: [String]
    }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.get("workspaces/:workspace/egress", use: get)
        group.put("workspaces/:workspace/egress", use: set)
    }

    @Sendable func get(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        return JSONResponse.make(Hosts(hosts: try await vault.egressAllowlist(workspace.id, actor: actor).hosts))
    }

    @Sendable func set(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let body = try await JSONBody.decode(Hosts.self, from: request)
        let allowlist = try await vault.setEgressAllowlist(workspace.id, hosts: body.hosts, actor: actor, requestID: context.requestID)
        return JSONResponse.make(Hosts(hosts: allowlist.hosts))
    }
}
