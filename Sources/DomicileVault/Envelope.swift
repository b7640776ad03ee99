import Crypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import DomicileCore
import Foundation

/// The byte formats of everything Domicile seals, and the associated data that binds each
/// ciphertext to its place. Every format starts with a version byte, so a later format can be
/// read beside this one.
public enum Envelope {
    static let formatVersion: UInt8 = 1

    /// What kind of sealed attribute value this is.
    public enum ValueKind: UInt8, Sendable {
        /// Sealed by Domicile with the customer's data key.
        case vault = 1
        /// A `ClientEnvelope` (ciphertext the brand sealed with its own key, client mode) sealed once
        /// more with the customer's data key: Domicile opens its own layer, never the brand's.
        case client = 2
    }

    // MARK: Customer data keys

    /// `version(1) workspaceKeyVersion(u32) nonce(12) ciphertext(32) tag(16)`, AAD = workspace | customer.
    public static func wrapDataKey(_ dataKey: SymmetricKey, with workspaceKey: SymmetricKey, version: UInt32,
                                   workspace: WorkspaceID, customer: CustomerID) throws -> [UInt8] {
        try wrapKey(dataKey, with: workspaceKey, version: version, aad: associatedData("datakey", [workspace.rawValue, customer.rawValue]))
    }

    /// A workspace's secrets key, wrapped as a data key is (same layout, so the version is read
    /// the same way), under associated data of its own.
    static func wrapSecretsKey(_ key: SymmetricKey, with workspaceKey: SymmetricKey, version: UInt32,
                               workspace: WorkspaceID) throws -> [UInt8] {
        try wrapKey(key, with: workspaceKey, version: version, aad: associatedData("secretskey", [workspace.rawValue]))
    }

    static func unwrapSecretsKey(_ wrapped: [UInt8], with workspaceKey: SymmetricKey, workspace: WorkspaceID) throws -> SymmetricKey {
        try unwrapKey(wrapped, with: workspaceKey, aad: associatedData("secretskey", [workspace.rawValue]))
    }

    private static func wrapKey(_ key: SymmetricKey, with workspaceKey: SymmetricKey, version: UInt32, aad: [UInt8]) throws -> [UInt8] {
        var plaintext = key.withUnsafeBytes { Array($0) }
        defer { wipe(&plaintext) }
        return try AESGCM(key: workspaceKey).seal(plaintext, authenticating: aad, prefix: [formatVersion] + bigEndian(version))
    }

    /// The workspace key version a wrapped data key needs.
    public static func workspaceKeyVersion(ofWrappedDataKey wrapped: [UInt8]) throws -> UInt32 {
        guard wrapped.count == 1 + 4 + 12 + 32 + 16, wrapped[0] == formatVersion else { throw KeyError.malformedCiphertext }
        return wrapped[1..<5].reduce(0) { $0 << 8 | UInt32($1) }
    }

    public static func unwrapDataKey(_ wrapped: [UInt8], with workspaceKey: SymmetricKey,
                                     workspace: WorkspaceID, customer: CustomerID) throws -> SymmetricKey {
        try unwrapKey(wrapped, with: workspaceKey, aad: associatedData("datakey", [workspace.rawValue, customer.rawValue]))
    }

    private static func unwrapKey(_ wrapped: [UInt8], with workspaceKey: SymmetricKey, aad: [UInt8]) throws -> SymmetricKey {
        _ = try workspaceKeyVersion(ofWrappedDataKey: wrapped)
        do {
            var plaintext = try AESGCM(key: workspaceKey).open(wrapped[5...], authenticating: aad)
            defer { wipe(&plaintext) }
            return SymmetricKey(data: plaintext)
        } catch {
            throw KeyError.unwrapFailed
        }
    }

    // MARK: Attribute values

    /// `version(1) kind(1)=vault nonce(12) ciphertext tag(16)`, AAD = version | workspace | customer | attribute:
    /// a value copied onto another customer or attribute does not open.
    public static func seal(_ value: AttributeValue, with dataKey: SymmetricKey,
                            workspace: WorkspaceID, customer: CustomerID, attribute: AttributeName) throws -> [UInt8] {
        try CustomerCipher(dataKey: dataKey, workspace: workspace, customer: customer).seal(value, attribute: attribute)
    }

    public static func kind(of sealed: [UInt8]) throws -> ValueKind {
        guard sealed.count >= 2, sealed[0] == formatVersion, let kind = ValueKind(rawValue: sealed[1]) else {
            throw KeyError.malformedCiphertext
        }
        return kind
    }

    public static func open(_ sealed: [UInt8], with dataKey: SymmetricKey,
                            workspace: WorkspaceID, customer: CustomerID, attribute: AttributeName) throws -> AttributeValue {
        try CustomerCipher(dataKey: dataKey, workspace: workspace, customer: customer).open(sealed, attribute: attribute)
    }

    /// One customer's attribute values under its data key: the common part of the associated
    /// data is framed once, then reused for each attribute.
    public final class CustomerCipher {
        private let gcm: AESGCM
        /// `associatedData("value", [workspace, customer])`; each value appends its attribute.
        private let associatedPrefix: [UInt8]

        public init(dataKey: SymmetricKey, workspace: WorkspaceID, customer: CustomerID) throws {
            gcm = try AESGCM(key: dataKey)
            associatedPrefix = Envelope.associatedData("value", [workspace.rawValue, customer.rawValue])
        }

