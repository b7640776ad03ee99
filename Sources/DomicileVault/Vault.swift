import Crypto
import DomicileCore
import Foundation
import Logging

/// The vault's application services: what the HTTP API and the CLI both call.
public final class Vault: Sendable {
    public let store: any VaultStore
    public let keyring: Keyring
    /// The region this node serves.
    public let region: String
    /// Where the other regions are, and which workspaces they home.
    public let directory: RegionDirectory
    let workspaces: ExpiringCache<WorkspaceID, WorkspaceRecord>
    let schemas: ExpiringCache<WorkspaceID, PIISchema>
    let apiKeys: ExpiringCache<String, APIKeyRecord>
    /// SHA-256 of an accepted `Authorization` header → whose it is. A request with the same header
    /// skips decoding and hashing it again; an entry lives no longer than the cache lifetime or the
    /// key's expiry, and revoking through this node clears it at once.
    let acceptedCredentials: ExpiringCache<SHA256Digest, (workspace: WorkspaceID, keyID: String)>
    public let operatorPolicy: OperatorPolicy
    /// Where erasures are recorded for replay after a restore; nil records none (tests).
    public let erasureJournal: ErasureJournal?
    /// For what the vault does in the background (writing read audits), outside any request.
    let logger: Logger
    /// Reveals per operator per hour, and login attempts per client address: counted across nodes.
    public let revealLimiter = SharedWindowCounter(scope: "reveals", window: .seconds(3600))
    public let loginLimiter: SharedWindowCounter
    let readAudit: AuditBuffer

    /// - Parameters:
    ///   - cacheLifetime: how long workspace settings, schemas, API keys and the list of workspace
    ///     key versions are trusted before being read again; a change made through another process
    ///     (the CLI, another node) takes effect within this time.
    ///   - readAuditWindow: how long the audit entries of reads gather before one commit writes them.
    public init(store: any VaultStore, root: any RootKeyService, region: String, cacheLifetime: Duration = .seconds(5),
                operatorPolicy: OperatorPolicy = OperatorPolicy(), readAuditWindow: Duration = .milliseconds(20),
                directory: RegionDirectory = RegionDirectory(), keyLifetime: Duration = .seconds(1800),
                erasureJournal: ErasureJournal? = nil, logger: Logger = Logger(label: "domicile.vault")) {
        self.directory = directory
        self.erasureJournal = erasureJournal
        self.logger = logger
        self.loginLimiter = SharedWindowCounter(scope: "logins", window: operatorPolicy.lockout)
        self.readAudit = AuditBuffer(window: readAuditWindow)
        self.operatorPolicy = operatorPolicy
        self.store = store
        self.keyring = Keyring(store: store, root: root, lifetime: cacheLifetime, keyLifetime: keyLifetime)
        self.region = region
        workspaces = ExpiringCache(lifetime: cacheLifetime)
        schemas = ExpiringCache(lifetime: cacheLifetime)
        apiKeys = ExpiringCache(lifetime: cacheLifetime)
        acceptedCredentials = ExpiringCache(lifetime: cacheLifetime)
    }

    // MARK: Workspaces

    public func workspace(_ id: WorkspaceID) async throws -> WorkspaceRecord? {
        if let cached = workspaces.value(for: id) { return cached }
        guard let record = try await store.workspace(id) else { return nil }
        workspaces.set(record, for: id)
        return record
    }

    /// The workspace's schema, for a caller allowed to read its customers.
    public func schema(_ id: WorkspaceID, actor: Actor) async throws -> PIISchema {
        try actor.require(.readMasked)
        return try await schema(id)
    }

    package func schema(_ id: WorkspaceID) async throws -> PIISchema {
        if let cached = schemas.value(for: id) { return cached }
        let schema = PIISchema(try await store.schema(id))
        schemas.set(schema, for: id)
        return schema
    }

    /// Checks an `Authorization: Basic …` header (workspace id : data API key).
    /// - Returns: the workspace and the key id, or nil for a malformed header, an unknown workspace
    ///   or a wrong, expired or revoked key alike.
    public func authenticate(basicAuthorization header: String) async throws -> (WorkspaceRecord, keyID: String)? {
        let digest = SHA256.hash(data: Array(header.utf8))
        if let known = acceptedCredentials.value(for: digest), let workspace = try await workspace(known.workspace) {
            return (workspace, known.keyID)
        }
        guard let (user, password) = Self.basicCredentials(header), let keyID = DataAPIKey.keyID(in: password),
              let workspace = try await authenticate(workspace: user, key: password)
        else { return nil }
        let expiry = apiKeys.value(for: workspace.id.rawValue + "/" + keyID)?.expiresAt
        acceptedCredentials.set((workspace.id, keyID), for: digest, notAfter: expiry)
        return (workspace, keyID)
    }

