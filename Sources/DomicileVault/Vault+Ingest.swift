import Crypto
import DomicileCore
import Foundation
import Metrics

/// What became of an ingest request's elements.
public struct IngestReport: Sendable, Hashable {
    public var created = 0
    public var updated = 0
    /// `update_existing_only` elements for customers that do not exist.
    public var skipped = 0
    /// Refused elements, each naming its index; nothing of them was written.
    public var refused: [Failure] = []

    public var accepted: Int { created + updated + skipped }
}

extension Vault {
    /// How many customers (or messages) are sealed between two yields of the event loop.
    static let customersBetweenYields = 8

    /// Validates, seals, indexes and durably stores customer elements.
    ///
    /// Valid elements are stored even when others are refused; a refused element writes nothing.
    /// Returns only after the commit is on disk.
    /// - Parameter requireType: elements must carry `"type":"customer"` (the bulk shape).
    public func ingest(_ elements: [JSONValue], workspace: WorkspaceRecord, actor: Actor, requireType: Bool = true) async throws
        -> IngestReport
    {
        try actor.require(.ingest)
        var report = IngestReport()
        var schema = try await schema(workspace.id)
        var upserts: [(index: Int, upsert: CustomerUpsert)] = []
        var additions: [AttributeDefinition] = []
        for (index, element) in elements.enumerated() {
            do {
                let (upsert, newAttributes) = try CustomerUpsert.parse(
                    element, schema: schema, allowIdentifyingCustomerIDs: workspace.allowIdentifyingCustomerIDs,
                    requireType: requireType, protection: workspace.protection)
                for definition in newAttributes where schema[definition.name] == nil {
                    schema.set(definition)
                    additions.append(definition)
                }
                upserts.append((index, upsert))
            } catch {
                report.refused.append(error.at(element: index))
            }
        }
        guard !upserts.isEmpty else { return report }

        let keys = try await keyring.keys(for: workspace.id)
        let existing = try await store.customers(Array(Set(upserts.map(\.upsert.customerID))), workspace: workspace.id)
        if workspace.refuseErasedCustomerIDs {
            var kept: [(index: Int, upsert: CustomerUpsert)] = []
            for entry in upserts {
                if existing[entry.upsert.customerID] == nil,
                   try await store.isTombstoned(tombstone(entry.upsert.customerID, keys: keys), workspace: workspace.id) {
                    report.refused.append(Failure(.invalidCustomerID, attribute: "customer_id",
                                                  "this customer id was erased, and the workspace refuses data for erased customers",
                                                  element: entry.index))
                } else {
                    kept.append(entry)
                }
            }
            upserts = kept
            guard !upserts.isEmpty else { return report }
        }
        let now = Date()
        let sealer = CustomerSealer(keys: keys, schema: schema, now: now)
        var mutations: [CustomerMutation] = []
        mutations.reserveCapacity(upserts.count)
        for (position, entry) in upserts.enumerated() {
            // Sealing a bulk request takes milliseconds of CPU: let the event loop serve other
            // connections every few customers instead of holding it for the whole request.
            if position > 0 && position % Self.customersBetweenYields == 0 { await Task.yield() }
            let assumed = existing[entry.upsert.customerID]
            // Sealed now, outside the store's transaction; redone inside it only if the row changed meanwhile.
            let prepared = Result { try sealer.decide(entry.upsert, current: assumed) }
            var conditional: CustomerMutation.Prepared?
            if case .success(.write(let row)) = prepared { conditional = .init(assumed: assumed, row: row) }
            mutations.append(CustomerMutation(customerID: entry.upsert.customerID, prepared: conditional) { current in
                if current?.revision == assumed?.revision { return try prepared.get() }
                return try sealer.decide(entry.upsert, current: current)
            })
        }
        let outcomes = try await store.commit(CommitBatch(workspaceID: workspace.id, mutations: mutations,
                                                          schemaAdditions: additions))
        if !additions.isEmpty { schemas.remove(workspace.id) }
        for (entry, outcome) in zip(upserts, outcomes) {
            switch outcome {
            case .created: report.created += 1
            case .updated: report.updated += 1
            case .skipped, .erased: report.skipped += 1
            case .refused(let failure): report.refused.append(failure.at(element: entry.index))
            }
        }
        report.refused.sort { ($0.element ?? 0) < ($1.element ?? 0) }
        Self.count(report)
        return report
    }

