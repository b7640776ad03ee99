import Crypto
import Foundation
import Metrics
import Synchronization

/// The root of the key hierarchy: wraps and unwraps workspace keys, and never hands out its own key.
///
/// Implemented by a local key file (the default), OpenBao's transit engine, or a cloud KMS.
public protocol RootKeyService: Sendable {
    /// A name for logs and readiness answers, e.g. `local-file`.
    var name: String { get }
    /// Seals `key` so that only this service can open it; `context` is bound as associated data.
    func wrap(_ key: SymmetricKey, context: String) async throws -> [UInt8]
    func unwrap(_ wrapped: [UInt8], context: String) async throws -> SymmetricKey
    /// Several keys at once, in order: one round trip to a remote KMS.
    func unwrap(_ items: [(wrapped: [UInt8], context: String)]) async throws -> [SymmetricKey]
    /// Starts wrapping with a new root key version; what older versions wrapped keeps opening.
    func beginRotation() async throws
    /// Every workspace key is wrapped with the new version: the service may let older ones go.
    func finishRotation() async throws
}

extension RootKeyService {
    public func unwrap(_ items: [(wrapped: [UInt8], context: String)]) async throws -> [SymmetricKey] {
        var keys: [SymmetricKey] = []
        for item in items { keys.append(try await unwrap(item.wrapped, context: item.context)) }
        return keys
    }
}

public enum KeyError: Error, Sendable, CustomStringConvertible {
    case rootKeyFile(String)
    case unwrapFailed
    case unknownKeyVersion(UInt32)
    case malformedCiphertext
    case noWorkspaceKey
    /// The KMS cannot be reached, is sealed or failing: retry later.
    case kmsUnavailable(String)
    /// The KMS refused: a revoked token or key, a ciphertext it does not open.
    case kmsRefused(String)

    public var description: String {
        switch self {
        case .kmsUnavailable(let detail): "the key service is unavailable: \(detail)"
        case .kmsRefused(let detail): "the key service refused: \(detail)"
        case .rootKeyFile(let detail): "root key file: \(detail)"
        case .unwrapFailed: "a wrapped key did not open: wrong root key or tampered data"
        case .unknownKeyVersion(let version): "no workspace key version \(version)"
        case .malformedCiphertext: "malformed ciphertext"
        case .noWorkspaceKey: "the workspace has no key"
        }
    }
}

/// A 256-bit root key kept in a file readable only by its owner, generated on first start.
///
/// Suitable for one node and for development; a production deployment points Domicile at a KMS
/// so that the root key never sits on the same disk as the data.
///
/// Rotation writes the new key to `<path>.next` first and wraps with it from then on, while the
/// old key still opens what it wrapped; once every workspace key is wrapped again,
/// `finishRotation` renames `.next` over the file. A process that finds a `.next` file (a rotation
/// cut short) loads both keys, so nothing becomes unreadable whichever step a crash interrupted.
public final class LocalKeyFileRootKey: RootKeyService {
    public let name = "local-file"
    /// The file, or nil for a key given in memory (tests), which cannot rotate.
    let path: String?
    /// The first wraps; every one of them opens.
    private let keys: Mutex<[SymmetricKey]>
    static let formatVersion: UInt8 = 1

    public init(key: SymmetricKey) {
        path = nil
        keys = Mutex([key])
    }

    init(keys: [SymmetricKey], path: String) {
        self.path = path
        self.keys = Mutex(keys)
    }

    /// Reads the key file, or creates it (mode 0600, refusing to overwrite) when it does not exist.
    public static func loadOrCreate(at path: String) throws -> (LocalKeyFileRootKey, created: Bool) {
        let fileManager = FileManager.default
        if fileManager.fileExists(atPath: path) {
            let current = try read(path)
            // A rotation was cut short: the next key may already wrap some workspace keys.
            let next = fileManager.fileExists(atPath: path + ".next") ? [try read(path + ".next")] : []
            return (LocalKeyFileRootKey(keys: next + [current], path: path), false)
        }
        let key = SymmetricKey(size: .bits256)
        try create(key, at: path)
        return (LocalKeyFileRootKey(keys: [key], path: path), true)
    }

    static func read(_ path: String) throws -> SymmetricKey {
        let attributes = try FileManager.default.attributesOfItem(atPath: path)
        if let permissions = attributes[.posixPermissions] as? NSNumber, permissions.intValue & 0o077 != 0 {
            throw KeyError.rootKeyFile("\(path) is readable by others (mode \(String(permissions.intValue, radix: 8))); chmod 600 it")
        }
        guard let text = FileManager.default.contents(atPath: path).map({ String(decoding: $0, as: UTF8.self) }),
              let bytes = Data(base64Encoded: text.trimmingCharacters(in: .whitespacesAndNewlines)), bytes.count == 32
        else {
            throw KeyError.rootKeyFile("\(path) does not hold a base64 256-bit key")
        }
        return SymmetricKey(data: bytes)
    }

