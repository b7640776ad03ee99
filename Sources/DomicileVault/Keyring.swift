import Crypto
import DomicileCore
import Foundation
import Synchronization

/// A workspace's unwrapped keys, held in memory only.
public struct WorkspaceKeys: Sendable {
    public let workspace: WorkspaceID
    public let versions: [UInt32: SymmetricKey]
    /// The version new data keys are wrapped with.
    public let current: UInt32
    /// The customers' blind index: the version lookups use, and the one a rotation is building.
    public let index: BlindIndexVersions
    /// Keyed digests that never move to another key: erased customer ids (tombstones, which
    /// cannot be recomputed: the ids are gone) and operators' e-mail addresses. Derived from the
    /// first version, and kept in the workspace's secrets record.
    public let firstVersionIndex: BlindIndex
    /// Seals the workspace's own secrets, and keeps the derived keys; nil for a workspace created
    /// by an earlier version until its first rotation gives it one.
    public let secrets: WorkspaceSecrets?
    /// Links the audit chain (derived from the first version, kept like the tombstone key).
    public let auditChain: AuditChainKey
    /// Signs checkpoints of the audit chain's head.
    public let auditCheckpoints: AuditCheckpointSigner

    public var currentKey: SymmetricKey { versions[current]! }
    /// The first version: what the derived keys came from, and what sealed a workspace's secrets before it had a secrets key.
    public var firstKey: SymmetricKey { versions[versions.keys.min()!]! }

    public func key(version: UInt32) throws -> SymmetricKey {
        guard let key = versions[version] else { throw KeyError.unknownKeyVersion(version) }
        return key
    }

    /// Opens a customer's wrapped data key.
    public func dataKey(of customer: StoredCustomer) throws -> SymmetricKey {
        try dataKey(wrapped: customer.dataKey, customer: customer.customerID)
    }

    /// Opens a wrapped data key of one of this workspace's customers.
    public func dataKey(wrapped: [UInt8], customer: CustomerID) throws -> SymmetricKey {
        let version = try Envelope.workspaceKeyVersion(ofWrappedDataKey: wrapped)
        return try Envelope.unwrapDataKey(wrapped, with: key(version: version), workspace: workspace, customer: customer)
    }
}

/// Unwraps workspace keys through the root key service and keeps them in memory.
///
/// Two clocks. Key versions are immutable, so only "which versions exist" can go stale: the
/// list is read again from the store once `lifetime` has passed (a version added by the CLI or
/// another node is used for new writes within that time), and only versions not seen before are
/// unwrapped; a version the cache does not know also makes it reload at once. Unwrapped keys
/// themselves are kept for `keyLifetime` (30 minutes by default) and then dropped and unwrapped
/// again, all versions in one call: a key revoked in the KMS stops working within that time, and
/// a KMS that is away is only needed by workspaces whose keys are not in memory. After a failed
/// unwrap the keyring waits `retryInterval` before asking the KMS again for that workspace, so
/// an outage answers at once instead of holding every request for the KMS's timeout.
public final class Keyring: Sendable {
    private let store: any VaultStore
    public let root: any RootKeyService
    let lifetime: Duration
    public let keyLifetime: Duration
    let retryInterval: Duration
    private struct Entry {
        var keys: WorkspaceKeys
        /// The versions and blind-index roles `keys` were made from.
        var records: [UInt32: BlindIndexState.Role?]
        var checked: ContinuousClock.Instant
        var unwrapped: ContinuousClock.Instant
    }
    private let cache = Mutex<[WorkspaceID: Entry]>([:])
    private let failures = Mutex<[WorkspaceID: (instant: ContinuousClock.Instant, error: KeyError)]>([:])

    public init(store: any VaultStore, root: any RootKeyService, lifetime: Duration = .seconds(5), keyLifetime: Duration = .seconds(1800),
                retryInterval: Duration = .seconds(1)) {
        self.store = store
        self.root = MeteredRootKey(base: root)
        self.lifetime = lifetime
        self.keyLifetime = keyLifetime
        self.retryInterval = retryInterval
    }

    static func wrapContext(_ workspace: WorkspaceID, version: UInt32) -> String {
        "workspace/\(workspace.rawValue)/v\(version)"
    }

