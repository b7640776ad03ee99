import Crypto
import DomicileCore
import Foundation

/// The main data center's send keys and each channel's provider: the credentials of sending.
extension Vault {
    // MARK: Send keys

    static let sendKeyAttribute = AttributeName(trusted: "send_key")

    /// Issues a send key for the main data center, or with `relay` a relay key for the brand's
    /// relay (client mode only); with `grace`, the active keys of the same kind expire after it.
    /// The two kinds sign requests alike; the key id's prefix (`sk_`, `rk_`) says which routes
    /// each opens (see `SendKeyRecord.isRelayKey`).
    /// - Returns: the key id and the secret, shown once.
    public func issueSendKey(_ id: WorkspaceID, grace: Duration? = nil, relay: Bool = false) async throws -> (keyID: String, secret: String) {
        guard let workspace = try await store.workspace(id) else { throw StoreError.notFound("workspace \(id)") }
        if relay { try requireClientMode(workspace) }
        let keys = try await keyring.keys(for: id)
        let now = Date()
        if let grace {
            let expiry = now.addingTimeInterval(Double(grace.components.seconds))
            for var old in try await store.sendKeys(workspace: id) where old.isActive(at: now) && old.isRelayKey == relay {
                old.expiresAt = min(old.expiresAt ?? expiry, expiry)
                try await store.saveSendKey(old)
            }
        }
        let keyID = (relay ? SendKeyRecord.relayPrefix : "sk_") + String(Self.randomToken().prefix(12))
        let secret = Self.randomToken()
        let sealed = try keys.sealSecret(secret, context: "send-key:\(keyID)", attribute: Self.sendKeyAttribute)
        try await store.saveSendKey(SendKeyRecord(workspaceID: id, keyID: keyID, sealedSecret: sealed, createdAt: now))
        try await audit([AuditDraft(actor: .commandLine, action: .keyChange, attributes: ["send_key:\(keyID)"])], workspace: id)
        return (keyID, secret)
    }

    /// Checks a main data center request's signature:
    /// `hex(HMAC-SHA256(secret, timestamp + "\n" + METHOD + "\n" + path + "\n" + body))`, within 5 minutes.
    /// - Parameter relay: whether the route is the relay's (a relay key) or the main data center's (a send key).
    public func verifySendRequest(workspace: WorkspaceID, keyID: String, timestamp: String, signature: String,
                                  method: String, path: String, body: [UInt8], relay: Bool = false, now: Date = Date()) async throws -> Bool {
        guard keyID.hasPrefix(SendKeyRecord.relayPrefix) == relay, let seconds = Int(timestamp), abs(now.timeIntervalSince1970 - Double(seconds)) <= 300,
              let record = try await store.sendKey(workspace: workspace, keyID: keyID), record.isActive(at: now)
        else { return false }
        let keys = try await keyring.keys(for: workspace)
        let secret = try keys.openSecret(record.sealedSecret, context: "send-key:\(keyID)", attribute: Self.sendKeyAttribute)
        let expected = Self.sendSignature(secret: secret, timestamp: timestamp, method: method, path: path, body: body)
        let given = signature.hasPrefix("v1=") ? String(signature.dropFirst(3)) : signature
        return ConstantTime.equals(expected, given)
    }

    public static func sendSignature(secret: String, timestamp: String, method: String, path: String, body: [UInt8]) -> String {
        let message = Array("\(timestamp)\n\(method)\n\(path)\n".utf8) + body
        return HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: Array(secret.utf8)))
            .hexEncoded
    }

    // MARK: Providers

    static let providerAttribute = AttributeName(trusted: "provider")

    /// Sets the provider of a channel: its kind and settings (credentials among them), sealed.
    /// The host it connects to must be on the workspace's egress allowlist, over TLS.
    public func setProvider(_ id: WorkspaceID, channel: Channel, kind: String, settings: [String: String], actor: Actor,
                            requestID: String? = nil) async throws {
        try actor.require(.configure)
        guard let providerKind = ProviderKind(rawValue: kind) else {
            throw Failure(.attribute, attribute: "kind", "kind must be one of \(ProviderKind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let workspace = try await workspace(id) else { throw StoreError.notFound("workspace \(id)") }
        try checkEgress(workspace, to: try providerKind.endpoint(settings: settings), when: .configuring)
        let keys = try await keyring.keys(for: id)
        let json = String(decoding: try JSONEncoder().encode(settings), as: UTF8.self)
        let sealed = try keys.sealSecret(json, context: "provider:\(channel.rawValue)", attribute: Self.providerAttribute)
        try await store.saveProvider(ProviderRecord(workspaceID: id, channel: channel, kind: kind, sealedSettings: sealed))
        try await audit([AuditDraft(actor: actor, action: .keyChange, attributes: ["provider:\(channel.rawValue)"], requestID: requestID)],
                        workspace: id)
    }

    public func provider(_ id: WorkspaceID, channel: Channel) async throws -> (kind: String, settings: [String: String])? {
        guard let record = try await store.provider(workspace: id, channel: channel) else { return nil }
        let keys = try await keyring.keys(for: id)
        let json = try keys.openSecret(record.sealedSettings, context: "provider:\(channel.rawValue)", attribute: Self.providerAttribute)
        return (record.kind, try JSONDecoder().decode([String: String].self, from: Data(json.utf8)))
    }
}