    /// The user and password of an `Authorization: Basic` header.
    public static func basicCredentials(_ header: String?) -> (String, String)? {
        guard let header, header.utf8.count > 6, header.prefix(6).lowercased() == "basic " else { return nil }
        guard let data = Data(base64Encoded: String(header.dropFirst(6)).trimmingCharacters(in: .whitespaces)),
              let decoded = String(data: data, encoding: .utf8),
              let colon = decoded.firstIndex(of: ":")
        else { return nil }
        return (String(decoded[..<colon]), String(decoded[decoded.index(after: colon)...]))
    }

    /// Checks HTTP Basic credentials (workspace id : data API key).
    /// - Returns: the workspace, or nil for an unknown workspace or a wrong, expired or revoked key alike.
    public func authenticate(workspace rawID: String, key presented: String) async throws -> WorkspaceRecord? {
        guard let id = try? WorkspaceID(validating: rawID), let keyID = DataAPIKey.keyID(in: presented) else { return nil }
        let cacheKey = id.rawValue + "/" + keyID
        var record = apiKeys.value(for: cacheKey)
        if record == nil {
            record = try await store.apiKey(workspace: id, keyID: keyID)
            if let record { apiKeys.set(record, for: cacheKey) }
        }
        guard let record, record.isActive(at: Date()), DataAPIKey.matches(presented, hash: record.secretHash) else {
            return nil
        }
        return try await workspace(id)
    }

    /// Creates a workspace homed in this node's region, with its first workspace key and data API key.
    /// - Returns: the data API key, the only time it is ever shown.
    public func createWorkspace(_ id: WorkspaceID, rateLimitPerMinute: Int = WorkspaceRecord.defaultRateLimitPerMinute,
                                protection: ProtectionMode = .vault) async throws -> DataAPIKey
    {
        let key = DataAPIKey.generate()
        let record = WorkspaceRecord(id: id, region: region, rateLimitPerMinute: rateLimitPerMinute, protection: protection)
        let workspaceKey = try await keyring.newWorkspaceKey(for: id, version: 1)
        try await store.createWorkspace(record, key: workspaceKey,
                                        apiKey: APIKeyRecord(workspaceID: id, keyID: key.keyID, secretHash: DataAPIKey.hash(key.secret)))
        try await ensureWorkspaceSecrets(id)
        return key
    }

    /// Issues a new data API key; the keys active until now keep working for `grace`, then expire.
    public func rotateAPIKey(_ id: WorkspaceID, grace: Duration) async throws -> DataAPIKey {
        try await requireWorkspace(id)
        let now = Date()
        let expiry = now.addingTimeInterval(TimeInterval(grace.components.seconds))
        var changed = try await store.apiKeys(workspace: id).filter { $0.isActive(at: now) }.map { old in
            var old = old
            old.expiresAt = min(old.expiresAt ?? expiry, expiry)
            return old
        }
        let key = DataAPIKey.generate()
        changed.append(APIKeyRecord(workspaceID: id, keyID: key.keyID, secretHash: DataAPIKey.hash(key.secret)))
        try await store.saveAPIKeys(changed)
        try await audit([AuditDraft(actor: .commandLine, action: .keyChange, attributes: ["api_key:\(key.keyID)"])], workspace: id)
        return key
    }

    /// Revokes one key, or every key of the workspace when `keyID` is nil. Takes effect on every
    /// node within the cache lifetime.
    @discardableResult
    public func revokeAPIKeys(_ id: WorkspaceID, keyID: String? = nil) async throws -> [String] {
        try await requireWorkspace(id)
        let now = Date()
        let revoked = try await store.apiKeys(workspace: id)
            .filter { $0.revokedAt == nil && (keyID == nil || $0.keyID == keyID) }
            .map { key in
                var key = key
                key.revokedAt = now
                return key
            }
        if let keyID, revoked.isEmpty { throw StoreError.notFound("active key \(keyID)") }
        try await store.saveAPIKeys(revoked)
        try await audit([AuditDraft(actor: .commandLine, action: .keyChange, attributes: revoked.map { "api_key:\($0.keyID)" })],
                        workspace: id)
        revoked.forEach { apiKeys.remove(id.rawValue + "/" + $0.keyID) }
        acceptedCredentials.removeAll()
        return revoked.map(\.keyID)
    }

    public func updateWorkspace(_ id: WorkspaceID, _ change: (inout WorkspaceRecord) -> Void) async throws -> WorkspaceRecord {
        guard var record = try await store.workspace(id) else { throw StoreError.notFound("workspace \(id)") }
        change(&record)
        try await store.updateWorkspace(record)
        workspaces.set(record, for: id)
        return record
    }

