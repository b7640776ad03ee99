import Crypto
import Foundation

/// The key that links a workspace's audit chain: derived from the workspace's first key version,
/// and kept (sealed) only in the workspace's secrets record, never in clear. Whoever can write the
/// database but not unwrap the workspace's keys cannot compute a link, so cannot alter, insert or
/// re-chain an entry.
public struct AuditChainKey: Sendable {
    package let key: SymmetricKey

    public init(workspaceKey: SymmetricKey, workspace: WorkspaceID) {
        key = HKDF<SHA256>.deriveKey(inputKeyMaterial: workspaceKey, salt: Array("domicile.audit-chain.v1".utf8),
                                     info: Array(workspace.rawValue.utf8), outputByteCount: 32)
    }

    /// The key as derived once and kept.
    package init(key: SymmetricKey) {
        self.key = key
    }
}

/// Signs checkpoints of a workspace's chain head with an Ed25519 key derived from the workspace
/// key. The public half is given to the main data center, which can check each checkpoint it
/// receives; the private half is never stored.
public struct AuditCheckpointSigner: Sendable {
    let privateKey: Curve25519.Signing.PrivateKey
    public let workspace: WorkspaceID

    public init(workspaceKey: SymmetricKey, workspace: WorkspaceID) {
        self.init(seed: Self.seed(workspaceKey: workspaceKey, workspace: workspace), workspace: workspace)
    }

    /// From the seed as derived once and kept.
    package init(seed: SymmetricKey, workspace: WorkspaceID) {
        // Any 32 bytes are a valid Ed25519 seed, so this cannot fail.
        privateKey = seed.withUnsafeBytes { try! Curve25519.Signing.PrivateKey(rawRepresentation: $0) }
        self.workspace = workspace
    }

    package static func seed(workspaceKey: SymmetricKey, workspace: WorkspaceID) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: workspaceKey, salt: Array("domicile.audit-checkpoint.v1".utf8),
                               info: Array(workspace.rawValue.utf8), outputByteCount: 32)
    }

    /// The public key, base64 (32 bytes raw): what `domicile audit public-key` prints.
    public var publicKey: String { Data(privateKey.publicKey.rawRepresentation).base64EncodedString() }

    /// A signed statement that the chain's entry `seq` has link `head`.
    public func checkpoint(seq: Int64, head: [UInt8], at: Date = Date()) throws -> AuditCheckpoint {
        var checkpoint = AuditCheckpoint(workspaceID: workspace.rawValue, seq: seq, head: head.hexEncoded,
                                         signedAt: Date(timeIntervalSince1970: at.timeIntervalSince1970.rounded(.down)), signature: "")
        checkpoint.signature = try privateKey.signature(for: checkpoint.signedMessage).base64EncodedString()
        return checkpoint
    }
}

/// A signed, PII-free statement of a workspace's audit chain head, sent to the main data center
/// with the events. Kept there, outside the vault's database, it lets `domicile audit verify`
/// detect a chain rolled back, truncated or rewritten since.
public struct AuditCheckpoint: Codable, Sendable, Hashable {
    public var workspaceID: String
    public var seq: Int64
    /// The entry's link, lower-case hexadecimal.
    public var head: String
    /// Whole seconds: the signature covers them and the events' ISO 8601 dates carry no fraction.
    public var signedAt: Date
    /// Ed25519 over `signedMessage`, base64.
    public var signature: String

    enum CodingKeys: String, CodingKey {
        case workspaceID = "workspace_id", seq, head, signedAt = "signed_at", signature
    }

    /// `domicile-audit-checkpoint/v1`, the workspace, the seq, the head and the unix seconds, one a line.
    public var signedMessage: Data {
        Data("domicile-audit-checkpoint/v1\n\(workspaceID)\n\(seq)\n\(head)\n\(Int64(signedAt.timeIntervalSince1970))".utf8)
    }

    /// Whether the signature is the given public key's (base64, as `AuditCheckpointSigner.publicKey`).
    public func verifies(publicKey: String) -> Bool {
        guard let raw = Data(base64Encoded: publicKey), let key = try? Curve25519.Signing.PublicKey(rawRepresentation: raw),
              let signature = Data(base64Encoded: signature)
        else { return false }
        return key.isValidSignature(signature, for: signedMessage)
    }

    /// The head as bytes, or nil when it is not 64 hexadecimal digits.
    public var headBytes: [UInt8]? {
        guard head.utf8.count == 64 else { return nil }
        return [UInt8](hexEncoded: head)
    }
}
