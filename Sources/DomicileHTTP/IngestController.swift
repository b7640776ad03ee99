import DomicileCore
import DomicileVault
import HTTPTypes
import Hummingbird

/// `POST /v1/transition/{workspace}` (bulk) and `POST /v1/customer/{workspace}` (one customer).
///
/// Bulk status: 200 when every element was accepted; 207 when some were stored and some refused
/// (the refused ones are listed with their index); 400 when none was accepted. A refused element
/// never writes anything, and whatever was accepted is on disk before the answer leaves.
struct IngestController {
    let vault: Vault

    struct Accepted: Encodable {
        var status: String
        var message: String
        var requestID: String
        var created: Int
        var updated: Int
        var skipped: Int
        var errors: [ErrorResponse.Body.Detail]?

        enum CodingKeys: String, CodingKey {
            case status, message, requestID = "request_id", created, updated, skipped, errors
        }
    }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.post("transition/:workspace", use: transition)
        group.post("customer/:workspace", use: customer)
    }

    @Sendable func transition(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let body = try await JSONBody.read(request)
        guard case .object(let fields) = body else {
            throw Failure(.attribute, "request body must be a JSON object")
        }
        switch fields["type"] {
        case .string("transition"): break
        case nil: throw Failure(.missingAttribute, attribute: "type", "type is required and must be \"transition\"")
        default: throw Failure(.attribute, attribute: "type", "type must be \"transition\"")
        }
        guard let elementsValue = fields["elements"] else {
            throw Failure(.missingAttribute, attribute: "elements", "elements is required")
        }
        guard case .array(let elements) = elementsValue else {
            throw Failure(.attribute, attribute: "elements", "elements must be an array")
        }
        guard !elements.isEmpty else {
            throw Failure(.attribute, attribute: "elements", "elements cannot be empty array")
        }
        let report = try await vault.ingest(elements, workspace: workspace, actor: actor)
        return answer(report, total: elements.count, requestID: context.requestID)
    }

    @Sendable func customer(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let body = try await JSONBody.read(request)
        let report = try await vault.ingest([body], workspace: workspace, actor: actor, requireType: false)
        if let failure = report.refused.first {
            var single = failure
            single.element = nil
            throw single
        }
        return answer(report, total: 1, requestID: context.requestID)
    }

    private func answer(_ report: IngestReport, total: Int, requestID: String) -> Response {
        if report.refused.isEmpty {
            // The common answer, written directly (the bytes `Accepted` encodes to, keys sorted).
            var writer = JSONWriter(capacity: 192)
            writer.beginObject()
            writer.key("created")
            writer.integer(Int64(report.created))
            writer.key("message")
            writer.string("accepted: \(report.created) created, \(report.updated) updated, \(report.skipped) skipped (update_existing_only)")
            writer.key("request_id")
            writer.string(requestID)
            writer.key("skipped")
            writer.integer(Int64(report.skipped))
            writer.key("status")
            writer.string("success")
            writer.key("updated")
            writer.integer(Int64(report.updated))
            writer.endObject()
            return JSONResponse.make(writer.bytes)
        }
        if report.accepted == 0 {
            return ErrorResponse.response(
                Failure(report.refused[0].kind, attribute: report.refused[0].attribute,
                        "all \(total) elements were refused; see errors", element: nil),
                all: report.refused, requestID: requestID, status: .badRequest)
        }
        return JSONResponse.make(
            Accepted(status: "partial", message: "\(report.accepted) of \(total) elements accepted and stored; \(report.refused.count) refused, see errors",
                     requestID: requestID, created: report.created, updated: report.updated, skipped: report.skipped,
                     errors: report.refused.map { ErrorResponse.detail($0, requestID: nil) }),
            status: HTTPResponse.Status(code: 207, reasonPhrase: "Multi-Status"))
    }
}
