import DomicileCore
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird

/// Reading customers: by id, or through the blind index by e-mail, mobile or another indexed attribute.
/// Values are masked by type; nothing from the request is echoed in an answer.
struct CustomerController {
    let vault: Vault

    struct CustomerBody: Encodable {
        var customerID: String
        var attributes: [String: JSONValue]
        var restricted: Bool
        var createdAt: Date
        var updatedAt: Date

        enum CodingKeys: String, CodingKey {
            case customerID = "customer_id", attributes, restricted, createdAt = "created_at", updatedAt = "updated_at"
        }

        init(_ view: CustomerView) {
            customerID = view.customerID.rawValue
            attributes = view.attributes
            restricted = view.restricted
            createdAt = view.createdAt
            updatedAt = view.updatedAt
        }
    }

    struct CustomerList: Encodable {
        var customers: [CustomerBody]
    }

    struct RevealRequest: Decodable {
        var reason: String
        var attributes: [String]
    }

    struct Revealed: Encodable {
        var customerID: String
        var attributes: [String: JSONValue]

        enum CodingKeys: String, CodingKey { case customerID = "customer_id", attributes }
    }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.get("workspaces/:workspace/customers/:customer_id", use: show)
        group.get("workspaces/:workspace/customers", use: lookup)
        group.post("workspaces/:workspace/customers/:customer_id/reveal", use: reveal)
    }

    /// The customer id in the path, percent-decoded; unknown and malformed ids get the same 404,
    /// and neither answer repeats the id.
    static func customerID(_ context: DomicileRequestContext) throws -> CustomerID {
        let encoded = try context.parameters.require("customer_id")
        // Foundation's percent-decoding was 2% of a read's CPU; most ids have nothing to decode.
        let decoded = encoded.utf8.contains(UInt8(ascii: "%")) ? encoded.removingPercentEncoding ?? encoded : encoded
        guard let id = try? CustomerID(validating: decoded, allowIdentifying: true) else {
            throw notFound
        }
        return id
    }

    static let notFound = Failure(.notFound, attribute: "customer_id", "no customer with this id in this workspace")

    @Sendable func show(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let id = try Self.customerID(context)
        guard let view = try await vault.read(id, workspace: workspace.id, actor: actor, requestID: context.requestID) else {
            throw Self.notFound
        }
        return JSONResponse.make(Self.body(view))
    }

    /// The answer of a read, written directly (the same bytes `CustomerBody` encodes to, keys sorted).
    static func body(_ view: CustomerView) -> [UInt8] {
        var writer = JSONWriter()
        write(view, to: &writer)
        return writer.bytes
    }

    static func write(_ view: CustomerView, to writer: inout JSONWriter) {
        writer.beginObject()
        writer.key("attributes")
        writer.value(.object(view.attributes))
        writer.key("created_at")
        writer.date(view.createdAt)
        writer.key("customer_id")
        writer.string(view.customerID.rawValue)
        writer.key("restricted")
        writer.bool(view.restricted)
        writer.key("updated_at")
        writer.date(view.updatedAt)
        writer.endObject()
    }

    @Sendable func reveal(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let id = try Self.customerID(context)
        let body = try await JSONBody.decode(RevealRequest.self, from: request)
        let values = try await vault.reveal(id, attributes: body.attributes, reason: body.reason, workspace: workspace.id,
                                            actor: actor, requestID: context.requestID)
        return JSONResponse.make(Revealed(customerID: id.rawValue, attributes: values))
    }

    @Sendable func lookup(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let query = request.uri.queryParameters
        let identity: LookupIdentity
        if let email = query.get("email") {
            identity = .email(email)
        } else if let mobile = query.get("mobile") {
            // An unencoded '+' may arrive as a space after form decoding by a client library.
            identity = .mobile(mobile.hasPrefix(" ") ? "+" + mobile.dropFirst() : mobile)
        } else if let attribute = query.get("attribute"), let digest = query.get("digest") {
            // Client mode: the digest the brand computed with its own index key.
            guard let bytes = Data(base64Encoded: digest.replacingOccurrences(of: " ", with: "+")) else {
                throw Failure(.attribute, attribute: "digest", "digest must be standard base64")
            }
            identity = .digest(try AttributeName(validating: attribute), [UInt8](bytes))
        } else if let attribute = query.get("attribute"), let value = query.get("value") {
            identity = .attribute(try AttributeName(validating: attribute), value)
        } else {
            throw Failure(.missingAttribute, attribute: "email",
                          "look customers up with ?email=, ?mobile=, ?attribute=NAME&value=VALUE or, in client mode, ?attribute=NAME&digest=BASE64")
        }
        let views = try await vault.lookup(identity, workspace: workspace.id, actor: actor, requestID: context.requestID)
        var writer = JSONWriter(capacity: 64 + 512 * views.count)
        writer.beginObject()
        writer.key("customers")
        writer.beginArray()
        for view in views { Self.write(view, to: &writer) }
        writer.endArray()
        writer.endObject()
        return JSONResponse.make(writer.bytes)
    }
}
