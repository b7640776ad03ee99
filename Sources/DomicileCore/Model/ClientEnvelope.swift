import Foundation

/// How a workspace protects its customers' values.
public enum ProtectionMode: String, Sendable, Hashable, Codable, CaseIterable {
    /// Domicile encrypts on arrival with keys it holds ("auto-hashing").
    case vault
    /// The brand encrypts before sending with a key Domicile never holds ("self-encryption"):
    /// PII arrives as `ClientEnvelope`s, and sends go through the brand's relay.
    case client
}

/// A value the brand encrypted with its own key (client mode), as it travels in JSON:
///
///     {"domicile_envelope": 1, "key_id": "…", "nonce": "<base64>", "ciphertext": "<base64>",
///      "masked": "j***@e******.com", "index": "<base64>"}
///
/// `masked` (the form shown to anyone without `view_pii`) and `index` (the brand's blind-index
/// digest, for lookups) are optional. Domicile checks the structure and sizes only: it cannot
/// open the ciphertext. The cryptography is in docs/client-encryption.md.
public struct ClientEnvelope: Sendable, Hashable {
    public static let format: Int64 = 1
    public static let formatKey = "domicile_envelope"
    /// AES-GCM's nonce and tag.
    public static let nonceLength = 12
    public static let tagLength = 16
    /// The largest plaintext a value may have (a text attribute's limit, as JSON text with room
    /// for escapes), so the largest ciphertext.
    public static let maximumPlaintext = 4 * AttributeDefinition.maximumTextLength + 2
    public static let maximumMasked = 256
    public static let digestLength = 32
    static let keyIDCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
    static let fields: Set<String> = [formatKey, "key_id", "nonce", "ciphertext", "masked", "index"]

    public var keyID: String
    public var nonce: [UInt8]
    /// Ciphertext followed by the 16-byte tag.
    public var ciphertext: [UInt8]
    public var masked: String?
    public var index: [UInt8]?

    public init(keyID: String, nonce: [UInt8], ciphertext: [UInt8], masked: String? = nil, index: [UInt8]? = nil) {
        self.keyID = keyID
        self.nonce = nonce
        self.ciphertext = ciphertext
        self.masked = masked
        self.index = index
    }

    /// Whether a JSON value claims to be an envelope (so a vault-mode workspace can say why it refuses it).
    public static func looksLikeEnvelope(_ json: JSONValue) -> Bool {
        if case .object(let fields) = json { return fields[formatKey] != nil }
        return false
    }

    /// Reads and checks an envelope; the failure names the attribute and the field, never a value.
    public static func parse(_ json: JSONValue, attribute: String) throws(Failure) -> ClientEnvelope {
        func refuse(_ message: String) -> Failure { Failure(.attribute, attribute: attribute, message) }
        guard case .object(let fields) = json else {
            throw refuse("a client-mode value must be an envelope object: {\"domicile_envelope\":1,\"key_id\":…,\"nonce\":…,\"ciphertext\":…}")
        }
        guard case .integer(format)? = fields[formatKey] else {
            throw refuse("the envelope's domicile_envelope must be 1 (the only format there is)")
        }
        if let unknown = fields.keys.sorted().first(where: { !Self.fields.contains($0) }) {
            let safe = (try? AttributeName(validating: unknown))?.rawValue ?? "a field"
            throw refuse("the envelope has an unknown field (\(safe)); it holds domicile_envelope, key_id, nonce, ciphertext, masked and index")
        }
        guard case .string(let keyID)? = fields["key_id"], (1...64).contains(keyID.count), keyID.allSatisfy(keyIDCharacters.contains) else {
            throw refuse("the envelope's key_id must be 1 to 64 letters, digits, '.', '_' or '-'")
        }
        func base64(_ name: String) throws(Failure) -> [UInt8]? {
            switch fields[name] {
            case nil, .null?: return nil
            case .string(let text)?:
                guard let data = Data(base64Encoded: text) else { throw refuse("the envelope's \(name) must be standard base64") }
                return [UInt8](data)
            default: throw refuse("the envelope's \(name) must be a base64 string")
            }
        }
        guard let nonce = try base64("nonce"), nonce.count == nonceLength else {
            throw refuse("the envelope's nonce must be \(nonceLength) bytes, base64")
        }
        guard let ciphertext = try base64("ciphertext"), (tagLength + 1...tagLength + maximumPlaintext).contains(ciphertext.count) else {
            throw refuse("the envelope's ciphertext must be base64 of 17 to \(tagLength + maximumPlaintext) bytes (the AES-GCM tag included)")
        }
        var masked: String?
        switch fields["masked"] {
        case nil, .null?: break
        case .string(let text)?:
            guard text.count <= maximumMasked, !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) else {
                throw refuse("the envelope's masked form must be at most \(maximumMasked) characters, without control characters")
            }
            masked = text
        default: throw refuse("the envelope's masked form must be a string")
        }
        let index = try base64("index")
        if let index, index.count != digestLength {
            throw refuse("the envelope's index must be a \(digestLength)-byte HMAC-SHA256 digest, base64")
        }
        return ClientEnvelope(keyID: keyID, nonce: nonce, ciphertext: ciphertext, masked: masked, index: index)
    }

    /// The envelope as JSON, keys in a fixed order (what is sealed, exported and handed to the relay).
    public var json: JSONValue {
        var fields: [String: JSONValue] = [
            Self.formatKey: .integer(Self.format), "key_id": .string(keyID),
            "nonce": .string(Data(nonce).base64EncodedString()), "ciphertext": .string(Data(ciphertext).base64EncodedString()),
        ]
        if let masked { fields["masked"] = .string(masked) }
        if let index { fields["index"] = .string(Data(index).base64EncodedString()) }
        return .object(fields)
    }

    public var bytes: [UInt8] {
        var writer = JSONWriter(capacity: 96 + ciphertext.count * 4 / 3)
        writer.value(json)
        return writer.bytes
    }

    public init?(bytes: some Sequence<UInt8>) {
        guard let json = try? JSONParser.parse(bytes), let envelope = try? Self.parse(json, attribute: "value") else { return nil }
        self = envelope
    }
}