    /// Creates `path` (mode 0600, never over an existing file) holding `key`, fsynced.
    static func create(_ key: SymmetricKey, at path: String) throws {
        let text = key.withUnsafeBytes { Data($0).base64EncodedString() } + "\n"
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL, 0o600)
        guard descriptor >= 0 else {
            throw KeyError.rootKeyFile("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let written = text.utf8CString.withUnsafeBufferPointer { write(descriptor, $0.baseAddress, $0.count - 1) }
        guard written == text.utf8.count, fsync(descriptor) == 0 else {
            throw KeyError.rootKeyFile("cannot write \(path)")
        }
    }

    public func wrap(_ key: SymmetricKey, context: String) async throws -> [UInt8] {
        let wrapping = keys.withLock { $0[0] }
        let box = try key.withUnsafeBytes { bytes in
            try AES.GCM.seal(Data(bytes), using: wrapping, authenticating: Self.aad(context))
        }
        return [Self.formatVersion] + Array(box.combined!)
    }

    public func unwrap(_ wrapped: [UInt8], context: String) async throws -> SymmetricKey {
        guard wrapped.first == Self.formatVersion, let box = try? AES.GCM.SealedBox(combined: wrapped.dropFirst()) else {
            throw KeyError.malformedCiphertext
        }
        for key in keys.withLock({ $0 }) {
            if let opened = try? AES.GCM.open(box, using: key, authenticating: Self.aad(context)) { return SymmetricKey(data: opened) }
        }
        // Another process (`domicile keys rotate-root`) may have rotated the file since it was read.
        if let path, let (reloaded, _) = try? Self.loadOrCreate(at: path) {
            let fresh = reloaded.keys.withLock { $0 }
            for key in fresh {
                if let opened = try? AES.GCM.open(box, using: key, authenticating: Self.aad(context)) {
                    keys.withLock { $0 = fresh }
                    return SymmetricKey(data: opened)
                }
            }
        }
        throw KeyError.unwrapFailed
    }

    public func beginRotation() async throws {
        guard let path else { throw KeyError.rootKeyFile("a key given in memory cannot be rotated") }
        let next = path + ".next"
        if FileManager.default.fileExists(atPath: next) { return }  // resuming: it is already the first key
        let key = SymmetricKey(size: .bits256)
        try Self.create(key, at: next)
        keys.withLock { $0.insert(key, at: 0) }
    }

    public func finishRotation() async throws {
        guard let path else { return }
        guard rename(path + ".next", path) == 0 else { throw KeyError.rootKeyFile("cannot rename \(path).next to \(path)") }
        let folder = open((path as NSString).deletingLastPathComponent.isEmpty ? "." : (path as NSString).deletingLastPathComponent, O_RDONLY)
        if folder >= 0 { _ = fsync(folder); close(folder) }
        keys.withLock { $0 = [$0[0]] }
    }

    private static func aad(_ context: String) -> [UInt8] {
        Array("domicile.root-wrap.v1\u{0}".utf8) + Array(context.utf8)
    }
}

/// Counts the calls to the root key service (the KMS), their latency and their failures.
struct MeteredRootKey: RootKeyService {
    let base: any RootKeyService
    var name: String { base.name }

    func wrap(_ key: SymmetricKey, context: String) async throws -> [UInt8] {
        try await measure("wrap") { try await base.wrap(key, context: context) }
    }

    func unwrap(_ wrapped: [UInt8], context: String) async throws -> SymmetricKey {
        try await measure("unwrap") { try await base.unwrap(wrapped, context: context) }
    }

    func unwrap(_ items: [(wrapped: [UInt8], context: String)]) async throws -> [SymmetricKey] {
        try await measure("unwrap") { try await base.unwrap(items) }
    }

    func beginRotation() async throws { try await measure("rotate") { try await base.beginRotation() } }
    func finishRotation() async throws { try await base.finishRotation() }

    private func measure<T>(_ operation: String, _ call: () async throws -> T) async throws -> T {
        let start = ContinuousClock.now
        let dimensions = [("service", base.name), ("operation", operation)]
        Counter(label: "domicile_kms_calls_total", dimensions: dimensions).increment()
        defer { Metrics.Timer(label: "domicile_kms_call_duration_seconds", dimensions: dimensions).record(duration: ContinuousClock.now - start) }
        do {
            return try await call()
        } catch {
            Counter(label: "domicile_kms_failures_total", dimensions: dimensions).increment()
            throw error
        }
    }
}
