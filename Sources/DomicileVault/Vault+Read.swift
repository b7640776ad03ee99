import Crypto
import DomicileCore
import Foundation

/// A customer as a caller sees it: PII masked unless the caller may see it in clear.
public struct CustomerView: Sendable, Hashable {
    public var customerID: CustomerID
    /// Attribute name → the value shown (masked string, or the clear value for non-PII attributes).
    public var attributes: [String: JSONValue]
    public var restricted: Bool
    public var createdAt: Date
    public var updatedAt: Date
}

/// Which identifier a lookup goes through.
public enum LookupIdentity: Sendable, Hashable {
    case email(String)
    case mobile(String)
    case attribute(AttributeName, String)
    /// A digest the brand computed with its own index key (client mode).
    case digest(AttributeName, [UInt8])

    /// The indexed attribute it is looked up in.
    public var attribute: AttributeName {
        switch self {
        case .email: AttributeName(trusted: "email")
        case .mobile: AttributeName(trusted: "mobile")
        case .attribute(let name, _), .digest(let name, _): name
        }
    }
}

extension Vault {
    /// One customer, PII masked by type, for a caller allowed to read; the read is audited
    /// (written a few milliseconds later, so the read does not wait for the disk).
    public func read(_ id: CustomerID, workspace: WorkspaceID, actor: Actor, requestID: String?) async throws -> CustomerView? {
        try actor.require(.readMasked)
        guard let view = try await customerView(id, workspace: workspace) else { return nil }
        auditInBackground(AuditDraft(actor: actor, action: .readMasked, customerID: id.rawValue,
                                     attributes: view.attributes.keys.sorted(), requestID: requestID),
                          workspace: workspace)
        return view
    }

    /// The customers an identifier finds through the blind index, PII masked, for a caller
    /// allowed to read; each customer found is audited as a lookup of that attribute.
    public func lookup(_ identity: LookupIdentity, workspace: WorkspaceID, actor: Actor, requestID: String?) async throws
        -> [CustomerView]
    {
        try actor.require(.readMasked)
        let views = try await find(identity, workspace: workspace)
        for view in views {
            auditInBackground(AuditDraft(actor: actor, action: .lookup, customerID: view.customerID.rawValue,
                                         attributes: [identity.attribute.rawValue], requestID: requestID),
                              workspace: workspace)
        }
        return views
    }

    /// Reads one customer, unchecked and unaudited: for the vault's own services and tests.
    /// PII attributes are masked by type unless `reveal` is set.
    package func customerView(_ id: CustomerID, workspace: WorkspaceID, reveal: Bool = false) async throws -> CustomerView? {
        guard let stored = try await store.customer(id, workspace: workspace) else { return nil }
        return try await view(of: stored, schema: schema(workspace), reveal: reveal)
    }

    /// Finds customers through the blind index, unchecked and unaudited: for the vault's own
    /// services and tests. An e-mail shared by several customers finds all of them.
    /// - Throws: a `Failure` when the identifier is malformed or the attribute is not indexed.
    package func find(_ identity: LookupIdentity, workspace: WorkspaceID, reveal: Bool = false) async throws -> [CustomerView] {
        let schema = try await schema(workspace)
        let name = identity.attribute
        guard let definition = schema[name], definition.indexed else {
            throw Failure(.attribute, attribute: name.rawValue, "attribute is not indexed, so it cannot be looked up")
        }
        let client = try await self.workspace(workspace)?.protection == .client
        let raw: String
        switch identity {
        case .email(let value), .mobile(let value), .attribute(_, let value):
            if client && definition.pii {
                throw Failure(.attribute, attribute: name.rawValue,
                              "this workspace holds client-encrypted data: look customers up by the digest the brand computed with its index key (?attribute=NAME&digest=BASE64)")
            }
            raw = value
        case .digest(_, let digest):
            guard client else {
                throw Failure(.attribute, attribute: "digest", "digest lookups are for client-mode workspaces; look this workspace's customers up by value")
            }
            guard digest.count == ClientEnvelope.digestLength else {
                throw Failure(.attribute, attribute: "digest", "a digest is the \(ClientEnvelope.digestLength)-byte HMAC-SHA256 the brand computed, in base64")
            }
            return try await views(of: store.customerIDs(attribute: name, digest: digest, workspace: workspace), workspace: workspace,
                                   schema: schema, reveal: reveal)
        }
        let value: AttributeValue = switch definition.type {
        case .number: Int64(raw).map(AttributeValue.integer) ?? Double(raw).map(AttributeValue.double) ?? .string(raw)
        case .boolean: raw == "true" ? .bool(true) : raw == "false" ? .bool(false) : .string(raw)
        default: .string(raw)
        }
        let normalized = try definition.normalize(value)
        let keys = try await keyring.keys(for: workspace)
        let lookup = keys.index.lookup(normalized, attribute: name)
        let ids = try await store.customerIDs(attribute: lookup.entry, digest: lookup.digest, workspace: workspace)
        return try await views(of: ids, workspace: workspace, schema: schema, reveal: reveal)
    }

    private func views(of ids: [CustomerID], workspace: WorkspaceID, schema: PIISchema, reveal: Bool) async throws -> [CustomerView] {
        guard !ids.isEmpty else { return [] }
        let rows = try await store.customers(ids, workspace: workspace)
        var views: [CustomerView] = []
        for id in ids.sorted() {
            if let row = rows[id] { views.append(try await view(of: row, schema: schema, reveal: reveal)) }
        }
        return views
    }

    func view(of stored: StoredCustomer, schema: PIISchema, reveal: Bool) async throws -> CustomerView {
        var cipher: Envelope.CustomerCipher?
        var shown: [String: JSONValue] = [:]
        shown.reserveCapacity(stored.attributes.count)
        for (rawName, sealed) in stored.attributes {
            let name = AttributeName(trusted: rawName)
            let definition = schema[name] ?? AttributeDefinition(name: name, type: .text)
            let client = try Envelope.kind(of: sealed) == .client
            if !client && !reveal && definition.pii && !Masking.dependsOnValue(definition.type) {
                // Masked to the same stars whatever the value: nothing to decrypt.
                shown[rawName] = .string(Masking.fully)
                continue
            }
            if cipher == nil {
                cipher = try Envelope.CustomerCipher(dataKey: try await keyring.dataKey(of: stored),
                                                     workspace: stored.workspaceID, customer: stored.customerID)
            }
            if client {
                // The brand's key seals the value: Domicile shows the brand's masked form, and to
                // whoever may see values in clear, the envelope itself (only the brand opens it).
                let envelope = try cipher!.openEnvelope(sealed, attribute: name)
                shown[rawName] = reveal ? envelope.json : .string(envelope.masked ?? Masking.fully)
                continue
            }
            let value = try cipher!.open(sealed, attribute: name)
            shown[rawName] = reveal || !definition.pii ? value.json : .string(Masking.mask(value, as: definition.type))
        }
        return CustomerView(customerID: stored.customerID, attributes: shown, restricted: stored.restricted,
                            createdAt: stored.createdAt, updatedAt: stored.updatedAt)
    }
}
