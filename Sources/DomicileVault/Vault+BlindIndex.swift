import DomicileCore
import Foundation
import Metrics

/// Rotation of the blind-index key: lookups keep answering from the old index until the new one
/// is complete.
///
/// `rotateWorkspaceKey(_:rebuildingBlindIndex: true)` adds a workspace key version whose index is
/// `building`; from then on every node's writes keep digests under both the active version and
/// the new one (within the keyring's refresh time). The key-rotation job then calls
/// `stepBlindIndexRotation` page after page:
/// 1. once every node has had time to learn of the new version (`grace`), it adds the new
///    digests to each customer, in id order, saving its place after each page;
/// 2. after the last page the new version becomes `active` and the old one `draining`, in one
///    transaction: lookups move to the new index, on every node within the same refresh time;
/// 3. after `grace` again, the old digests are removed from every customer, page by page, and
///    the old version's index role ends: that version is then retired like any other once no
///    data key names it (version 1 stays, for what is derived from it; see docs/security.md).
///
/// Each page is one commit whose mutations read the customer as it is at commit time, so a
/// concurrent upsert is never undone; a crash or SIGKILL resumes from the saved place.
extension Vault {
    /// What one step of a blind-index rotation did.
    public enum BlindIndexStep: Sendable, Hashable {
        /// No rotation is under way.
        case idle
        /// The next step waits until every node has seen the last change (the grace period).
        case waiting
        /// One page of customers gained digests of the new version (`building`) or lost those of
        /// the old one (`draining`).
        case page(BlindIndexState.Role, customers: Int)
        /// The new version answers lookups from now on.
        case switched(to: UInt32)
        /// The old version's digests are gone.
        case finished(drained: UInt32)
    }

    /// Does the next step of the workspace's blind-index rotation, if any.
    public func stepBlindIndexRotation(_ id: WorkspaceID, grace: Duration, limit: Int, now: Date = Date()) async throws
        -> BlindIndexStep
    {
        let records = try await store.workspaceKeys(id)
        let graceSeconds = Double(grace.components.seconds) + Double(grace.components.attoseconds) / 1e18
        if let building = records.first(where: { $0.blindIndex?.role == .building }), let state = building.blindIndex {
            guard now.timeIntervalSince(state.since) >= graceSeconds else { return .waiting }
            let keys = try await keyring.keys(for: id, reload: state.cursor == nil)
            guard let target = keys.index.building, target.number == building.version else { return .waiting }
            let indexed = try await schema(id).attributes.values.filter(\.indexed).map(\.name)
            let ids = try await store.customerIDs(workspace: id, after: state.cursor, limit: limit)
            guard !ids.isEmpty else {
                // Every customer has digests of the new version: it answers lookups from now on.
                let previous = BlindIndexVersions.roles(of: records).active
                try await store.setBlindIndexStates([building.version: BlindIndexState(role: .active, since: now),
                                                     previous: BlindIndexState(role: .draining, since: now)], workspace: id)
                _ = try await keyring.keys(for: id, reload: true)
                try await audit([AuditDraft(actor: .system(job: "key-rotation"), action: .keyChange,
                                            attributes: ["blind_index:v\(building.version):active"])], workspace: id)
                logger.notice("blind index: lookups use the new version", metadata: [
                    "workspace": "\(id)", "version": "\(building.version)", "previous": "\(previous)"])
                return .switched(to: building.version)
            }
            Counter(label: "domicile_blind_index_rebuilt_total").increment(by: Int64(ids.count))
            return try await rewriteIndexPage(ids, workspace: id, version: building.version, state: state) { row in
                var entries = row.blindIndex
                for name in indexed {
                    guard let sealed = row.attributes[name.rawValue], try Envelope.kind(of: sealed) == .vault else { continue }
                    let value = try Envelope.open(sealed, with: keys.dataKey(of: row), workspace: id, customer: row.customerID, attribute: name)
                    let (entry, digest) = target.entry(value, attribute: name)
                    entries[entry] = digest
                }
                return entries
            }
        }
        if let draining = records.first(where: { $0.blindIndex?.role == .draining }), let state = draining.blindIndex {
            guard now.timeIntervalSince(state.since) >= graceSeconds else { return .waiting }
            let ids = try await store.customerIDs(workspace: id, after: state.cursor, limit: limit)
            guard !ids.isEmpty else {
                try await store.setBlindIndexStates([draining.version: nil], workspace: id)
                try await store.purgeDeleted()
                _ = try await keyring.keys(for: id, reload: true)
                try await audit([AuditDraft(actor: .system(job: "key-rotation"), action: .keyChange,
                                            attributes: ["blind_index:v\(draining.version):drained"])], workspace: id)
                logger.notice("blind index: the old version's digests are gone", metadata: [
                    "workspace": "\(id)", "version": "\(draining.version)"])
                return .finished(drained: draining.version)
            }
            let version = draining.version
            return try await rewriteIndexPage(ids, workspace: id, version: version, state: state) { row in
                row.blindIndex.filter { BlindIndexVersions.parse(entryName: $0.key).version != version }
            }
        }
        return .idle
    }

    /// Gives one page of customers the blind-index entries `entries` makes of each (computed from
    /// the row as it is at commit), then saves the page's last customer as the pass's place.
    private func rewriteIndexPage(_ ids: [CustomerID], workspace: WorkspaceID, version: UInt32, state: BlindIndexState,
                                  entries: @escaping @Sendable (StoredCustomer) throws -> [String: [UInt8]]) async throws -> BlindIndexStep {
        let mutations = ids.map { customer in
            CustomerMutation(customerID: customer) { current in
                guard var row = current else { return .skip }
                let updated = try entries(row)
                guard updated != row.blindIndex else { return .skip }
                row.blindIndex = updated
                row.revision += 1
                return .write(row)
            }
        }
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: mutations))
        try await store.setBlindIndexStates([version: BlindIndexState(role: state.role, since: state.since, cursor: ids.last)],
                                            workspace: workspace)
        return .page(state.role, customers: ids.count)
    }

    /// The blind index's versions, for `domicile keys status`: each version with a role.
    public func blindIndexStatus(_ id: WorkspaceID) async throws -> [(version: UInt32, state: BlindIndexState)] {
        let records = try await store.workspaceKeys(id)
        var marked = records.compactMap { record in record.blindIndex.map { (version: record.version, state: $0) } }
        if !marked.contains(where: { $0.state.role == .active }), let first = records.first {
            // None marked: the first version, as before the index had versions.
            marked.insert((first.version, BlindIndexState(role: .active, since: first.createdAt)), at: 0)
        }
        return marked
    }
}