    /// Customers stored, and refused by the kind of refusal (never the attribute or the value).
    static func count(_ report: IngestReport) {
        let stored = report.created + report.updated
        if stored > 0 { Counter(label: "domicile_customers_ingested_total").increment(by: Int64(stored)) }
        var refused: [Failure.Kind: Int64] = [:]
        for failure in report.refused { refused[failure.kind, default: 0] += 1 }
        for (kind, count) in refused {
            Counter(label: "domicile_customers_refused_total", dimensions: [("reason", kind.rawValue)]).increment(by: count)
        }
    }
}

/// Turns a validated upsert and the customer's current row into the row to write.
struct CustomerSealer: Sendable {
    let keys: WorkspaceKeys
    let schema: PIISchema
    let now: Date

    func decide(_ upsert: CustomerUpsert, current: StoredCustomer?) throws -> MutationDecision {
        if current == nil && upsert.updateExistingOnly { return .skip }
        if let current, current.restricted {
            return .refuse(Failure(.forbidden, attribute: "customer_id",
                                   "processing of this customer is restricted; new data is refused until the restriction is lifted"))
        }
        // A new customer's count was checked when the element was parsed, against the same
        // definitions; only existing attributes can change it here.
        if let current {
            do {
                try upsert.checkPIILimit(keeping: current.attributes.keys, schema: schema)
            } catch {
                return .refuse(error)
            }
        }
        let workspace = keys.workspace
        let customer = upsert.customerID
        let dataKey: SymmetricKey
        let wrappedDataKey: [UInt8]
        if let current {
            dataKey = try keys.dataKey(of: current)
            wrappedDataKey = current.dataKey
        } else {
            dataKey = SymmetricKey(size: .bits256)
            wrappedDataKey = try Envelope.wrapDataKey(dataKey, with: keys.currentKey, version: keys.current,
                                                      workspace: workspace, customer: customer)
        }
        var attributes = current?.attributes ?? [:]
        attributes.reserveCapacity(attributes.count + upsert.set.count)
        var index = current?.blindIndex ?? [:]
        for name in upsert.remove.union(upsert.envelopes.keys) {
            attributes[name.rawValue] = nil
            BlindIndexVersions.remove(name, from: &index)
        }
        let cipher = try Envelope.CustomerCipher(dataKey: dataKey, workspace: workspace, customer: customer)
        for (name, value) in upsert.set {
            attributes[name.rawValue] = try cipher.seal(value, attribute: name)
            if schema[name]?.indexed == true {
                keys.index.set(value, attribute: name, in: &index)
            } else if current != nil && !index.isEmpty {
                // An attribute whose definition is no longer indexed loses its digests. (A new
                // customer's index holds only this upsert's other attributes: nothing to remove.)
                BlindIndexVersions.remove(name, from: &index)
            }
        }
        for (name, envelope) in upsert.envelopes {
            attributes[name.rawValue] = try cipher.seal(envelope, attribute: name)
            // The brand's own digest, under the first version's entry name: a client-mode
            // workspace's index is the brand's, never rotated by Domicile.
            if schema[name]?.indexed == true, let digest = envelope.index { index[name.rawValue] = digest }
        }
        return .write(StoredCustomer(
            workspaceID: workspace, customerID: customer, dataKey: wrappedDataKey,
            attributes: attributes, blindIndex: index, restricted: false,
            createdAt: current?.createdAt ?? now, updatedAt: now, revision: (current?.revision ?? 0) + 1))
    }
}
