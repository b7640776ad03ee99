import CLibCrypto
import Crypto

/// AES-256-GCM with 12-byte nonces and 16-byte tags, on OpenSSL's EVP interface.
///
/// An instance holds one key's expanded schedule and is reused for every value sealed or opened
/// under that key, such as the ten attributes of a customer. swift-crypto's `AES.GCM` expands
/// the key and assembles a `SealedBox` for each value; for the short values of a customer
/// record that cost 3.3 µs a value, most of it outside the cipher.
///
/// Sealed bytes are `nonce | ciphertext | tag`, the layout of swift-crypto's
/// `AES.GCM.SealedBox.combined`, so each opens what the other sealed (tested).
///
/// Not for concurrent use: one instance per task, for the length of one operation.
final class AESGCM {
    static let nonceSize = 12
    static let tagSize = 16

    private let context: OpaquePointer

    /// The cipher implementation, fetched from OpenSSL's default provider once.
    nonisolated(unsafe) private static let cipher: OpaquePointer = {
        guard let cipher = EVP_CIPHER_fetch(nil, "AES-256-GCM", nil) else {
            fatalError("OpenSSL's default provider has no AES-256-GCM")
        }
        return cipher
    }()

    init(key: SymmetricKey) throws {
        guard key.bitCount == 256 else { throw KeyError.malformedCiphertext }
        guard let context = EVP_CIPHER_CTX_new() else { throw KeyError.cipherUnavailable }
        let ok = key.withUnsafeBytes { bytes in
            EVP_CipherInit_ex2(context, Self.cipher, bytes.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, 1, nil)
        }
        guard ok == 1 else {
            EVP_CIPHER_CTX_free(context)
            throw KeyError.cipherUnavailable
        }
        self.context = context
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// `prefix | nonce | ciphertext | tag`, with a fresh random nonce.
    func seal(_ plaintext: [UInt8], authenticating aad: [UInt8], prefix: [UInt8] = []) throws -> [UInt8] {
        let count = prefix.count + Self.nonceSize + plaintext.count + Self.tagSize
        var failed = false
        let sealed = [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            let base = out.baseAddress!
            prefix.withUnsafeBufferPointer { if let start = $0.baseAddress { base.initialize(from: start, count: $0.count) } }
            let nonce = base + prefix.count
            RandomBytes.fill(UnsafeMutableRawBufferPointer(start: nonce, count: Self.nonceSize))
            let body = nonce + Self.nonceSize
            var written: Int32 = 0
            var ok = EVP_CipherInit_ex2(context, nil, nil, nonce, 1, nil) == 1
            ok = ok && aad.withUnsafeBufferPointer { EVP_CipherUpdate(context, nil, &written, $0.baseAddress ?? UnsafePointer(body), Int32($0.count)) } == 1
            ok = ok && plaintext.withUnsafeBufferPointer { EVP_CipherUpdate(context, body, &written, $0.baseAddress ?? UnsafePointer(body), Int32($0.count)) } == 1
            ok = ok && written == plaintext.count
            ok = ok && EVP_CipherFinal_ex(context, body + plaintext.count, &written) == 1
            ok = ok && EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_GET_TAG, Int32(Self.tagSize), body + plaintext.count) == 1
            if !ok { out.initialize(repeating: 0); failed = true }
            initialized = count
        }
        if failed { throw KeyError.cipherUnavailable }
        return sealed
    }

    /// The plaintext of `nonce | ciphertext | tag`; throws `KeyError.unwrapFailed` when the tag
    /// does not match (wrong key, other associated data, or altered bytes).
    func open(_ combined: ArraySlice<UInt8>, authenticating aad: [UInt8]) throws -> [UInt8] {
        guard combined.count >= Self.nonceSize + Self.tagSize else { throw KeyError.malformedCiphertext }
        guard let opened = combined.withUnsafeBufferPointer({ open($0, aad) }) else { throw KeyError.unwrapFailed }
        return opened
    }

    private func open(_ combined: UnsafeBufferPointer<UInt8>, _ aad: [UInt8]) -> [UInt8]? {
        let nonce = combined.baseAddress!
        let length = combined.count - Self.nonceSize - Self.tagSize
        let ciphertext = nonce + Self.nonceSize
        var tag = [UInt8](UnsafeBufferPointer(start: ciphertext + length, count: Self.tagSize))
        var ok = true
        let plaintext = [UInt8](unsafeUninitializedCapacity: max(length, 1)) { out, initialized in
            var written: Int32 = 0
            ok = EVP_CipherInit_ex2(context, nil, nil, nonce, 0, nil) == 1
            ok = ok && aad.withUnsafeBufferPointer { EVP_CipherUpdate(context, nil, &written, $0.baseAddress ?? nonce, Int32($0.count)) } == 1
            ok = ok && EVP_CipherUpdate(context, out.baseAddress!, &written, ciphertext, Int32(length)) == 1 && written == length
            ok = ok && tag.withUnsafeMutableBytes { EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_AEAD_SET_TAG, Int32(Self.tagSize), $0.baseAddress) } == 1
            ok = ok && EVP_CipherFinal_ex(context, out.baseAddress! + length, &written) == 1
            if !ok { out.initialize(repeating: 0) }  // released unread; no partial plaintext survives a failed tag
            initialized = ok ? length : 0
        }
        return ok ? plaintext : nil
    }
}
