/// The type of a customer attribute: it decides validation, normalisation and masking.
public enum AttributeType: String, Sendable, Hashable, Codable, CaseIterable {
    case email, phone, name, address, date, text, number, boolean
}

/// One attribute of a workspace's PII schema.
public struct AttributeDefinition: Sendable, Hashable, Codable {
    public var name: AttributeName
    public var type: AttributeType
    /// Shown masked to anyone without `view_pii`, and counted against the PII attribute limit.
    public var pii: Bool
    /// Looked up through the blind index.
    public var indexed: Bool

    public init(name: AttributeName, type: AttributeType, pii: Bool = true, indexed: Bool = false) {
        self.name = name
        self.type = type
        self.pii = pii
        self.indexed = indexed
    }
}

/// A workspace's attributes. The standard ones always exist; brand-defined ones are added by
/// an administrator or, the first time an unknown attribute arrives, inferred from its JSON type
/// and marked PII (anything sent to the vault is treated as PII until someone unmarks it).
public struct PIISchema: Sendable, Hashable {
    /// At most this many PII attributes per customer (the PII data center contract).
    public static let maximumPIIAttributes = 20

    public static let standard: [AttributeDefinition] = [
        AttributeDefinition(name: AttributeName(trusted: "email"), type: .email, pii: true, indexed: true),
        AttributeDefinition(name: AttributeName(trusted: "mobile"), type: .phone, pii: true, indexed: true),
        AttributeDefinition(name: AttributeName(trusted: "first_name"), type: .name, pii: true, indexed: false),
        AttributeDefinition(name: AttributeName(trusted: "last_name"), type: .name, pii: true, indexed: false),
        AttributeDefinition(name: AttributeName(trusted: "name"), type: .name, pii: true, indexed: false),
    ]

    public private(set) var attributes: [AttributeName: AttributeDefinition]

    public init(_ definitions: some Sequence<AttributeDefinition> = []) {
        attributes = [:]
        for definition in Self.standard { attributes[definition.name] = definition }
        for definition in definitions { attributes[definition.name] = definition }
    }

    public subscript(name: AttributeName) -> AttributeDefinition? { attributes[name] }

    public mutating func set(_ definition: AttributeDefinition) {
        attributes[definition.name] = definition
    }

    public var sorted: [AttributeDefinition] { attributes.values.sorted { $0.name < $1.name } }
}
