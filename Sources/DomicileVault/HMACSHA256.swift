import CLibCrypto
import Crypto
import Synchronization

/// HMAC-SHA256 (RFC 2104) with the key absorbed once, on OpenSSL's EVP digest interface.
///
/// The inner and outer hash states (after `key ⊕ ipad` and `key ⊕ opad`) are computed when the
/// key is set; each code continues copies of them. swift-crypto's `HMAC` copies its state on the
/// heap and hashes the outer key again for every code: 21,000 instructions for a blind-index
/// digest of a short value (callgrind), two per customer. Tested against swift-crypto's `HMAC`.
///
/// The keyed states are only ever copied from, never updated; the copies are made under a lock,
/// since OpenSSL documents no object as safe for simultaneous use unless it says so, and
/// `EVP_MD_CTX_copy_ex` does not.
final class HMACSHA256: Sendable {
    private static let blockSize = 64
    private static let digestSize = 32

    nonisolated(unsafe) private static let sha256: OpaquePointer = {
        guard let digest = EVP_MD_fetch(nil, "SHA256", nil) else { fatalError("OpenSSL's default provider has no SHA-256") }
        return digest
    }()

    /// The two keyed `EVP_MD_CTX`s.
    private struct KeyedStates: @unchecked Sendable {
        let inner: OpaquePointer
        let outer: OpaquePointer
    }

    private let states: Mutex<KeyedStates>

    init(key: SymmetricKey) {
        precondition(key.bitCount / 8 <= Self.blockSize, "keys longer than a block are not used here")
        var block = [UInt8](repeating: 0, count: Self.blockSize)
        key.withUnsafeBytes { block.replaceSubrange(0..<$0.count, with: $0) }
        defer { Envelope.wipe(&block) }
        func keyed(_ pad: UInt8) -> OpaquePointer {
            var padded = block.map { $0 ^ pad }
            defer { Envelope.wipe(&padded) }
            guard let context = EVP_MD_CTX_new(), EVP_DigestInit_ex2(context, Self.sha256, nil) == 1,
                  EVP_DigestUpdate(context, padded, padded.count) == 1
            else { fatalError("OpenSSL could not start a SHA-256 digest") }
            return context
        }
        states = Mutex(KeyedStates(inner: keyed(0x36), outer: keyed(0x5C)))
    }

    deinit {
        states.withLock { states in
            EVP_MD_CTX_free(states.inner)
            EVP_MD_CTX_free(states.outer)
        }
    }

    /// The code of the bytes `write` feeds, in order, to `update`.
    func authenticationCode(_ write: (_ update: (UnsafeRawBufferPointer) -> Void) -> Void) -> [UInt8] {
        guard let context = EVP_MD_CTX_new() else { fatalError("out of memory") }
        defer { EVP_MD_CTX_free(context) }
        var ok = states.withLock { EVP_MD_CTX_copy_ex(context, $0.inner) } == 1
        write { bytes in
            if ok && !bytes.isEmpty { ok = EVP_DigestUpdate(context, bytes.baseAddress, bytes.count) == 1 }
        }
        var code = [UInt8](repeating: 0, count: Self.digestSize)
        code.withUnsafeMutableBufferPointer { out in
            ok = ok && EVP_DigestFinal_ex(context, out.baseAddress, nil) == 1
            ok = ok && states.withLock { EVP_MD_CTX_copy_ex(context, $0.outer) } == 1
            ok = ok && EVP_DigestUpdate(context, out.baseAddress, Self.digestSize) == 1
            ok = ok && EVP_DigestFinal_ex(context, out.baseAddress, nil) == 1
        }
        // A digest that cannot be computed would index the value under a wrong key.
        guard ok else { fatalError("OpenSSL failed computing HMAC-SHA256") }
        return code
    }
}
