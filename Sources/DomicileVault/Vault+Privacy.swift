import Crypto
import DomicileCore
import Foundation
import Logging
import Synchronization

/// The data-subject request types: OpenGDPR's three and Domicile's two extensions.
public enum SubjectRequestType: String, Sendable, CaseIterable {
    case access, portability, erasure, restriction, unrestriction

    var permission: Permission {
        switch self {
        case .access, .portability: .export
        case .erasure: .erase
        case .restriction, .unrestriction: .restrict
        }
    }
}

/// An identity a data-subject request names.
public struct SubjectIdentity: Sendable, Hashable {
    /// The digest kinds are a client-mode workspace's: the brand's digest of the e-mail or mobile, base64.
    public enum Kind: String, Sendable, CaseIterable {
        case email, mobile, id
        case emailDigest = "email_digest"
        case mobileDigest = "mobile_digest"
    }
    public var kind: Kind
    public var value: String

    public init(kind: Kind, value: String) {
        self.kind = kind
        self.value = value
    }
}

extension Vault {
    // MARK: Reveal

    /// Returns named attributes in clear, for an operator with `view_pii` who states a reason.
    public func reveal(_ id: CustomerID, attributes names: [String], reason: String, workspace: WorkspaceID,
                       actor: Actor, requestID: String?) async throws -> [String: JSONValue] {
        try actor.require(.reveal)
        let reason = reason.trimmingWhitespace()
        guard (3...500).contains(reason.count) else {
            throw Failure(.attribute, attribute: "reason", "a reason of 3 to 500 characters is required to reveal PII")
        }
        guard !names.isEmpty, names.count <= PIISchema.maximumPIIAttributes + 10 else {
            throw Failure(.attribute, attribute: "attributes", "name the attributes to reveal")
        }
        guard revealLimiter.admit(actor.id, limit: operatorPolicy.revealsPerHour).allowed else {
            throw Failure(.rateLimited, "at most \(operatorPolicy.revealsPerHour) reveals an hour per operator")
        }
        guard let view = try await customerView(id, workspace: workspace, reveal: true) else {
            throw Failure(.notFound, attribute: "customer_id", "no customer with this id in this workspace")
        }
        let revealed = view.attributes.filter { names.contains($0.key) }
        try await audit([AuditDraft(actor: actor, action: .reveal, customerID: id.rawValue, attributes: revealed.keys.sorted(),
                                    sealedReason: try await sealReason(reason, workspace: workspace), requestID: requestID)],
                        workspace: workspace)
        return revealed
    }

    // MARK: Schema

    /// Changes one attribute's definition (administrators). Turning `indexed` on indexes the
    /// values already stored; turning it off drops their digests.
    public func changeAttribute(_ definition: AttributeDefinition, workspace: WorkspaceID, actor: Actor, requestID: String?) async throws {
        try actor.require(.changeSchema)
        let before = try await schema(workspace)[definition.name]
        if before?.pii ?? false, !definition.pii, !actor.may(.reveal) {
            // Unmarking shows the values in clear to everyone: only someone who may see them may
            // do it. An attribute the schema does not have yet holds no value: declaring it
            // non-PII shows nothing (a client-mode workspace declares its attributes in clear so).
            throw Failure(.forbidden, attribute: definition.name.rawValue, "unmarking an attribute as PII needs view_pii")
        }
        try await defineAttribute(definition, workspace: workspace)
        try await audit([AuditDraft(actor: actor, action: .schemaChange, attributes: [definition.name.rawValue], requestID: requestID)],
                        workspace: workspace)
        if (before?.indexed ?? false) != definition.indexed {
            try await reindex(definition.name, workspace: workspace)
        }
    }

