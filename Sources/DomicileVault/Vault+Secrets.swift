import DomicileCore
import Foundation
import Metrics

/// The workspace's own secrets under its secrets key, so that a rotation can retire every older
/// key version, the first one included (see `WorkspaceSecretsRecord`).
extension Vault {
    /// Gives the workspace a secrets record if it has none (a workspace created by an earlier
    /// version of Domicile): a new secrets key wrapped with the current version, and the derived
    /// keys computed from the first version as they always were.
    func ensureWorkspaceSecrets(_ id: WorkspaceID) async throws {
        guard try await store.workspaceSecrets(id) == nil else { return }
        let keys = try await keyring.keys(for: id, reload: true)
        let record = try WorkspaceSecrets.create(workspace: id, firstKey: keys.firstKey, wrappingKey: keys.currentKey, version: keys.current)
        if try await store.createWorkspaceSecrets(record) {
            _ = try await keyring.keys(for: id, reload: true)
            logger.info("workspace secrets key created", metadata: ["workspace": "\(id)"])
        }
    }

    /// Moves every secret of the workspace off older key versions: the secrets key is wrapped
    /// again with the current version, and each secret still sealed directly with a version (by
    /// an earlier version of Domicile, or by a node that had not yet seen the secrets key) is
    /// sealed again with the secrets key. Each change applies only if the stored value has not
    /// changed meanwhile. An audit reason keeps its chained original; its copy is what is read.
    /// - Returns: how many values changed (0: nothing of the workspace needs an older version).
    @discardableResult
    public func resealWorkspaceSecrets(_ id: WorkspaceID) async throws -> Int {
        try await ensureWorkspaceSecrets(id)
        let keys = try await keyring.keys(for: id, reload: true)
        guard let secrets = keys.secrets, let record = try await store.workspaceSecrets(id) else { return 0 }
        var changes: [SecretReseal] = []
        if try Envelope.workspaceKeyVersion(ofWrappedDataKey: record.wrappedKey) != keys.current {
            changes.append(.secretsKey(workspace: id, old: record.wrappedKey,
                                       new: try Envelope.wrapSecretsKey(secrets.key, with: keys.currentKey, version: keys.current, workspace: id)))
        }
        func resealed(_ sealed: [UInt8], context: String, _ attribute: AttributeName) throws -> [UInt8]? {
            guard WorkspaceKeys.isSealedWithVersion(sealed) else { return nil }
            return try keys.sealSecret(keys.openSecret(sealed, context: context, attribute: attribute), context: context, attribute: attribute)
        }
        if let old = try await store.workspace(id)?.sealedEventsSecret,
           let new = try resealed(old, context: "workspace", Self.eventsSecretAttribute) {
            changes.append(.eventsSecret(workspace: id, old: old, new: new))
        }
        for key in try await store.sendKeys(workspace: id) {
            if let new = try resealed(key.sealedSecret, context: "send-key:\(key.keyID)", Self.sendKeyAttribute) {
                changes.append(.sendKey(workspace: id, keyID: key.keyID, old: key.sealedSecret, new: new))
            }
        }
        for channel in Channel.allCases {
            guard let provider = try await store.provider(workspace: id, channel: channel) else { continue }
            if let new = try resealed(provider.sealedSettings, context: "provider:\(channel.rawValue)", Self.providerAttribute) {
                changes.append(.provider(workspace: id, channel: channel, old: provider.sealedSettings, new: new))
            }
        }
        for person in try await store.operators(workspace: id) {
            if let new = try resealed(person.sealedEmail, context: "operator:\(person.id)", Self.operatorEmailAttribute) {
                changes.append(.operatorEmail(operatorID: person.id, old: person.sealedEmail, new: new))
            }
        }
        var changed = try await store.reseal(changes)
        while true {
            let reasons = try await store.auditReasonsToReseal(workspace: id, limit: 500)
            guard !reasons.isEmpty else { break }
            let copies = try reasons.map { seq, sealed in
                SecretReseal.auditReason(workspace: id, seq: seq, copy: try keys.sealSecret(
                    keys.openSecret(sealed, context: "audit", attribute: Self.reasonAttribute),
                    context: Self.reasonCopyContext(seq), attribute: Self.reasonAttribute))
            }
            let applied = try await store.reseal(copies)
            changed += applied
            guard applied > 0 else { break }
        }
        if changed > 0 {
            Counter(label: "domicile_secrets_resealed_total").increment(by: Int64(changed))
            logger.notice("workspace secrets sealed again", metadata: ["workspace": "\(id)", "values": "\(changed)"])
        }
        return changed
    }
}
