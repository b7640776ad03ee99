import DomicileCore
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird

/// Operator sessions: `POST /v1/operators/login` (no credentials) and `POST /v1/operators/logout`.
struct OperatorController {
    let vault: Vault

    struct LoginRequest: Decodable {
        var workspace: String
        var email: String
        var password: String
    }

    struct LoginAnswer: Encodable {
        var token: String
        var tokenType = "Bearer"
        var expiresAt: Date
        var operatorID: String
        var role: String
        var viewPII: Bool

        enum CodingKeys: String, CodingKey {
            case token, tokenType = "token_type", expiresAt = "expires_at", operatorID = "operator_id", role, viewPII = "view_pii"
        }
    }

    struct Done: Encodable { var status = "success" }

    func addLogin(to router: Router<DomicileRequestContext>) {
        router.post("v1/operators/login", use: login)
    }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.post("operators/logout", use: logout)
    }

    @Sendable func login(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let body = try await JSONBody.decode(LoginRequest.self, from: request)
        if let workspace = try? WorkspaceID(validating: body.workspace) { try await vault.checkResidency(workspace) }
        let session = try await vault.login(workspace: body.workspace, email: body.email, password: body.password,
                                            client: context.clientAddress, requestID: context.requestID)
        let record = session.operatorRecord
        return JSONResponse.make(LoginAnswer(token: session.token, expiresAt: session.expiresAt, operatorID: record.id,
                                             role: record.role.rawValue, viewPII: record.viewPII),
                                 headers: [.cacheControl: "no-store"])
    }

    @Sendable func logout(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        guard case .operator? = context.actor, let token = DataAPIAuthMiddleware.bearerToken(request.headers[.authorization]) else {
            throw Failure(.forbidden, "only an operator session can log out")
        }
        try await vault.logout(token: token)
        return JSONResponse.make(Done())
    }
}

/// `GET /v1/workspaces/{ws}/schema` (any caller) and `PUT /v1/workspaces/{ws}/schema/{attribute}` (administrators).
struct SchemaController {
    let vault: Vault

    struct Definition: Codable {
        var name: String?
        var type: AttributeType
        var pii: Bool
        var indexed: Bool
    }

    struct SchemaBody: Encodable { var attributes: [Definition] }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.get("workspaces/:workspace/schema", use: list)
        group.put("workspaces/:workspace/schema/:attribute", use: change)
    }

    @Sendable func list(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let schema = try await vault.schema(workspace.id, actor: actor)
        return JSONResponse.make(SchemaBody(attributes: schema.sorted.map {
            Definition(name: $0.name.rawValue, type: $0.type, pii: $0.pii, indexed: $0.indexed)
        }))
    }

    @Sendable func change(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let name = try AttributeName(validating: try context.parameters.require("attribute"))
        let body = try await JSONBody.decode(Definition.self, from: request)
        let definition = AttributeDefinition(name: name, type: body.type, pii: body.pii, indexed: body.indexed)
        try await vault.changeAttribute(definition, workspace: workspace.id, actor: actor, requestID: context.requestID)
        return JSONResponse.make(Definition(name: name.rawValue, type: body.type, pii: body.pii, indexed: body.indexed))
    }
}

/// `GET /v1/workspaces/{ws}/audit` (administrators), filtered by action, customer, actor and time.
struct AuditController {
    let vault: Vault

    struct Entry: Encodable {
        var seq: Int64
        var at: Date
        var actorType: String
        var actorID: String
        var action: String
        var customerID: String?
        var attributes: [String]
        var reason: String?
        var requestID: String?
        var hash: String

        enum CodingKeys: String, CodingKey {
            case seq, at, actorType = "actor_type", actorID = "actor_id", action, customerID = "customer_id", attributes, reason,
                 requestID = "request_id", hash
        }
    }

    struct Page: Encodable {
        var entries: [Entry]
        var nextAfter: Int64?
        enum CodingKeys: String, CodingKey { case entries, nextAfter = "next_after" }
    }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.get("workspaces/:workspace/audit", use: list)
    }

    @Sendable func list(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let query = request.uri.queryParameters
        var filter = AuditFilter()
        if let action = query.get("action") {
            guard let parsed = AuditAction(rawValue: action) else {
                throw Failure(.attribute, attribute: "action", "unknown action; one of \(AuditAction.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.action = parsed
        }
        filter.customerID = query.get("customer_id").map { $0.removingPercentEncoding ?? $0 }
        filter.actorID = query.get("actor_id")
        func date(_ name: String) throws -> Date? {
            guard let text = query.get(name) else { return nil }
            guard let date = ISO8601DateFormatter().date(from: text) else {
                throw Failure(.attribute, attribute: name, "\(name) must be an ISO 8601 date-time such as 2026-11-25T10:00:00Z")
            }
            return date
        }
        filter.since = try date("since")
        filter.until = try date("until")
        if let after = query.get("after") {
            guard let seq = Int64(after) else { throw Failure(.attribute, attribute: "after", "after must be an entry number") }
            filter.afterSeq = seq
        }
        if let limit = query.get("limit") {
            guard let value = Int(limit), (1...1_000).contains(value) else {
                throw Failure(.attribute, attribute: "limit", "limit must be between 1 and 1000")
            }
            filter.limit = value
        }
        let records = try await vault.auditLog(workspace: workspace.id, filter: filter, actor: actor)
        let entries = records.map { record in
            Entry(seq: record.entry.seq, at: record.entry.draft.at, actorType: record.entry.draft.actorType,
                  actorID: record.entry.draft.actorID, action: record.entry.draft.action.rawValue,
                  customerID: record.entry.draft.customerID, attributes: record.entry.draft.attributes, reason: record.reason,
                  requestID: record.entry.draft.requestID, hash: record.entry.hash.hexEncoded)
        }
        return JSONResponse.make(Page(entries: entries, nextAfter: entries.count == filter.limit ? entries.last?.seq : nil))
    }
}

/// `PUT /v1/workspaces/{ws}/providers/{channel}` (administrators): a channel's provider and its
/// settings; credentials are sealed at rest and never returned.
struct ProviderController {
    let vault: Vault

    struct Body: Decodable {
        var kind: String
        var settings: [String: String]
    }

    struct Answer: Encodable {
        var channel: String
        var kind: String
        var settings: [String]
    }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.put("workspaces/:workspace/providers/:channel", use: set)
    }

    @Sendable func set(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        guard let channel = Channel(rawValue: try context.parameters.require("channel")) else {
            throw Failure(.attribute, attribute: "channel", "channel must be email, sms or whatsapp")
        }
        let body = try await JSONBody.decode(Body.self, from: request)
        try await vault.setProvider(workspace.id, channel: channel, kind: body.kind, settings: body.settings, actor: actor,
                                    requestID: context.requestID)
        // Setting names only: the values hold credentials.
        return JSONResponse.make(Answer(channel: channel.rawValue, kind: body.kind, settings: body.settings.keys.sorted()))
    }
}