        private func associatedData(_ attribute: AttributeName) -> [UInt8] {
            var aad = associatedPrefix
            appendComponent(attribute.rawValue, to: &aad)
            return aad
        }

        /// `version(1) kind(1)=vault nonce(12) ciphertext tag(16)`, AAD = version | workspace | customer | attribute:
        /// a value copied onto another customer or attribute does not open.
        public func seal(_ value: AttributeValue, attribute: AttributeName) throws -> [UInt8] {
            var plaintext = value.plaintext
            defer { wipe(&plaintext) }
            return try gcm.seal(plaintext, authenticating: associatedData(attribute), prefix: Envelope.vaultPrefix)
        }

        /// `version(1) kind(1)=client nonce(12) ciphertext tag(16)`: the brand's envelope under the
        /// customer's data key, with the same associated data as a vault value, so erasing the
        /// customer's key shreds it too.
        public func seal(_ envelope: ClientEnvelope, attribute: AttributeName) throws -> [UInt8] {
            try gcm.seal(envelope.bytes, authenticating: associatedData(attribute), prefix: Envelope.clientPrefix)
        }

        /// The brand's envelope of a client-kind value (still sealed with the brand's key).
        public func openEnvelope(_ sealed: [UInt8], attribute: AttributeName) throws -> ClientEnvelope {
            guard try kind(of: sealed) == .client else { throw KeyError.malformedCiphertext }
            let bytes: [UInt8]
            do {
                bytes = try gcm.open(sealed[2...], authenticating: associatedData(attribute))
            } catch {
                throw KeyError.unwrapFailed
            }
            guard let envelope = ClientEnvelope(bytes: bytes) else { throw KeyError.malformedCiphertext }
            return envelope
        }

        public func open(_ sealed: [UInt8], attribute: AttributeName) throws -> AttributeValue {
            guard try kind(of: sealed) == .vault else { throw KeyError.malformedCiphertext }
            do {
                var plaintext = try gcm.open(sealed[2...], authenticating: associatedData(attribute))
                defer { wipe(&plaintext) }
                guard let value = AttributeValue(plaintext: plaintext) else { throw KeyError.malformedCiphertext }
                return value
            } catch {
                throw KeyError.unwrapFailed
            }
        }
    }

    static let vaultPrefix: [UInt8] = [formatVersion, ValueKind.vault.rawValue]
    static let clientPrefix: [UInt8] = [formatVersion, ValueKind.client.rawValue]

    // MARK: Helpers

    /// `purpose 0 version { length(u16) component }*`: unambiguous, so no two slots share associated data.
    static func associatedData(_ purpose: String, _ components: [String]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + purpose.utf8.count + components.reduce(0) { $0 + 2 + $1.utf8.count })
        out.append(contentsOf: "domicile.".utf8)
        out.append(contentsOf: purpose.utf8)
        out.append(0)
        out.append(formatVersion)
        for component in components { appendComponent(component, to: &out) }
        return out
    }

    static func appendComponent(_ component: String, to out: inout [UInt8]) {
        let count = component.utf8.count
        out.append(UInt8(truncatingIfNeeded: count >> 8))
        out.append(UInt8(truncatingIfNeeded: count))
        out.append(contentsOf: component.utf8)
    }

    /// Overwrites plaintext before its memory is released.
    static func wipe(_ bytes: inout [UInt8]) {
        bytes.withUnsafeMutableBytes { raw in
            guard let base = raw.baseAddress else { return }
            #if canImport(Glibc)
            explicit_bzero(base, raw.count)  // a store the optimiser cannot drop
            #else
            memset_s(base, raw.count, 0, raw.count)
            #endif
        }
    }

    static func bigEndian<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
        withUnsafeBytes(of: value.bigEndian, Array.init)
    }
}

/// Keyed digests of normalised values, so lookups by e-mail or phone work without storing either.
public struct BlindIndex: Sendable {
    private let mac: HMACSHA256

    /// Derives a blind-index key from a workspace key version, with its own label, so that no
    /// digest can be computed without the vault.
    public init(workspaceKey: SymmetricKey, workspace: WorkspaceID) {
        self.init(key: Self.derivedKey(workspaceKey: workspaceKey, workspace: workspace))
    }

    /// From a key derived once and kept (the tombstone key of `WorkspaceSecrets`).
    init(key: SymmetricKey) {
        mac = HMACSHA256(key: key)
    }

    static func derivedKey(workspaceKey: SymmetricKey, workspace: WorkspaceID) -> SymmetricKey {
        HKDF<SHA256>.deriveKey(inputKeyMaterial: workspaceKey, salt: Array("domicile.blind-index.v1".utf8),
                               info: Array(workspace.rawValue.utf8), outputByteCount: 32)
    }

    /// HMAC-SHA256 over the attribute name, a zero byte and the normalised value.
    public func digest(_ value: AttributeValue, attribute: AttributeName) -> [UInt8] {
        var plaintext = value.plaintext
        defer { Envelope.wipe(&plaintext) }
        var name = attribute.rawValue
        return mac.authenticationCode { update in
            name.withUTF8 { update(UnsafeRawBufferPointer($0)) }
            Self.separator.withUnsafeBytes { update($0) }
            plaintext.withUnsafeBytes { update($0) }
        }
    }

    private static let separator: [UInt8] = [0]
}