    /// Adds a workspace key version; new customer data keys are wrapped with it, old ones keep opening.
    /// - Parameter rebuildingBlindIndex: the new version also keys a new blind index, which the
    ///   key-rotation job builds before lookups move to it (see `stepBlindIndexRotation`).
    public func rotateWorkspaceKey(_ id: WorkspaceID, rebuildingBlindIndex: Bool = false) async throws -> UInt32 {
        let records = try await store.workspaceKeys(id)
        guard let latest = records.map(\.version).max() else { throw StoreError.notFound("workspace \(id)") }
        if rebuildingBlindIndex, try await store.workspace(id)?.protection == .client {
            throw Failure(.conflict, "this workspace's blind index holds the brand's digests, made with the brand's index key: "
                + "Domicile cannot rebuild it. Rotate the brand's index key on the brand's side and send the customers again")
        }
        if rebuildingBlindIndex, let busy = records.first(where: { $0.blindIndex.map { $0.role != .active } ?? false }) {
            throw Failure(.conflict, "a rotation of the blind index is under way (v\(busy.version) \(busy.blindIndex!.role.rawValue)); "
                + "start another once `domicile keys status` no longer shows it")
        }
        // Before the new version exists, so that every node learns of the secrets key with it.
        try await ensureWorkspaceSecrets(id)
        var record = try await keyring.newWorkspaceKey(for: id, version: latest + 1)
        if rebuildingBlindIndex { record.blindIndex = BlindIndexState(role: .building, since: record.createdAt) }
        try await store.addWorkspaceKey(record)
        _ = try await keyring.keys(for: id, reload: true)
        try await audit([AuditDraft(actor: .commandLine, action: .keyChange,
                                    attributes: ["workspace_key:v\(latest + 1)"] + (rebuildingBlindIndex ? ["blind_index:v\(latest + 1):building"] : []))],
                        workspace: id)
        return latest + 1
    }

    /// Sets one attribute of the workspace's schema (type, PII flag, indexed flag), unchecked:
    /// `changeAttribute` is the service; this is its storage step, and tests' shortcut.
    package func defineAttribute(_ definition: AttributeDefinition, workspace id: WorkspaceID) async throws {
        try await requireWorkspace(id)
        try await store.saveSchemaAttribute(definition, workspace: id)
        schemas.remove(id)
    }

    private func requireWorkspace(_ id: WorkspaceID) async throws {
        guard try await store.workspace(id) != nil else { throw StoreError.notFound("workspace \(id)") }
    }

    /// Each dependency's state, for `/health/ready`: `storage` and `kms` are `ok`, `unavailable`
    /// or (the KMS) `refused`; `key_service` names the root key service.
    public func readiness() async -> (ready: Bool, checks: [String: String]) {
        var checks = ["key_service": keyring.root.name]
        checks["storage"] = (try? await store.ping()) != nil ? "ok" : "unavailable"
        do {
            try await keyring.selfTest()
            checks["kms"] = "ok"
        } catch KeyError.kmsRefused {
            checks["kms"] = "refused"
        } catch {
            checks["kms"] = "unavailable"
        }
        return (checks["storage"] == "ok" && checks["kms"] == "ok", checks)
    }
}

extension Vault {
    static let eventsSecretAttribute = AttributeName(trusted: "events_secret")

    /// Points the workspace's events for the main data center at `url` and issues a new signing
    /// secret. Only https (http to loopback) and a host on the workspace's egress allowlist; the
    /// host named here is the only one events are sent to.
    /// - Returns: the secret, shown once.
    public func configureEvents(_ id: WorkspaceID, url: String) async throws -> String {
        guard let workspace = try await workspace(id) else { throw StoreError.notFound("workspace \(id)") }
        try checkEgress(workspace, to: try EgressEndpoint(url: url, setting: "events_url"), when: .configuring)
        let secret = "whsec_" + Self.randomToken()
        let keys = try await keyring.keys(for: id)
        let sealed = try keys.sealSecret(secret, context: "workspace", attribute: Self.eventsSecretAttribute)
        _ = try await updateWorkspace(id) { record in
            record.eventsURL = url
            record.sealedEventsSecret = sealed
        }
        try await audit([AuditDraft(actor: .commandLine, action: .keyChange, attributes: ["events_secret"])], workspace: id)
        return secret
    }

    /// The workspace's events signing secret, opened.
    public func eventsSecret(of workspace: WorkspaceRecord) async throws -> [UInt8]? {
        guard let sealed = workspace.sealedEventsSecret else { return nil }
        let keys = try await keyring.keys(for: workspace.id)
        return Array(try keys.openSecret(sealed, context: "workspace", attribute: Self.eventsSecretAttribute).utf8)
    }
}