    /// The workspace's keys; `reload` forces a fresh read (after a rotation, or an unknown version).
    public func keys(for workspace: WorkspaceID, reload: Bool = false) async throws -> WorkspaceKeys {
        let now = ContinuousClock.now
        let cached = cache.withLock { $0[workspace] }.flatMap { now - $0.unwrapped < keyLifetime ? $0 : nil }
        if !reload, let cached, now - cached.checked < lifetime { return cached.keys }
        let records = try await store.workspaceKeys(workspace)
        guard let first = records.min(by: { $0.version < $1.version }),
              let latest = records.max(by: { $0.version < $1.version })
        else { throw KeyError.noWorkspaceKey }
        let described = Dictionary(uniqueKeysWithValues: records.map { ($0.version, $0.blindIndex?.role) })
        if let cached, cached.records == described {
            // A workspace without a secrets record gets one at its first rotation, or from a node
            // that created the workspace a moment ago: look for it at each check until it is there.
            var secretsAppeared = false
            if cached.keys.secrets == nil { secretsAppeared = try await store.workspaceSecrets(workspace) != nil }
            if !secretsAppeared {
                cache.withLock { $0[workspace]?.checked = now }
                return cached.keys
            }
        }
        // Versions that went away are dropped; only those not seen before are unwrapped.
        var versions = (cached?.keys.versions ?? [:]).filter { described[$0.key] != nil }
        let missing = records.filter { versions[$0.version] == nil }
        if !missing.isEmpty {
            if let failure = failures.withLock({ $0[workspace] }), now - failure.instant < retryInterval { throw failure.error }
            let opened: [SymmetricKey]
            do {
                opened = try await root.unwrap(missing.map { ($0.wrappedKey, Self.wrapContext(workspace, version: $0.version)) })
            } catch let error as KeyError {
                failures.withLock { $0[workspace] = (now, error) }
                // Keys past their lifetime go even when the KMS cannot give them back.
                cache.withLock { cache in cache = cache.filter { now - $0.value.unwrapped < keyLifetime } }
                throw error
            }
            failures.withLock { $0[workspace] = nil }
            for (record, key) in zip(missing, opened) { versions[record.version] = key }
        }
        let firstKey = versions[first.version]!
        let secrets = try await store.workspaceSecrets(workspace).map { try WorkspaceSecrets($0, versions: versions) }
        let roles = BlindIndexVersions.roles(of: records)
        func indexVersion(_ number: UInt32) throws -> BlindIndexVersions.Version {
            guard let key = versions[number] else { throw KeyError.unknownKeyVersion(number) }
            return .init(number: number, index: BlindIndex(workspaceKey: key, workspace: workspace))
        }
        let keys = WorkspaceKeys(workspace: workspace, versions: versions, current: latest.version,
                                 index: BlindIndexVersions(active: try indexVersion(roles.active),
                                                           building: try roles.building.map(indexVersion)),
                                 firstVersionIndex: secrets.map { BlindIndex(key: $0.tombstones) }
                                     ?? BlindIndex(workspaceKey: firstKey, workspace: workspace),
                                 secrets: secrets,
                                 auditChain: secrets.map { AuditChainKey(key: $0.auditChain) }
                                     ?? AuditChainKey(workspaceKey: firstKey, workspace: workspace),
                                 auditCheckpoints: secrets.map { AuditCheckpointSigner(seed: $0.checkpointSeed, workspace: workspace) }
                                     ?? AuditCheckpointSigner(workspaceKey: firstKey, workspace: workspace))
        cache.withLock { cache in
            cache = cache.filter { now - $0.value.unwrapped < keyLifetime }
            cache[workspace] = Entry(keys: keys, records: described, checked: now, unwrapped: cached?.unwrapped ?? now)
        }
        return keys
    }

    /// Opens a customer's data key, reloading once if it was wrapped by a version this node has not seen.
    public func dataKey(of customer: StoredCustomer) async throws -> SymmetricKey {
        try await dataKey(wrapped: customer.dataKey, customer: customer.customerID, workspace: customer.workspaceID)
    }

    /// Opens a customer's wrapped data key, reloading once if it was wrapped by a version this node has not seen.
    public func dataKey(wrapped: [UInt8], customer: CustomerID, workspace: WorkspaceID) async throws -> SymmetricKey {
        let keys = try await keys(for: workspace)
        do {
            return try keys.dataKey(wrapped: wrapped, customer: customer)
        } catch KeyError.unknownKeyVersion {
            return try await self.keys(for: workspace, reload: true).dataKey(wrapped: wrapped, customer: customer)
        }
    }

    /// A new workspace key, wrapped by the root key, ready to store.
    public func newWorkspaceKey(for workspace: WorkspaceID, version: UInt32) async throws -> WorkspaceKeyRecord {
        let key = SymmetricKey(size: .bits256)
        let wrapped = try await root.wrap(key, context: Self.wrapContext(workspace, version: version))
        return WorkspaceKeyRecord(workspaceID: workspace, version: version, wrappedKey: wrapped)
    }

    /// Readiness: the root key service can wrap and unwrap.
    public func selfTest() async throws {
        let probe = SymmetricKey(size: .bits256)
        let unwrapped = try await root.unwrap(try await root.wrap(probe, context: "readiness"), context: "readiness")
        guard unwrapped == probe else { throw KeyError.unwrapFailed }
    }
}

/// A small time-bounded cache, for data that other processes (the CLI, other nodes) may change.
final class ExpiringCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let entries = Mutex<[Key: (value: Value, expires: ContinuousClock.Instant)]>([:])
    let lifetime: Duration

    init(lifetime: Duration) { self.lifetime = lifetime }

    func value(for key: Key) -> Value? {
        let now = ContinuousClock.now
        return entries.withLock { entries in
            guard let entry = entries[key], entry.expires > now else { return nil }
            return entry.value
        }
    }

    /// Caches `value` for the lifetime, or only until `notAfter` when that comes sooner.
    func set(_ value: Value, for key: Key, notAfter: Date? = nil) {
        var expires = ContinuousClock.now + lifetime
        if let notAfter {
            let left = notAfter.timeIntervalSinceNow
            guard left > 0 else { return }
            expires = min(expires, ContinuousClock.now + .milliseconds(Int64(left * 1000)))
        }
        entries.withLock { $0[key] = (value, expires) }
    }

    func removeAll() {
        entries.withLock { $0.removeAll() }
    }

    func remove(_ key: Key) {
        _ = entries.withLock { $0.removeValue(forKey: key) }
    }
}
