import DomicileCore
import Foundation
import Metrics

/// Rotation that finishes: after `rotateWorkspaceKey`, every customer's data key is rewrapped
/// with the new version, in pages, by whichever node holds the rotation job; then each version
/// nothing uses any more is retired: deleted from the store, and with it the only copy of that
/// key. Version 1 goes too: the keys derived from it (tombstones, the audit chain, checkpoints)
/// are kept in the workspace's secrets record, and the workspace's own secrets are sealed with the
/// secrets key, which a rotation wraps again (Vault+Secrets). A version that keys the blind index
/// stays while it does: the index moves to a new version through its own rebuild (Vault+BlindIndex).
extension Vault {
    /// One workspace's rotation state.
    public struct KeyStatus: Sendable, Hashable {
        public var workspace: WorkspaceID
        /// Versions in the store, oldest first; the last one wraps new data keys.
        public var versions: [UInt32]
        /// Customers per version their data key is wrapped with.
        public var customersByVersion: [UInt32: Int]

        public var current: UInt32 { versions.last ?? 0 }
        public var total: Int { customersByVersion.values.reduce(0, +) }
        /// Customers whose data key is wrapped with the current version.
        public var done: Int { customersByVersion[current] ?? 0 }
        /// Versions keying the blind index: they stay while they do.
        public var indexing: Set<UInt32> = []
        /// Versions that can be retired once no customer uses them.
        public var retirable: [UInt32] { versions.filter { $0 != current && !indexing.contains($0) } }
    }

    public func keyStatus(_ id: WorkspaceID) async throws -> KeyStatus {
        let records = try await store.workspaceKeys(id)
        let versions = records.map(\.version).sorted()
        guard !versions.isEmpty else { throw StoreError.notFound("workspace \(id)") }
        return KeyStatus(workspace: id, versions: versions, customersByVersion: try await store.dataKeyVersions(workspace: id),
                         indexing: BlindIndexVersions.keying(records))
    }

    /// Rewraps up to `limit` data keys not on the current version, after `cursor`.
    /// - Returns: how many were rewrapped, and the cursor to continue from (nil: nothing left).
    public func rewrapDataKeys(_ id: WorkspaceID, after cursor: CustomerID?, limit: Int) async throws
        -> (rewrapped: Int, next: CustomerID?)
    {
        let keys = try await keyring.keys(for: id, reload: cursor == nil)
        let page = try await store.dataKeysNotWrapped(with: keys.current, workspace: id, after: cursor, limit: limit)
        guard let last = page.last else { return (0, nil) }
        var changes: [(customerID: CustomerID, old: [UInt8], new: [UInt8])] = []
        changes.reserveCapacity(page.count)
        for (customer, wrapped) in page {
            let dataKey = try await keyring.dataKey(wrapped: wrapped, customer: customer, workspace: id)
            changes.append((customer, wrapped, try Envelope.wrapDataKey(dataKey, with: keys.currentKey, version: keys.current,
                                                                         workspace: id, customer: customer)))
        }
        let rewrapped = try await store.rewrapDataKeys(changes, workspace: id)
        Counter(label: "domicile_key_rewraps_total").increment(by: Int64(rewrapped))
        return (rewrapped, last.customerID)
    }

    /// Retires every version but the current one and those keying the blind index that nothing
    /// names any more (no customer's data key, not the secrets key), once the current version is
    /// older than `grace` (longer than any node's cache of the version list, so that no node still
    /// wraps new data keys with an old one).
    /// - Returns: the versions retired.
    public func retireUnusedKeyVersions(_ id: WorkspaceID, grace: Duration, now: Date = Date()) async throws -> [UInt32] {
        let records = try await store.workspaceKeys(id).sorted { $0.version < $1.version }
        guard let current = records.last, records.count > 1 else { return [] }
        guard now.timeIntervalSince(current.createdAt) >= Double(grace.components.seconds) else { return [] }
        let keeping = BlindIndexVersions.keying(records).union([current.version])
        let candidates = records.filter { !keeping.contains($0.version) }
        guard !candidates.isEmpty else { return [] }
        // Secrets go to the secrets key first. A pass that moved anything leaves the retirement to
        // the next run, which finds whatever a node sealed with an old version in the meantime.
        guard try await resealWorkspaceSecrets(id) == 0 else { return [] }
        var retired: [UInt32] = []
        for record in candidates {
            if try await store.retireWorkspaceKey(record.version, workspace: id) { retired.append(record.version) }
        }
        guard !retired.isEmpty else { return [] }
        try await store.purgeDeleted()
        _ = try await keyring.keys(for: id, reload: true)
        try await audit([AuditDraft(actor: .system(job: "key-rotation"), action: .keyChange,
                                    attributes: retired.map { "workspace_key:v\($0):retired" })], workspace: id)
        logger.notice("workspace key versions retired", metadata: ["workspace": "\(id)", "versions": "\(retired)"])
        return retired
    }
}

extension Vault {
    /// A new root key version (a new transit key version, or a new local key file), then every
    /// workspace key of the store wrapped again with it in one transaction, then the service told
    /// it may let the old version go. Run again after an interruption, it finishes the same rotation.
    /// - Returns: how many workspace key versions were rewrapped.
    public func rotateRoot() async throws -> Int {
        try await keyring.root.beginRotation()
        var records: [WorkspaceKeyRecord] = []
        for workspace in try await store.workspaces() {
            for var record in try await store.workspaceKeys(workspace.id) {
                let context = Keyring.wrapContext(workspace.id, version: record.version)
                let key = try await keyring.root.unwrap(record.wrappedKey, context: context)
                record.wrappedKey = try await keyring.root.wrap(key, context: context)
                records.append(record)
            }
        }
        try await store.replaceWrappedWorkspaceKeys(records)
        try await keyring.root.finishRotation()
        for workspace in Set(records.map(\.workspaceID)) {
            try await audit([AuditDraft(actor: .commandLine, action: .keyChange, attributes: ["root_key:rotated"])], workspace: workspace)
        }
        logger.notice("root key rotated", metadata: ["service": "\(keyring.root.name)", "workspace_keys": "\(records.count)"])
        return records.count
    }
}
