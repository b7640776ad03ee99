import DomicileCore

/// A workspace schema with an attribute of every type, so that every normaliser is reached.
let schema = PIISchema([
    AttributeDefinition(name: AttributeName(trusted: "birthday"), type: .date),
    AttributeDefinition(name: AttributeName(trusted: "address"), type: .address),
    AttributeDefinition(name: AttributeName(trusted: "notes"), type: .text),
    AttributeDefinition(name: AttributeName(trusted: "score"), type: .number, pii: false),
    AttributeDefinition(name: AttributeName(trusted: "vip"), type: .boolean, pii: false),
    AttributeDefinition(name: AttributeName(trusted: "work_email"), type: .email, pii: true, indexed: true),
])

/// The ingest path from the request body's bytes: `JSONParser`, then `CustomerUpsert.parse` as a
/// bulk element (identifying customer ids refused) and as a single-customer body (allowed).
///
/// Beyond never trapping: the same element with its objects stored in another order gives the
/// same upsert or the same failure (the failure reported must not depend on a dictionary's
/// order); an accepted element's values are already normalised (normalising again changes
/// nothing), no name is both set and removed, and the PII limit holds.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIngestElement(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    guard let element = try? JSONParser.parse(UnsafeRawBufferPointer(start: start, count: count)) else { return 0 }
    for (allowIdentifying, requireType) in [(false, true), (true, false)] {
        let result = Result { () throws(Failure) in
            try CustomerUpsert.parse(element, schema: schema, allowIdentifyingCustomerIDs: allowIdentifying, requireType: requireType)
        }
        let reordered = Result { () throws(Failure) in
            try CustomerUpsert.parse(reorderingObjects(element), schema: schema, allowIdentifyingCustomerIDs: allowIdentifying,
                                     requireType: requireType)
        }
        switch (result, reordered) {
        case (.failure(let first), .failure(let second)):
            precondition(first == second, "the failure depends on the order of the element's keys")
        case (.success(let first), .success(let second)):
            precondition(first.upsert == second.upsert && first.newAttributes == second.newAttributes,
                         "the upsert depends on the order of the element's keys")
            check(first.upsert, newAttributes: first.newAttributes, allowIdentifying: allowIdentifying)
        default:
            preconditionFailure("accepted in one key order and refused in another")
        }
    }
    return 0
}

func check(_ upsert: CustomerUpsert, newAttributes: [AttributeDefinition], allowIdentifying: Bool) {
    precondition((try? CustomerID(validating: upsert.customerID.rawValue, allowIdentifying: allowIdentifying)) == upsert.customerID,
                 "the customer id does not re-validate")
    precondition(upsert.remove.isDisjoint(with: upsert.set.keys), "an attribute both set and removed")
    precondition(newAttributes.map(\.name) == newAttributes.map(\.name).sorted(), "new attributes not in name order")
    let new = Dictionary(newAttributes.map { ($0.name, $0) }, uniquingKeysWith: { _, _ in preconditionFailure("a new attribute twice") })
    var pii = 0
    for (name, value) in upsert.set {
        guard let definition = schema[name] ?? new[name] else { preconditionFailure("a set attribute with no definition") }
        precondition(schema[name] == nil || new[name] == nil, "a schema attribute reported as new")
        precondition((try? definition.normalize(value)) == value, "normalising a stored value again changed it")
        if definition.pii { pii += 1 }
    }
    precondition(pii <= PIISchema.maximumPIIAttributes, "more PII attributes than the limit")
}

/// The same value with every object rebuilt at another capacity, so its keys iterate in another order.
func reorderingObjects(_ value: JSONValue) -> JSONValue {
    switch value {
    case .object(let members):
        var rebuilt = [String: JSONValue](minimumCapacity: members.count * 4 + 13)
        for (key, member) in members { rebuilt[key] = reorderingObjects(member) }
        return .object(rebuilt)
    case .array(let elements):
        return .array(elements.map(reorderingObjects))
    default:
        return value
    }
}
