import AsyncHTTPClient
import Crypto
import DomicileCore
import DomicileVault
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOSSL
import Synchronization

/// OpenBao's transit engine as the root of trust: workspace keys are wrapped and unwrapped by a
/// named transit key that never leaves OpenBao (`POST /v1/{mount}/encrypt|decrypt/{key}`, the
/// context bound as AES-GCM associated data, several unwraps in one batch request).
///
/// A wrapped key is a format byte (2) followed by OpenBao's ciphertext (`vault:v<n>:…`), so a key
/// wrapped by the local key file (format 1) is told apart. An unreachable, sealed or failing
/// OpenBao is `KeyError.kmsUnavailable`; a refusal (a revoked token, a deleted key, a ciphertext
/// that does not open) is `KeyError.kmsRefused`: both leave nothing half-written, since keys are
/// opened before anything is stored.
public struct OpenBaoTransit: RootKeyService {
    public let name = "openbao-transit"
    static let formatVersion: UInt8 = 2
    let base: String
    let keyName: String
    let token: String
    let client: HTTPClient
    let timeout: TimeAmount

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// - Parameters:
    ///   - address: `https://host:port` (plain `http` to loopback only, for development).
    ///   - caCertificatePath: PEM CA that issued OpenBao's certificate; the system's trust store when nil.
    public init(address: String, keyName: String, token: String, mount: String = "transit", caCertificatePath: String? = nil,
                timeout: Duration = .seconds(5)) throws {
        let endpoint: EgressEndpoint
        do { endpoint = try EgressEndpoint(url: address, setting: "kms-address") } catch {
            throw Invalid(description: "--kms-address must be an absolute https URL")
        }
        guard endpoint.encrypted || endpoint.isLoopback else {
            throw Invalid(description: "--kms-address must use https: plain HTTP goes only to this node's loopback")
        }
        guard !keyName.isEmpty, !keyName.contains("/"), !mount.isEmpty else { throw Invalid(description: "--kms-key must name a transit key") }
        guard !token.isEmpty else { throw Invalid(description: "no OpenBao token: set DOMICILE_KMS_TOKEN or --kms-token-file") }
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caCertificatePath {
            do { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caCertificatePath)) } catch {
                throw Invalid(description: "\(caCertificatePath): not a readable PEM certificate")
            }
        }
        base = (address.hasSuffix("/") ? String(address.dropLast()) : address) + "/v1/\(mount)"
        self.keyName = keyName
        self.token = token
        self.timeout = .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000 + timeout.components.attoseconds / 1_000_000_000)
        let configuration = HTTPClient.Configuration(tlsConfiguration: tls, timeout: .init(connect: self.timeout, read: self.timeout))
        client = Self.clients.withLock { clients in
            let key = "\(caCertificatePath ?? "")|\(timeout)"
            if let client = clients[key] { return client }
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }

    /// One client per CA and timeout for the process's life, like `HTTPClient.shared`: an
    /// AsyncHTTPClient must be shut down before it is released, and a KMS client is needed until
    /// the process exits.
    private static let clients = Mutex<[String: HTTPClient]>([:])

    public func wrap(_ key: SymmetricKey, context: String) async throws -> [UInt8] {
        let plaintext = key.withUnsafeBytes { Data($0).base64EncodedString() }
        let answer = try await post("encrypt", ["plaintext": plaintext, "associated_data": Self.associatedData(context)])
        guard let data = answer["data"] as? [String: Any], let ciphertext = data["ciphertext"] as? String else {
            throw KeyError.kmsUnavailable("OpenBao's encrypt answer has no ciphertext")
        }
        return [Self.formatVersion] + Array(ciphertext.utf8)
    }

    public func unwrap(_ wrapped: [UInt8], context: String) async throws -> SymmetricKey {
        try await unwrap([(wrapped, context)])[0]
    }

    /// Several keys in one request (`batch_input`), in order.
    public func unwrap(_ items: [(wrapped: [UInt8], context: String)]) async throws -> [SymmetricKey] {
        guard !items.isEmpty else { return [] }
        let batch: [[String: String]] = try items.map { item in
            guard item.wrapped.first == Self.formatVersion else { throw KeyError.malformedCiphertext }
            return ["ciphertext": String(decoding: item.wrapped.dropFirst(), as: UTF8.self),
                    "associated_data": Self.associatedData(item.context)]
        }
        let answer = try await post("decrypt", ["batch_input": batch])
        guard let data = answer["data"] as? [String: Any], let results = data["batch_results"] as? [[String: Any]], results.count == items.count
        else { throw KeyError.kmsUnavailable("OpenBao's decrypt answer has no batch results") }
        return try results.map { result in
            guard let plaintext = result["plaintext"] as? String, let bytes = Data(base64Encoded: plaintext), bytes.count == 32 else {
                throw KeyError.kmsRefused("OpenBao did not open a workspace key (wrong key, or tampered data)")
            }
            return SymmetricKey(data: bytes)
        }
    }

    /// A new version of the transit key (`POST /v1/{mount}/keys/{key}/rotate`): encryptions use
    /// it from now on, older versions still decrypt until OpenBao's `min_decryption_version` is
    /// raised (an operator's decision, once `domicile keys rotate-root` has finished).
    public func beginRotation() async throws {
        _ = try await post("keys", [:], path: "\(base)/keys/\(keyName)/rotate")
    }

    public func finishRotation() async throws {}

    static func associatedData(_ context: String) -> String {
        Data(("domicile.root-wrap.v1\u{0}" + context).utf8).base64EncodedString()
    }

    /// One transit call. Never logs or returns a value: errors name OpenBao's status only.
    private func post(_ operation: String, _ body: [String: Any], path: String? = nil) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: path ?? "\(base)/\(operation)/\(keyName)")
        request.method = .POST
        request.headers.add(name: "X-Vault-Token", value: token)
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        let response: HTTPClientResponse
        let bytes: ByteBuffer
        do {
            response = try await client.execute(request, timeout: timeout)
            bytes = try await response.body.collect(upTo: 4 * 1024 * 1024)
        } catch {
            throw KeyError.kmsUnavailable("OpenBao cannot be reached")
        }
        switch response.status.code {
        case 204:
            return [:]
        case 200..<300:
            guard let object = try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any] else {
                throw KeyError.kmsUnavailable("OpenBao answered something that is not JSON")
            }
            return object
        case 400..<500 where response.status.code != 429:
            throw KeyError.kmsRefused("OpenBao refused the \(operation) (HTTP \(response.status.code))")
        default:
            throw KeyError.kmsUnavailable("OpenBao answered HTTP \(response.status.code)")
        }
    }
}
