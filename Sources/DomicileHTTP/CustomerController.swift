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

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.get("workspaces/:workspace/customers/:customer_id", use: show)
        group.get("workspaces/:workspace/customers", use: lookup)
    }

    @Sendable func show(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let workspace = try context.authenticatedWorkspace()
        let encoded = try context.parameters.require("customer_id")
        let raw = encoded.removingPercentEncoding ?? encoded
        // Unknown and malformed ids get the same 404: neither answer repeats the id.
        guard let id = try? CustomerID(validating: raw, allowIdentifying: true),
              let view = try await vault.customerView(id, workspace: workspace.id)
        else {
            throw Failure(.notFound, attribute: "customer_id", "no customer with this id in this workspace")
        }
        return JSONResponse.make(CustomerBody(view))
    }

    @Sendable func lookup(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let workspace = try context.authenticatedWorkspace()
        let query = request.uri.queryParameters
        let identity: LookupIdentity
        if let email = query.get("email") {
            identity = .email(email)
        } else if let mobile = query.get("mobile") {
            // An unencoded '+' may arrive as a space after form decoding by a client library.
            identity = .mobile(mobile.hasPrefix(" ") ? "+" + mobile.dropFirst() : mobile)
        } else if let attribute = query.get("attribute"), let value = query.get("value") {
            identity = .attribute(try AttributeName(validating: attribute), value)
        } else {
            throw Failure(.missingAttribute, attribute: "email",
                          "look customers up with ?email=, ?mobile= or ?attribute=NAME&value=VALUE")
        }
        let views = try await vault.lookup(identity, workspace: workspace.id)
        return JSONResponse.make(CustomerList(customers: views.map(CustomerBody.init)))
    }
}
