import Crypto
import DomicileCore
import Foundation

/// The brand's own keys in client mode: one that seals values (AES-256-GCM) and one that makes
/// blind-index digests (HMAC-SHA256). Domicile never holds either; the brand's backend, the
/// `domicile client` commands and the relay do. docs/client-encryption.md specifies every byte.
public struct BrandKeys: Sendable {
    public static let associatedDataLabel = "domicile-client-v1"

    /// Seals and opens values; the relay may hold several (old ones for values not yet re-sent).
    public let encryption: [String: SymmetricKey]
    /// The key new values are sealed with.
    public let currentKeyID: String
    public let index: SymmetricKey?

    public init(encryption keys: [SymmetricKey], index: SymmetricKey?) throws {
        guard let first = keys.first else { throw ClientError("at least one brand key is needed") }
        var byID: [String: SymmetricKey] = [:]
        for key in keys {
            guard key.bitCount == 256 else { throw ClientError("a brand key is 32 bytes") }
            byID[Self.keyID(of: key)] = key
        }
        encryption = byID
        currentKeyID = Self.keyID(of: first)
        self.index = index
    }

    /// A key's id: the first 8 bytes of SHA-256("domicile-client-key-id" ‖ key), lower-case hex.
    public static func keyID(of key: SymmetricKey) -> String {
        var hash = SHA256()
        hash.update(data: Array("domicile-client-key-id".utf8))
        key.withUnsafeBytes { hash.update(bufferPointer: $0) }
        return hash.finalize().prefix(8).map { String(format: "%02x", $0) }.joined()
    }

    /// The associated data binding a value to its slot:
    /// `"domicile-client-v1" 0x00 workspace 0x00 customer_id 0x00 attribute` (none of the three may hold a zero byte).
    public static func associatedData(workspace: String, customer: String, attribute: String) -> [UInt8] {
        Array(associatedDataLabel.utf8) + [0] + Array(workspace.utf8) + [0] + Array(customer.utf8) + [0] + Array(attribute.utf8)
    }

    /// The bytes sealed: the normalised value as JSON text (a string, number or boolean).
    public static func plaintext(_ value: AttributeValue) -> [UInt8] {
        var writer = JSONWriter(capacity: 64)
        writer.value(value.json)
        return writer.bytes
    }

    /// The text a digest is made of: a string as it is, a number or boolean as its JSON text.
    public static func indexText(_ value: AttributeValue) -> String {
        if case .string(let text) = value { return text }
        return String(decoding: plaintext(value), as: UTF8.self)
    }

    /// `HMAC-SHA256(index key, attribute ‖ 0x00 ‖ normalised value)`.
    public func digest(_ value: AttributeValue, attribute: String) throws -> [UInt8] {
        guard let index else { throw ClientError("no index key: give the index key file to compute digests") }
        return Array(HMAC<SHA256>.authenticationCode(for: Array(attribute.utf8) + [0] + Array(Self.indexText(value).utf8), using: index))
    }

    /// Seals one normalised value into an envelope.
    /// - Parameters:
    ///   - masked: the form shown to operators without `view_pii`.
    ///   - indexed: also carry the blind-index digest.
    ///   - nonce: for test vectors only; a fresh random nonce otherwise.
    public func seal(_ value: AttributeValue, workspace: String, customer: String, attribute: String, masked: String?, indexed: Bool,
                     nonce: [UInt8]? = nil) throws -> ClientEnvelope {
        let key = encryption[currentKeyID]!
        let box = try AES.GCM.seal(Self.plaintext(value), using: key, nonce: try AES.GCM.Nonce(data: nonce ?? Array(AES.GCM.Nonce())),
                                   authenticating: Self.associatedData(workspace: workspace, customer: customer, attribute: attribute))
        return ClientEnvelope(keyID: currentKeyID, nonce: Array(box.nonce), ciphertext: Array(box.ciphertext) + Array(box.tag),
                              masked: masked, index: indexed ? try digest(value, attribute: attribute) : nil)
    }

    /// Opens an envelope of `attribute` of `customer`; throws when the key is not held, or the
    /// envelope was made for another slot or altered.
    public func open(_ envelope: ClientEnvelope, workspace: String, customer: String, attribute: String) throws -> AttributeValue {
        guard let key = encryption[envelope.keyID] else {
            throw ClientError("no brand key with id \(envelope.keyID) is held")
        }
        let split = envelope.ciphertext.count - ClientEnvelope.tagLength
        guard split > 0 else { throw ClientError("envelope too short") }
        let plaintext: Data
        do {
            let box = try AES.GCM.SealedBox(nonce: try AES.GCM.Nonce(data: envelope.nonce), ciphertext: envelope.ciphertext[..<split],
                                            tag: envelope.ciphertext[split...])
            plaintext = try AES.GCM.open(box, using: key,
                                         authenticating: Self.associatedData(workspace: workspace, customer: customer, attribute: attribute))
        } catch {
            throw ClientError("the envelope of \(attribute) does not open with the brand's key: altered, or made for another customer or attribute")
        }
        switch try? JSONParser.parse(plaintext) {
        case .string(let text)?: return .string(text)
        case .integer(let number)?: return .integer(number)
        case .double(let number)?: return .double(number)
        case .bool(let flag)?: return .bool(flag)
        default: throw ClientError("the envelope of \(attribute) holds no JSON scalar")
        }
    }
}

/// A failure of the brand-side tools; its text never holds a value.
public struct ClientError: Error, CustomStringConvertible, Sendable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Key files: the key's 32 bytes in standard base64 on one line, readable by their owner only.
public enum KeyFile {
    public static func generate(at path: String) throws -> SymmetricKey {
        guard !FileManager.default.fileExists(atPath: path) else { throw ClientError("\(path) exists; a key file is never overwritten") }
        let key = SymmetricKey(size: .bits256)
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        guard FileManager.default.createFile(atPath: path, contents: Data(text.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw ClientError("cannot write \(path)")
        }
        return key
    }

    public static func read(_ path: String) throws -> SymmetricKey {
        guard let data = FileManager.default.contents(atPath: path) else { throw ClientError("cannot read the key file \(path)") }
        let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard let bytes = Data(base64Encoded: text), bytes.count == 32 else {
            throw ClientError("\(path) is not a key file (32 bytes, base64, on one line)")
        }
        return SymmetricKey(data: bytes)
    }
}
