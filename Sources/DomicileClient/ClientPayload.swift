import DomicileCore
import Foundation

/// The brand-side transformations of whole payloads: an ingest payload in clear into the same
/// payload with envelopes, and an access or portability export back into clear.
public struct ClientPayload: Sendable {
    public let keys: BrandKeys
    public let workspace: WorkspaceID
    /// The workspace's schema as the brand declares it: which attributes are PII (encrypted),
    /// indexed (a digest travels with them) and of which type (validation and masking).
    public let schema: PIISchema

    public init(keys: BrandKeys, workspace: WorkspaceID, schema: PIISchema = PIISchema()) {
        self.keys = keys
        self.workspace = workspace
        self.schema = schema
    }

    /// Encrypts a MoEngage-shaped payload (`{"type":"transition","elements":[…]}` or one customer
    /// element). Every element is validated with vault mode's rules (e-mail, E.164 phone, sizes,
    /// the PII limit) and normalised first; the first refusal is thrown, naming its element.
    /// Attributes the schema marks non-PII stay in clear.
    public func encrypt(_ payload: JSONValue) throws -> JSONValue {
        guard case .object(var fields) = payload else { throw ClientError("the payload must be a JSON object") }
        if case .array(let elements)? = fields["elements"] {
            fields["elements"] = .array(try elements.enumerated().map { index, element in
                do {
                    return try encryptElement(element, requireType: true)
                } catch let failure as Failure {
                    throw ClientError("element \(index) refused: \(failure.attribute.map { "\($0): " } ?? "")\(failure.message)")
                }
            })
            return .object(fields)
        }
        do {
            return try encryptElement(payload, requireType: false)
        } catch let failure as Failure {
            throw ClientError("customer refused: \(failure.attribute.map { "\($0): " } ?? "")\(failure.message)")
        }
    }

    func encryptElement(_ element: JSONValue, requireType: Bool) throws -> JSONValue {
        guard case .object(var fields) = element else { throw Failure(.attribute, attribute: "elements", "each element must be a JSON object") }
        let (upsert, _) = try CustomerUpsert.parse(element, schema: schema, allowIdentifyingCustomerIDs: true, requireType: requireType)
        var attributes: [String: JSONValue] = [:]
        for name in upsert.remove { attributes[name.rawValue] = .null }
        for (name, value) in upsert.set {
            let definition = schema[name] ?? AttributeDefinition(name: name, type: value.inferredType)
            guard definition.pii else {
                attributes[name.rawValue] = value.json
                continue
            }
            attributes[name.rawValue] = try keys.seal(value, workspace: workspace.rawValue, customer: upsert.customerID.rawValue,
                                                      attribute: name.rawValue, masked: Masking.mask(value, as: definition.type),
                                                      indexed: definition.indexed).json
        }
        fields["attributes"] = .object(attributes)
        return .object(fields)
    }

    /// Opens every envelope of an export (`{"export":{"customers":[…]}}`, `{"customers":[…]}`, or
    /// a single customer), leaving values in clear as they are.
    public func decryptExport(_ export: JSONValue) throws -> JSONValue {
        switch export {
        case .object(var fields) where fields["export"] != nil:
            fields["export"] = try decryptExport(fields["export"]!)
            return .object(fields)
        case .object(var fields) where fields["customers"] != nil:
            guard case .array(let customers)? = fields["customers"] else { throw ClientError("customers must be an array") }
            fields["customers"] = .array(try customers.map(decryptCustomer))
            return .object(fields)
        case .object:
            return try decryptCustomer(export)
        default:
            throw ClientError("an export is a JSON object")
        }
    }

    func decryptCustomer(_ customer: JSONValue) throws -> JSONValue {
        guard case .object(var fields) = customer, case .string(let id)? = fields["customer_id"],
              case .object(let attributes)? = fields["attributes"]
        else { throw ClientError("each customer of an export has a customer_id and attributes") }
        fields["attributes"] = .object(try attributes.reduce(into: [:]) { opened, entry in
            if ClientEnvelope.looksLikeEnvelope(entry.value) {
                let envelope = try ClientEnvelope.parse(entry.value, attribute: entry.key)
                opened[entry.key] = try keys.open(envelope, workspace: workspace.rawValue, customer: id, attribute: entry.key).json
            } else {
                opened[entry.key] = entry.value
            }
        })
        return .object(fields)
    }
}
