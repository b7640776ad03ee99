import Crypto
import Foundation

/// AES-256-GCM with 12-byte random nonces and 16-byte tags, through swift-crypto.
///
/// Sealed bytes are `prefix | nonce | ciphertext | tag`: after the prefix, the layout of
/// swift-crypto's `AES.GCM.SealedBox.combined`.
struct AESGCM {
    static let nonceSize = 12
    static let tagSize = 16

    private let key: SymmetricKey

    init(key: SymmetricKey) throws {
        guard key.bitCount == 256 else { throw KeyError.malformedCiphertext }
        self.key = key
    }

    /// `prefix | nonce | ciphertext | tag`, with a fresh random nonce.
    func seal(_ plaintext: [UInt8], authenticating aad: [UInt8], prefix: [UInt8] = []) throws -> [UInt8] {
        guard let combined = try AES.GCM.seal(plaintext, using: key, authenticating: aad).combined else {
            throw KeyError.malformedCiphertext  // only for nonces of another size than 12 bytes
        }
        return prefix + combined
    }

    /// The plaintext of `nonce | ciphertext | tag`; throws `KeyError.unwrapFailed` when the tag
    /// does not match (wrong key, other associated data, or altered bytes).
    func open(_ combined: ArraySlice<UInt8>, authenticating aad: [UInt8]) throws -> [UInt8] {
        guard combined.count >= Self.nonceSize + Self.tagSize else { throw KeyError.malformedCiphertext }
        do {
            return Array(try AES.GCM.open(AES.GCM.SealedBox(combined: combined), using: key, authenticating: aad))
        } catch {
            throw KeyError.unwrapFailed
        }
    }
}