    /// Recomputes one attribute's blind-index digests for every customer of the workspace.
    func reindex(_ name: AttributeName, workspace: WorkspaceID) async throws {
        let schema = try await schema(workspace)
        let indexed = schema[name]?.indexed ?? false
        let keys = try await keyring.keys(for: workspace)
        var after: CustomerID?
        while true {
            let ids = try await store.customerIDs(workspace: workspace, after: after, limit: 500)
            guard let last = ids.last else { break }
            after = last
            let mutations = ids.map { id in
                CustomerMutation(customerID: id) { current in
                    guard var row = current else { return .skip }
                    var entries = row.blindIndex
                    BlindIndexVersions.remove(name, from: &entries)
                    if indexed, let sealed = row.attributes[name.rawValue], try Envelope.kind(of: sealed) == .vault {
                        let value = try Envelope.open(sealed, with: keys.dataKey(of: row), workspace: workspace,
                                                      customer: id, attribute: name)
                        keys.index.set(value, attribute: name, in: &entries)
                    }
                    guard row.blindIndex != entries else { return .skip }
                    row.blindIndex = entries
                    row.revision += 1
                    return .write(row)
                }
            }
            _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: mutations))
        }
    }

    // MARK: Customers by identity

    /// The customers an identity names: by id, or through the blind index by e-mail or mobile.
    func customerIDs(for identity: SubjectIdentity, workspace: WorkspaceID) async throws -> [CustomerID] {
        switch identity.kind {
        case .id:
            guard let id = try? CustomerID(validating: identity.value, allowIdentifying: true),
                  try await store.customer(id, workspace: workspace) != nil
            else { return [] }
            return [id]
        case .emailDigest, .mobileDigest:
            guard let digest = Data(base64Encoded: identity.value) else {
                throw Failure(.attribute, attribute: "identity_value", "a digest identity's value is the brand's digest in base64")
            }
            let name = AttributeName(trusted: identity.kind == .emailDigest ? "email" : "mobile")
            return try await find(.digest(name, [UInt8](digest)), workspace: workspace).map(\.customerID)
        case .email, .mobile:
            if try await self.workspace(workspace)?.protection == .client {
                throw Failure(.attribute, attribute: "identity_type",
                              "this workspace holds client-encrypted data: name the customer by id, email_digest or mobile_digest (the brand's digests)")
            }
            let name = AttributeName(trusted: identity.kind == .email ? "email" : "mobile")
            let definition = try await schema(workspace)[name] ?? AttributeDefinition(name: name, type: identity.kind == .email ? .email : .phone)
            let normalized = try definition.normalize(.string(identity.value))
            let keys = try await keyring.keys(for: workspace)
            let lookup = keys.index.lookup(normalized, attribute: name)
            return try await store.customerIDs(attribute: lookup.entry, digest: lookup.digest, workspace: workspace)
        }
    }

    // MARK: Erasure and restriction

    static let customerIDAttribute = AttributeName(trusted: "_customer_id")

    func tombstone(_ id: CustomerID, keys: WorkspaceKeys) -> [UInt8] {
        keys.firstVersionIndex.digest(.string(id.rawValue), attribute: Self.customerIDAttribute)
    }

    /// Crypto-shreds customers: their data keys, rows and blind-index entries are deleted, and
    /// their queued messages cancelled, in one transaction with the audit entries and an `erased`
    /// event per customer for the main data center; then the store purges what it freed.
    /// - Returns: the customers that were erased (those that existed).
    @discardableResult
    public func erase(_ ids: [CustomerID], workspace: WorkspaceID, actor: Actor, requestID: String?) async throws -> [CustomerID] {
        try actor.require(.erase)
        guard !ids.isEmpty else { return [] }
        let keys = try await keyring.keys(for: workspace)
        let existing = try await store.customers(ids, workspace: workspace)
        let targets = ids.filter { existing[$0] != nil }
        guard !targets.isEmpty else { return [] }
        let now = Date()
        // Recorded first, outside the database, so that restoring an older backup erases them again.
        try erasureJournal?.append(targets.map {
            ErasureJournal.Entry(workspaceID: workspace.rawValue, tombstone: tombstone($0, keys: keys).hexEncoded, erasedAt: now)
        })
        let outcomes = try await store.commit(CommitBatch(
            workspaceID: workspace,
            mutations: targets.map { id in
                let tombstone = tombstone(id, keys: keys)
                return CustomerMutation(customerID: id) { current in current == nil ? .skip : .erase(tombstone: tombstone) }
            },
            audit: AuditAppend(targets.map { AuditDraft(at: now, actor: actor, action: .erase, customerID: $0.rawValue, requestID: requestID) },
                               key: keys.auditChain),
            events: targets.map { OutboundEvent(workspaceID: workspace, type: "erased", customerID: $0.rawValue, at: now) },
            cancelMessages: targets.map { MessageCancellation(customerID: $0, reason: .erased) }))
        try await store.purgeDeleted()
        return zip(targets, outcomes).compactMap { id, outcome in
            if case .erased = outcome { return id }
            return nil
        }
    }

    /// Restricts processing (sends refused, new PII refused, data kept) or lifts the restriction.
    @discardableResult
    public func setRestricted(_ restricted: Bool, _ ids: [CustomerID], workspace: WorkspaceID, actor: Actor,
                              requestID: String?) async throws -> [CustomerID] {
        try actor.require(.restrict)
        guard !ids.isEmpty else { return [] }
        let chainKey = try await keyring.keys(for: workspace).auditChain
        let outcomes = try await store.commit(CommitBatch(
            workspaceID: workspace,
            mutations: ids.map { id in
                CustomerMutation(customerID: id) { current in
                    guard var row = current else { return .skip }
                    row.restricted = restricted
                    row.revision += 1
                    row.updatedAt = Date()
                    return .write(row)
                }
            },
            audit: AuditAppend(ids.map { AuditDraft(actor: actor, action: restricted ? .restrict : .unrestrict, customerID: $0.rawValue,
                                                    requestID: requestID) }, key: chainKey),
            // Processing stops: what was queued for these customers is not sent either.
            cancelMessages: restricted ? ids.map { MessageCancellation(customerID: $0, reason: .restricted) } : []))
        return zip(ids, outcomes).compactMap { id, outcome in
            if case .updated = outcome { return id }
            return nil
        }
    }

    // MARK: Data-subject requests

    /// Carries out a data-subject request at once and records it. Access and portability exports
    /// are built when the request is fetched, so no export is ever kept at rest.
    public func submitSubjectRequest(_ type: SubjectRequestType, identities: [SubjectIdentity], submittedAt: Date?,
                                     workspace: WorkspaceID, actor: Actor, requestID: String?) async throws -> SubjectRequestRecord {
        try actor.require(type.permission)
        guard !identities.isEmpty else {
            throw Failure(.missingAttribute, attribute: "identities", "identities cannot be empty")
        }
        var ids: [CustomerID] = []
        for identity in identities {
            do {
                ids += try await customerIDs(for: identity, workspace: workspace)
            } catch let failure as Failure {
                throw Failure(.attribute, attribute: "identity_value", "\(identity.kind.rawValue) identity: \(failure.message)")
            }
        }
        ids = Array(Set(ids)).sorted()
        let received = Date()
        var covered = ids
        switch type {
        case .access, .portability:
            break
        case .erasure:
            covered = try await erase(ids, workspace: workspace, actor: actor, requestID: requestID)
        case .restriction, .unrestriction:
            covered = try await setRestricted(type == .restriction, ids, workspace: workspace, actor: actor, requestID: requestID)
        }
        let record = SubjectRequestRecord(
            id: RandomIdentifier.uuid(), workspaceID: workspace, type: type.rawValue, status: "completed",
            submittedAt: submittedAt, receivedAt: received, completedAt: Date(), identityTypes: identities.map(\.kind.rawValue),
            customerIDs: covered.map(\.rawValue), actorType: actor.type, actorID: actor.id)
        try await store.saveSubjectRequest(record)
        try await audit([AuditDraft(actor: actor, action: .subjectRequest, attributes: [type.rawValue], requestID: requestID)],
                        workspace: workspace)
        return record
    }

    /// A recorded request, and for access and portability the export, in clear or masked by the caller's permissions.
    public func subjectRequest(_ id: String, workspace: WorkspaceID, actor: Actor, requestID: String?) async throws
        -> (SubjectRequestRecord, export: [CustomerView]?)
    {
        guard let record = try await store.subjectRequest(id: id, workspace: workspace) else {
            throw Failure(.notFound, attribute: "request_id", "no data-subject request with this id in this workspace")
        }
        guard let type = SubjectRequestType(rawValue: record.type) else { throw StoreError.corrupt("subject request type") }
        try actor.require(type.permission)
        guard type == .access || type == .portability else { return (record, nil) }
        let clear = actor.seesClearExports
        let schema = try await schema(workspace)
        let rows = try await store.customers(record.customerIDs.map(CustomerID.init(trusted:)), workspace: workspace)
        var views: [CustomerView] = []
        for id in record.customerIDs.map(CustomerID.init(trusted:)) {
            if let row = rows[id] { views.append(try await view(of: row, schema: schema, reveal: clear)) }
        }
        try await audit(views.map { AuditDraft(actor: actor, action: .export, customerID: $0.customerID.rawValue,
                                               attributes: $0.attributes.keys.sorted() + [clear ? "clear" : "masked"],
                                               requestID: requestID) }, workspace: workspace)
        return (record, views)
    }

    // MARK: Retention

    /// Erases, in every workspace with a retention period, the customers not updated within it.
    /// - Returns: how many customers were erased.
    @discardableResult
    public func runRetention(now: Date = Date()) async throws -> Int {
        var erased = 0
        for workspace in try await store.workspaces() {
            guard let days = workspace.retentionDays, days > 0 else { continue }
            let cutoff = now.addingTimeInterval(-Double(days) * 86_400)
            while true {
                let stale = try await store.customerIDs(workspace: workspace.id, updatedBefore: cutoff, limit: 500)
                guard !stale.isEmpty else { break }
                let done = try await erase(stale, workspace: workspace.id, actor: .system(job: "retention"), requestID: nil)
                erased += done.count
                if done.isEmpty { break }
            }
        }
        return erased
    }
}
