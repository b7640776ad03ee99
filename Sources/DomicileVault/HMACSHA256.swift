import Crypto

/// HMAC-SHA256 with the key absorbed once: swift-crypto's `HMAC` holds the keyed inner and
/// outer states, and each code continues a copy of them (its digest states are copied on
/// write), instead of hashing the padded key again for every code.
struct HMACSHA256: Sendable {
    private let keyed: HMAC<SHA256>

    init(key: SymmetricKey) {
        keyed = HMAC<SHA256>(key: key)
    }

    /// The code of the bytes `write` feeds, in order, to `update`.
    func authenticationCode(_ write: (_ update: (UnsafeRawBufferPointer) -> Void) -> Void) -> [UInt8] {
        var mac = keyed
        write { bytes in mac.update(data: bytes) }
        return Array(mac.finalize())
    }
}
