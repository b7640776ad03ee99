/// One customer element of an ingest request, checked and normalised, ready to be sealed.
public struct CustomerUpsert: Sendable, Hashable {
    public var customerID: CustomerID
    public var updateExistingOnly: Bool
    /// Attributes to set, in their stored (normalised) form.
    public var set: [AttributeName: AttributeValue]
    /// Attributes to set to what the brand encrypted with its own key (client mode).
    public var envelopes: [AttributeName: ClientEnvelope]
    /// Attributes the request sent as `null`: removed.
    public var remove: Set<AttributeName>

    public init(customerID: CustomerID, updateExistingOnly: Bool = false,
                set: [AttributeName: AttributeValue], envelopes: [AttributeName: ClientEnvelope] = [:], remove: Set<AttributeName> = []) {
        self.customerID = customerID
        self.updateExistingOnly = updateExistingOnly
        self.set = set
        self.envelopes = envelopes
        self.remove = remove
    }

    /// Keys a customer element may carry besides its attributes (compared, not hashed: four short strings).
    static func isElementKey(_ key: String) -> Bool {
        key == "customer_id" || key == "attributes" || key == "type" || key == "update_existing_only"
    }

    /// Reads one `{"type":"customer","customer_id":…,"attributes":{…}}` element.
    ///
    /// - Parameter schema: the workspace's schema; attributes it does not know are returned in
    ///   `newAttributes` with a type inferred from their JSON value, PII, not indexed.
    /// - Throws: a `Failure` naming the attribute and the reason; no value from the element is in it.
    /// - Parameter protection: in client mode a PII attribute's value must be a `ClientEnvelope`
    ///   and a value in clear is refused; only attributes the schema marks non-PII may be in clear.
    public static func parse(_ element: JSONValue, schema: PIISchema, allowIdentifyingCustomerIDs: Bool,
                             requireType: Bool = true, protection: ProtectionMode = .vault) throws(Failure)
        -> (upsert: CustomerUpsert, newAttributes: [AttributeDefinition])
    {
        guard case .object(let fields) = element else {
            throw Failure(.attribute, attribute: requireType ? "elements" : nil,
                          requireType ? "each element must be a JSON object" : "request body must be a JSON object")
        }
        switch fields["type"] {
        case .string("customer"):
            break
        case .string(let type) where type == "event" || type == "device":
            throw Failure(.attribute, attribute: "type",
                          "\(type) elements carry behaviour, not PII: send them to the main data center, not to Domicile")
        case nil where !requireType:
            break
        case nil:
            throw Failure(.missingAttribute, attribute: "type", "type is required and must be \"customer\"")
        default:
            throw Failure(.attribute, attribute: "type", "type must be \"customer\" (lower-case)")
        }
        if !fields.keys.allSatisfy(isElementKey), let unknown = fields.keys.sorted().first(where: { !isElementKey($0) }) {
            let safeName = (try? AttributeName(validating: unknown))?.rawValue
            throw Failure(.attribute, attribute: safeName,
                          "unknown element field; customer attributes go inside \"attributes\"")
        }
        let customerID: CustomerID
        switch fields["customer_id"] {
        case .string(let raw):
            customerID = try CustomerID(validating: raw, allowIdentifying: allowIdentifyingCustomerIDs)
        case nil, .null?:
            throw Failure(.missingAttribute, attribute: "customer_id", "customer_id is required")
        default:
            throw Failure(.attribute, attribute: "customer_id", "customer_id must be a string")
        }
        var updateExistingOnly = false
        switch fields["update_existing_only"] {
        case nil, .null?: break
        case .bool(let flag)?: updateExistingOnly = flag
        default: throw Failure(.attribute, attribute: "update_existing_only", "update_existing_only must be true or false")
        }
        var set: [AttributeName: AttributeValue] = [:]
        var envelopes: [AttributeName: ClientEnvelope] = [:]
        var remove: Set<AttributeName> = []
        var newAttributes: [AttributeDefinition] = []
        var pii = 0
        /// Reads the attributes in the given order; throws at the first one refused.
        func read(_ attributes: some Sequence<(key: String, value: JSONValue)>) throws(Failure) {
            for (rawName, json) in attributes {
                let name = try AttributeName(validating: rawName)
                let value: AttributeValue
                if case .null = json {
                    remove.insert(name)
                    continue
                }
                if protection == .client {
                    if case .object = json {
                        let envelope = try ClientEnvelope.parse(json, attribute: name.rawValue)
                        let definition = schema[name] ?? AttributeDefinition(name: name, type: .text, pii: true, indexed: false)
                        if schema[name] == nil { newAttributes.append(definition) }
                        if definition.indexed && envelope.index == nil {
                            throw Failure(.attribute, attribute: name.rawValue,
                                          "\(name.rawValue) is indexed: its envelope needs the index digest the brand computed, or lookups would miss this customer")
                        }
                        envelopes[name] = envelope
                        if definition.pii { pii += 1 }
                        continue
                    }
                    guard schema[name]?.pii == false else {
                        throw Failure(.attribute, attribute: name.rawValue,
                                      "this workspace holds client-encrypted data: a PII attribute must arrive as an envelope sealed with the brand's key (domicile client encrypt), never in clear")
                    }
                } else if ClientEnvelope.looksLikeEnvelope(json) {
                    throw Failure(.attribute, attribute: name.rawValue,
                                  "envelopes are accepted only by workspaces created with --protection client; this one encrypts values itself, send them in clear over TLS")
                }
                switch json {
                case .null:
                    continue
                case .string(let text): value = .string(text)
                case .integer(let number): value = .integer(number)
                case .double(let number): value = .double(number)
                case .bool(let flag): value = .bool(flag)
                case .array, .object:
                    throw Failure(.attribute, attribute: name.rawValue,
                                  "attribute values must be a string, a number, a boolean or null, not \(json.typeName == "array" ? "an array" : "an object")")
                }
                let definition: AttributeDefinition
                if let known = schema[name] {
                    definition = known
                } else {
                    definition = AttributeDefinition(name: name, type: value.inferredType, pii: true, indexed: false)
                    newAttributes.append(definition)
                }
                set[name] = try definition.normalize(value)
                if definition.pii { pii += 1 }
            }
        }
        switch fields["attributes"] {
        case nil, .null?:
            break
        case .object(let attributes)?:
            set.reserveCapacity(attributes.count)
            do {
                try read(attributes)
            } catch {
                // Again in name order, so that the failure reported is the same every time.
                set.removeAll(keepingCapacity: true)
                envelopes.removeAll()
                remove.removeAll()
                newAttributes.removeAll()
                pii = 0
                try read(attributes.sorted(by: { $0.key < $1.key }))
                throw error
            }
            if newAttributes.count > 1 { newAttributes.sort { $0.name.rawValue < $1.name.rawValue } }
        default:
            throw Failure(.attribute, attribute: "attributes", "attributes must be a JSON object")
        }
        let upsert = CustomerUpsert(customerID: customerID, updateExistingOnly: updateExistingOnly, set: set, envelopes: envelopes,
                                    remove: remove)
        // New attributes are PII, as `checkPIILimit` assumes of names the schema lacks.
        try Self.checkPII(count: pii)
        return (upsert, newAttributes)
    }

    /// Refuses the upsert if the customer would hold more than the allowed number of PII attributes.
    /// - Parameter existing: the attribute names the customer already has.
    public func checkPIILimit(keeping existing: some Sequence<String>, schema: PIISchema) throws(Failure) {
        // (existing − remove) ∪ set, counted without building the set: `set`'s names, then the
        // existing ones this upsert neither sets nor removes. An attribute the schema does not
        // know yet counts as PII, as a new attribute is.
        var pii = set.keys.count { schema[$0]?.pii ?? true } + envelopes.keys.count { schema[$0]?.pii ?? true }
        for raw in existing {
            let name = AttributeName(trusted: raw)
            if set[name] == nil && envelopes[name] == nil && (remove.isEmpty || !remove.contains(name)) && schema[name]?.pii ?? true { pii += 1 }
        }
        try Self.checkPII(count: pii)
    }

    static func checkPII(count pii: Int) throws(Failure) {
        if pii > PIISchema.maximumPIIAttributes {
            throw Failure(.tooManyAttributes, attribute: "attributes",
                          "a customer can hold at most \(PIISchema.maximumPIIAttributes) PII attributes; this update would leave \(pii)")
        }
    }
}
