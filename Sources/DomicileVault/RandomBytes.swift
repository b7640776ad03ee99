import Crypto
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// Random bytes for nonces and data keys, drawn from the kernel's CSPRNG 4 KiB at a time.
///
/// Asking the kernel for every nonce and key (as `AES.GCM.Nonce()` and `SymmetricKey(size:)` do)
/// made eleven `getrandom` system calls for a customer's ten attributes. The bytes here are the
/// same kernel randomness (`/dev/urandom`), read 4 KiB at a time and handed out once each.
enum RandomBytes {
    private static let refill = 4096
    private static let buffer = Mutex<(bytes: [UInt8], next: Int)>(([], refill))

    static func take(_ count: Int) -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { out, initialized in
            fill(UnsafeMutableRawBufferPointer(out))
            initialized = count
        }
    }

    /// Fills `destination` with bytes no other caller gets.
    static func fill(_ destination: UnsafeMutableRawBufferPointer) {
        let count = destination.count
        precondition(count <= refill)
        buffer.withLock { state in
            if state.next + count > state.bytes.count {
                state.bytes = fresh()
                state.next = 0
            }
            state.bytes.withUnsafeBytes { source in
                destination.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[state.next..<state.next + count]))
            }
            state.next += count
        }
    }

    /// The kernel CSPRNG, opened once; one read fills the whole buffer.
    private static let urandom: Int32 = open("/dev/urandom", O_RDONLY | O_CLOEXEC)

    private static func fresh() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: refill) { buffer, initialized in
            var filled = 0
            while filled < refill {
                let got = read(urandom, buffer.baseAddress! + filled, refill - filled)
                if got > 0 {
                    filled += got
                } else if got == 0 || errno != EINTR {
                    fatalError("reading /dev/urandom failed (errno \(errno))")
                }
            }
            initialized = refill
        }
    }

    static func key256() -> SymmetricKey {
        var bytes = take(32)
        defer { Envelope.wipe(&bytes) }
        return SymmetricKey(data: bytes)
    }
}
