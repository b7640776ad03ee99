import Crypto
import DomicileCore

/// A workspace's secrets key and the keys derived once from its first key version, opened (see
/// `WorkspaceSecretsRecord`). With them, no key version is needed for anything but the data keys
/// and the secrets key it wraps, so every version, the first included, can be retired.
public struct WorkspaceSecrets: Sendable {
    /// Seals the workspace's own secrets.
    let key: SymmetricKey
    /// Tombstones (erased ids) and operator e-mail digests.
    let tombstones: SymmetricKey
    let auditChain: SymmetricKey
    let checkpointSeed: SymmetricKey

    /// A new record: a random secrets key wrapped with `version`, and the derived keys computed
    /// from the first version's key exactly as they were before they were kept, so that
    /// tombstones, audit links and the checkpoint public key stay what they were.
    static func create(workspace: WorkspaceID, firstKey: SymmetricKey, wrappingKey: SymmetricKey, version: UInt32) throws
        -> WorkspaceSecretsRecord
    {
        let secrets = WorkspaceSecrets(key: SymmetricKey(size: .bits256),
                                       tombstones: BlindIndex.derivedKey(workspaceKey: firstKey, workspace: workspace),
                                       auditChain: AuditChainKey(workspaceKey: firstKey, workspace: workspace).key,
                                       checkpointSeed: AuditCheckpointSigner.seed(workspaceKey: firstKey, workspace: workspace))
        var derived = [secrets.tombstones, secrets.auditChain, secrets.checkpointSeed].flatMap { $0.withUnsafeBytes { Array($0) } }
        defer { Envelope.wipe(&derived) }
        return WorkspaceSecretsRecord(
            workspaceID: workspace,
            wrappedKey: try Envelope.wrapSecretsKey(secrets.key, with: wrappingKey, version: version, workspace: workspace),
            sealedDerivedKeys: try AESGCM(key: secrets.key).seal(derived, authenticating: derivedKeysAAD(workspace),
                                                                 prefix: [Envelope.formatVersion]))
    }

    /// Opens a record with the workspace's unwrapped key versions.
    init(_ record: WorkspaceSecretsRecord, versions: [UInt32: SymmetricKey]) throws {
        let version = try Envelope.workspaceKeyVersion(ofWrappedDataKey: record.wrappedKey)
        guard let wrapping = versions[version] else { throw KeyError.unknownKeyVersion(version) }
        key = try Envelope.unwrapSecretsKey(record.wrappedKey, with: wrapping, workspace: record.workspaceID)
        guard record.sealedDerivedKeys.first == Envelope.formatVersion else { throw KeyError.malformedCiphertext }
        var derived = try AESGCM(key: key).open(record.sealedDerivedKeys.dropFirst(), authenticating: Self.derivedKeysAAD(record.workspaceID))
        defer { Envelope.wipe(&derived) }
        guard derived.count == 96 else { throw KeyError.malformedCiphertext }
        tombstones = SymmetricKey(data: derived[0..<32])
        auditChain = SymmetricKey(data: derived[32..<64])
        checkpointSeed = SymmetricKey(data: derived[64..<96])
    }

    private init(key: SymmetricKey, tombstones: SymmetricKey, auditChain: SymmetricKey, checkpointSeed: SymmetricKey) {
        self.key = key
        self.tombstones = tombstones
        self.auditChain = auditChain
        self.checkpointSeed = checkpointSeed
    }

    private static func derivedKeysAAD(_ workspace: WorkspaceID) -> [UInt8] {
        Envelope.associatedData("derivedkeys", [workspace.rawValue])
    }

    /// The first byte of a secret sealed with the secrets key; one sealed directly with a
    /// workspace key version (before secrets keys existed) starts with `Envelope.formatVersion`.
    static let sealedMarker: UInt8 = 2
}

extension WorkspaceKeys {
    /// Seals one of the workspace's own secrets: with the secrets key, or, for a workspace that
    /// has none yet (created by an earlier version), with the first key version as before.
    /// `context` and `attribute` are bound as associated data: a secret moved elsewhere does not open.
    public func sealSecret(_ value: String, context: String, attribute: AttributeName) throws -> [UInt8] {
        guard let secrets else {
            return try Envelope.seal(.string(value), with: firstKey, workspace: workspace, customer: CustomerID(trusted: context),
                                     attribute: attribute)
        }
        return [WorkspaceSecrets.sealedMarker]
            + (try Envelope.seal(.string(value), with: secrets.key, workspace: workspace, customer: CustomerID(trusted: context),
                                 attribute: attribute))
    }

    public func openSecret(_ sealed: [UInt8], context: String, attribute: AttributeName) throws -> String {
        let value: AttributeValue
        if sealed.first == WorkspaceSecrets.sealedMarker {
            guard let secrets else { throw KeyError.unwrapFailed }
            value = try Envelope.open(Array(sealed.dropFirst()), with: secrets.key, workspace: workspace,
                                      customer: CustomerID(trusted: context), attribute: attribute)
        } else {
            value = try Envelope.open(sealed, with: firstKey, workspace: workspace, customer: CustomerID(trusted: context), attribute: attribute)
        }
        guard case .string(let text) = value else { throw KeyError.malformedCiphertext }
        return text
    }

    /// Whether a secret was sealed with a workspace key version rather than the secrets key.
    static func isSealedWithVersion(_ sealed: [UInt8]) -> Bool {
        sealed.first != WorkspaceSecrets.sealedMarker
    }
}
