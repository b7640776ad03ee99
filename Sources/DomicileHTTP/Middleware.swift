import DomicileCore
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics

/// Outermost middleware: logs one line per request, counts it (route template, method, status)
/// with its latency, and turns every error into the JSON error shape.
///
/// It logs the method, the matched route's pattern (`/v1/workspaces/{workspace}/customers/{customer_id}`),
/// not the path: query strings carry e-mail addresses and phone numbers, and a workspace may
/// allow identifying customer ids. Never a header value or a body.
struct RequestLogMiddleware: RouterMiddleware {
    typealias Context = DomicileRequestContext

    @concurrent func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            do {
                response = try ErrorResponse.response(for: error, context: context)
            } catch {
                // Broken framing: Hummingbird answers 400 and closes the connection.
                log(request, context: context, status: 400, since: start)
                throw error
            }
        }
        response.headers[.requestID] = context.requestID
        log(request, context: context, status: response.status.code, since: start)
        return response
    }

    func log(_ request: Request, context: Context, status: Int, since start: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - start
        let route = context.endpointPath ?? "unmatched"
        let dimensions = [("route", route), ("method", request.method.rawValue), ("status", String(status))]
        Counter(label: "domicile_http_requests_total", dimensions: dimensions).increment()
        Timer(label: "domicile_http_request_duration_seconds", dimensions: dimensions).record(duration: elapsed)
        context.logger.info("request", metadata: [
            "http.method": "\(request.method.rawValue)",
            "http.route": "\(route)",
            "http.status": "\(status)",
            "duration_ms": "\(Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)",
        ])
    }
}

/// The API's gate: HTTP Basic (workspace id : data API key) for the brand's backend, or a bearer
/// session token for an operator; then the workspace in the path, suspension, and the
/// per-workspace rate limit, in that order. Permissions are checked by each route.
struct DataAPIAuthMiddleware: RouterMiddleware {
    typealias Context = DomicileRequestContext
    let vault: Vault
    let limiter: RateLimiter

    @concurrent func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        let authorization = request.headers[.authorization]
        var found: (WorkspaceRecord, Actor)?
        if let authorization, authorization.utf8.count > 6, authorization.utf8.prefix(6).elementsEqual("basic ".utf8, by: Self.caseInsensitive) {
            if let (workspace, keyID) = try await vault.authenticate(basicAuthorization: authorization) {
                found = (workspace, .apiKey(id: keyID))
            }
        } else if let token = Self.bearerToken(authorization), let record = try await vault.authenticateSession(token: token),
                  let workspace = try await vault.workspace(record.workspaceID) {
            found = (workspace, record.actor)
        }
        guard let (workspace, actor) = found else {
            // One answer for an unknown workspace, a wrong key and an expired session, so none can be probed.
            throw Failure(.unauthorized, "missing or invalid credentials: use HTTP Basic with the workspace id and its data API key, or an operator's bearer token")
        }
        if let inPath = context.parameters.get("workspace"), inPath != workspace.id.rawValue {
            throw Failure(.workspaceMismatch, attribute: "workspace_id", "the workspace in the path is not the one the credentials belong to")
        }
        if workspace.suspended {
            throw Failure(.forbidden, "this workspace is suspended")
        }
        // Residency was checked by `ResidencyMiddleware`, before the credentials.
        let decision = limiter.admit(workspace.id, limit: workspace.rateLimitPerMinute)
        var headers: HTTPFields = [
            .rateLimitLimit: "\(decision.limit)",
            .rateLimitRemaining: "\(decision.remaining)",
            .rateLimitReset: "\(decision.resetSeconds)",
        ]
        guard decision.allowed else {
            headers[.retryAfter] = "\(decision.resetSeconds)"
            return ErrorResponse.response(
                Failure(.rateLimited, "rate limit of \(decision.limit) requests a minute reached; retry after \(decision.resetSeconds) s"),
                requestID: context.requestID, headers: headers)
        }
        var context = context
        context.workspace = workspace
        context.actor = actor
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

    static func bearerToken(_ header: String?) -> String? {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        return String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
    }

    static func caseInsensitive(_ byte: UInt8, _ lower: UInt8) -> Bool {
        byte == lower || (byte >= UInt8(ascii: "A") && byte <= UInt8(ascii: "Z") && byte + 32 == lower)
    }
}

extension HTTPField.Name {
    static let requestID = Self("X-Request-Id")!
    static let rateLimitLimit = Self("X-RateLimit-Limit")!
    static let rateLimitRemaining = Self("X-RateLimit-Remaining")!
    static let rateLimitReset = Self("X-RateLimit-Reset")!
}
