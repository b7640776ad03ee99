import DomicileCore
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Data-subject requests in the OpenGDPR shape:
/// `POST /v1/opengdpr_requests/{ws}` and `GET /v1/opengdpr_requests/{ws}/{request_id}[?format=csv]`.
struct SubjectRequestController {
    let vault: Vault

    struct SubmitRequest: Decodable {
        struct Identity: Decodable {
            var identityType: String
            var identityValue: String
            enum CodingKeys: String, CodingKey { case identityType = "identity_type", identityValue = "identity_value" }
        }
        var requestType: String
        var submittedTime: String?
        var identities: [Identity]
        var apiVersion: String?

        enum CodingKeys: String, CodingKey {
            case requestType = "request_type", submittedTime = "submitted_time", identities, apiVersion = "api_version"
        }
    }

    struct Submitted: Encodable {
        var status = "success"
        var requestID: String
        var requestType: String
        var receivedTime: Date
        var customersAffected: Int

        enum CodingKeys: String, CodingKey {
            case status, requestID = "request_id", requestType = "request_type", receivedTime = "received_time",
                 customersAffected = "customers_affected"
        }
    }

    struct StatusBody: Encodable {
        var requestID: String
        var requestType: String
        var status: String
        var submittedTime: Date?
        var receivedTime: Date
        var completedTime: Date?
        var identityTypes: [String]
        var customersAffected: Int
        var export: CustomerController.CustomerList?

        enum CodingKeys: String, CodingKey {
            case requestID = "request_id", requestType = "request_type", status, submittedTime = "submitted_time",
                 receivedTime = "received_time", completedTime = "completed_time", identityTypes = "identity_types",
                 customersAffected = "customers_affected", export
        }
    }

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.post("opengdpr_requests/:workspace", use: submit)
        group.get("opengdpr_requests/:workspace/:request_id", use: show)
    }

    @Sendable func submit(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let body = try await JSONBody.decode(SubmitRequest.self, from: request)
        guard let type = SubjectRequestType(rawValue: body.requestType) else {
            throw Failure(.attribute, attribute: "request_type",
                          "request_type must be one of \(SubjectRequestType.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let version = body.apiVersion, version != "1.0" {
            throw Failure(.attribute, attribute: "api_version", "api_version must be \"1.0\"")
        }
        var submittedAt: Date?
        if let submitted = body.submittedTime {
            guard let date = ISO8601DateFormatter().date(from: submitted) else {
                throw Failure(.attribute, attribute: "submitted_time", "submitted_time must be an ISO 8601 date-time such as 2026-11-01T10:00:00Z")
            }
            submittedAt = date
        }
        let identities = try body.identities.map { identity in
            guard let kind = SubjectIdentity.Kind(rawValue: identity.identityType) else {
                throw Failure(.attribute, attribute: "identity_type", "identity_type must be email, mobile, id, email_digest or mobile_digest")
            }
            return SubjectIdentity(kind: kind, value: identity.identityValue)
        }
        let record = try await vault.submitSubjectRequest(type, identities: identities, submittedAt: submittedAt,
                                                          workspace: workspace.id, actor: actor, requestID: context.requestID)
        return JSONResponse.make(Submitted(requestID: record.id, requestType: record.type, receivedTime: record.receivedAt,
                                           customersAffected: record.customerIDs.count))
    }

    @Sendable func show(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let id = try context.parameters.require("request_id")
        let format = request.uri.queryParameters.get("format") ?? "json"
        guard format == "json" || format == "csv" else {
            throw Failure(.attribute, attribute: "format", "format must be json or csv")
        }
        let (record, export) = try await vault.subjectRequest(id, workspace: workspace.id, actor: actor, requestID: context.requestID)
        if format == "csv" {
            guard let export, record.type == SubjectRequestType.portability.rawValue else {
                throw Failure(.attribute, attribute: "format", "CSV exports are made for portability requests")
            }
            return Response(status: .ok, headers: [.contentType: "text/csv; charset=utf-8",
                                                   .contentDisposition: "attachment; filename=\"\(record.id).csv\"",
                                                   .cacheControl: "no-store"],
                            body: .init(byteBuffer: ByteBuffer(string: CSVExport.render(export))))
        }
        return JSONResponse.make(StatusBody(
            requestID: record.id, requestType: record.type, status: record.status, submittedTime: record.submittedAt,
            receivedTime: record.receivedAt, completedTime: record.completedAt, identityTypes: record.identityTypes,
            customersAffected: record.customerIDs.count,
            export: export.map { CustomerController.CustomerList(customers: $0.map(CustomerController.CustomerBody.init)) }),
            headers: [.cacheControl: "no-store"])
    }
}

/// RFC 4180 CSV: one row per customer, one column per attribute any of them has.
enum CSVExport {
    static func render(_ customers: [CustomerView]) -> String {
        let names = Set(customers.flatMap(\.attributes.keys)).sorted()
        let formatter = ISO8601DateFormatter()
        var lines = [(["customer_id", "restricted", "created_at", "updated_at"] + names).map(field).joined(separator: ",")]
        for customer in customers {
            let fixed = [customer.customerID.rawValue, String(customer.restricted), formatter.string(from: customer.createdAt),
                         formatter.string(from: customer.updatedAt)]
            let values = names.map { name -> String in
                switch customer.attributes[name] {
                case .string(let text)?: text
                case .integer(let number)?: String(number)
                case .double(let number)?: String(number)
                case .bool(let flag)?: String(flag)
                // A client-mode workspace's values in clear for the caller are the brand's envelopes.
                case let object?: String(decoding: { var writer = JSONWriter(); writer.value(object); return writer.bytes }(), as: UTF8.self)
                default: ""
                }
            }
            lines.append((fixed + values).map(field).joined(separator: ","))
        }
        return lines.joined(separator: "\r\n") + "\r\n"
    }

    static func field(_ text: String) -> String {
        let text = neutralized(text)
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" }) else { return text }
        return "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A cell a spreadsheet would read as a formula (it starts with `=`, `+`, `-`, `@`, a tab or
    /// a carriage return: OWASP's list) gets a leading `'`, which spreadsheets show as text. A
    /// brand's customers fill in these values, and an export is opened by whoever handles the
    /// request. Plain numbers are left as they are, since they cannot be formulas: a phone
    /// number such as `+971501234567`, `-42`, `-3.5`.
    static func neutralized(_ text: String) -> String {
        guard let first = text.utf8.first,
              [UInt8(ascii: "="), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "@"), 0x09, 0x0D].contains(first),
              !isPlainNumber(text)
        else { return text }
        return "'" + text
    }

    /// `[+-]digits[.digits]`.
    static func isPlainNumber(_ text: String) -> Bool {
        let sign = text.utf8.first == UInt8(ascii: "+") || text.utf8.first == UInt8(ascii: "-")
        let parts = text.utf8.dropFirst(sign ? 1 : 0).split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        return parts.count <= 2 && parts.allSatisfy { !$0.isEmpty && $0.allSatisfy { $0 >= 0x30 && $0 <= 0x39 } }
    }
}
