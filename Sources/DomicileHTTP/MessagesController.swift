import DomicileCore
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import NIOSSL

/// The main data center's gate: each request is signed with a send key,
/// `X-Domicile-Key: <key id>`, `X-Domicile-Timestamp: <unix seconds>`,
/// `X-Domicile-Signature: v1=hex(HMAC-SHA256(secret, timestamp \n METHOD \n path \n body))`.
/// A stale timestamp (over 5 minutes) or a bad signature is a 401. The authenticator only
/// needs the workspace, the method, the path and the body, so a mutual-TLS authenticator can
/// stand beside it.
struct SendAuthMiddleware: RouterMiddleware {
    typealias Context = DomicileRequestContext
    let vault: Vault
    let limiter: RateLimiter
    /// Mutual TLS: a client certificate from the configured CA, bound to the workspace, is
    /// required before the signature is even looked at.
    let requireClientCertificate: Bool
    /// The relay's routes (relay keys, `rk_…`) rather than the main data center's (send keys).
    var relay = false
    /// Send batches are larger than ingest bodies: up to 1,000 messages.
    static let maximumBody = 4 * 1024 * 1024

    @concurrent func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        let refusal = Failure(.unauthorized, relay
            ? "missing, stale or invalid signature: sign the request with the workspace's relay key"
            : "missing, stale or invalid signature: sign the request with the workspace's send key")
        if requireClientCertificate { try await checkClientCertificate(context) }
        guard let rawWorkspace = context.parameters.get("workspace"), let workspaceID = try? WorkspaceID(validating: rawWorkspace),
              let keyID = request.headers[HTTPField.Name("X-Domicile-Key")!],
              let timestamp = request.headers[HTTPField.Name("X-Domicile-Timestamp")!],
              let signature = request.headers[HTTPField.Name("X-Domicile-Signature")!],
              let workspace = try await vault.workspace(workspaceID)
        else { throw refusal }
        var request = request
        let body = try await JSONBody.collect(&request, upTo: Self.maximumBody)
        guard try await vault.verifySendRequest(workspace: workspaceID, keyID: keyID, timestamp: timestamp, signature: signature,
                                                method: request.method.rawValue, path: request.uri.path, body: Array(buffer: body),
                                                relay: relay)
        else { throw refusal }
        if workspace.suspended { throw Failure(.forbidden, "this workspace is suspended") }
        var context = context
        context.workspace = workspace
        if relay {
            // The brand's relay polls for its work: its calls do not spend the workspace's
            // requests a minute, which are the brand's backend's and the main data center's.
            context.actor = .relay(keyID: keyID)
            return try await next(request, context)
        }
        let decision = limiter.admit(workspace.id, limit: workspace.rateLimitPerMinute)
        let headers: HTTPFields = [.rateLimitLimit: "\(decision.limit)", .rateLimitRemaining: "\(decision.remaining)",
                                   .rateLimitReset: "\(decision.resetSeconds)"]
        guard decision.allowed else {
            var limited = headers
            limited[.retryAfter] = "\(decision.resetSeconds)"
            return ErrorResponse.response(Failure(.rateLimited, "rate limit of \(decision.limit) requests a minute reached"),
                                          requestID: context.requestID, headers: limited)
        }
        context.actor = .mainDataCenter
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            // Refusals carry the rate-limit headers too: they counted against the limit.
            response = try ErrorResponse.response(for: error, context: context)
        }
        for field in headers { response.headers[field.name] = field.value }
        return response
    }
}

extension SendAuthMiddleware {
    /// The certificate the connection's TLS handshake verified against the client CAs, and the
    /// workspace it names. A plain-HTTP connection has none.
    func checkClientCertificate(_ context: Context) async throws {
        let certificate = try? await context.channel.nioSSL_peerCertificate().get()
        guard let certificate else {
            throw Failure(.unauthorized, "this route requires a client certificate issued by the configured CA (mutual TLS)")
        }
        guard let workspace = context.parameters.get("workspace"), ClientCertificateBinding.workspaces(of: certificate).contains(workspace) else {
            throw Failure(.unauthorized, "the client certificate is not bound to this workspace: its subject common name or a URI SAN urn:domicile:workspace:<id> must name it")
        }
    }
}

/// `POST /v1/workspaces/{ws}/messages` and `GET /v1/workspaces/{ws}/messages/{message_id}`.
struct MessagesController {
    let vault: Vault

    struct Result: Encodable {
        var messageID: String?
        var accepted: Bool
        var duplicate: Bool?
        var status: String?
        var reason: String?
        var field: String?
        var segments: Int?
        var encoding: String?

        enum CodingKeys: String, CodingKey {
            case messageID = "message_id", accepted, duplicate, status, reason, field, segments, encoding
        }
    }

    struct Answer: Encodable {
        var status: String
        var accepted: Int
        var refused: Int
        var results: [Result]
    }

    struct History: Encodable {
        struct Step: Encodable {
            var status: String
            var at: Date
            var errorCode: String?
            enum CodingKeys: String, CodingKey { case status, at, errorCode = "error_code" }
        }
        var messageID: String
        var customerID: String
        var campaignID: String?
        var channel: String
        var status: String
        var attempts: Int
        var segments: Int?
        var encoding: String?
        var history: [Step]

        enum CodingKeys: String, CodingKey {
            case messageID = "message_id", customerID = "customer_id", campaignID = "campaign_id", channel, status, attempts, segments,
                 encoding, history
        }
    }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.post("workspaces/:workspace/messages", use: send)
        group.get("workspaces/:workspace/messages/:message_id", use: show)
    }

    @Sendable func send(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let body = try await JSONBody.read(request, maximumSize: SendAuthMiddleware.maximumBody)
        let items: [JSONValue]
        switch body {
        case .object(let fields) where fields["messages"] != nil:
            guard case .array(let list)? = fields["messages"] else { throw Failure(.attribute, attribute: "messages", "messages must be an array") }
            items = list
        case .object:
            items = [body]
        default:
            throw Failure(.attribute, "request body must be a message object or {\"messages\":[…]}")
        }
        guard !items.isEmpty else { throw Failure(.attribute, attribute: "messages", "messages cannot be empty array") }
        guard items.count <= Vault.maximumMessagesPerRequest else {
            throw Failure(.attribute, attribute: "messages", "at most \(Vault.maximumMessagesPerRequest) messages in one request")
        }
        let results = try await vault.acceptMessages(items, workspace: workspace, actor: actor)
        let accepted = results.filter(\.accepted).count
        return JSONResponse.make(Answer(
            status: accepted == results.count ? "accepted" : accepted == 0 ? "refused" : "partial",
            accepted: accepted, refused: results.count - accepted,
            results: results.map {
                Result(messageID: $0.messageID, accepted: $0.accepted, duplicate: $0.duplicate ? true : nil, status: $0.status?.rawValue,
                       reason: $0.reason?.rawValue, field: $0.field, segments: $0.segments, encoding: $0.encoding)
            }), status: .accepted)
    }

    @Sendable func show(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let id = try context.parameters.require("message_id")
        let (message, history) = try await vault.messageHistory(id, workspace: workspace.id, actor: actor)
        return JSONResponse.make(History(
            messageID: message.messageID, customerID: message.customerID.rawValue, campaignID: message.campaignID,
            channel: message.channel.rawValue, status: message.status.rawValue, attempts: message.attempts, segments: message.segments,
            encoding: message.encoding, history: history.map { .init(status: $0.status.rawValue, at: $0.at, errorCode: $0.errorCode) }))
    }
}
