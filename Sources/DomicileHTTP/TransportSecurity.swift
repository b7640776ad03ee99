import DomicileCore
import Foundation
import NIOCore
import NIOSSL
import Synchronization
import X509

/// The listener's certificate chain and private key, read from PEM files, and read again on
/// `reload()` (SIGHUP): each new handshake takes the current pair, connections already open
/// keep theirs, so a renewed certificate takes effect without dropping anyone.
public final class ServerIdentity: Sendable {
    public let certificatePath: String
    public let keyPath: String
    private let current: Mutex<NIOSSLContextConfigurationOverride>
    let initial: (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey)

    public struct Unreadable: Error, CustomStringConvertible {
        public let description: String
    }

    public init(certificatePath: String, keyPath: String) throws {
        self.certificatePath = certificatePath
        self.keyPath = keyPath
        initial = try Self.read(certificatePath: certificatePath, keyPath: keyPath)
        current = Mutex(Self.override(initial))
    }

    /// Reads both files again. On any error the pair in use stays, and the error says which file is wrong.
    public func reload() throws {
        let pair = try Self.read(certificatePath: certificatePath, keyPath: keyPath)
        current.withLock { $0 = Self.override(pair) }
    }

    var override: NIOSSLContextConfigurationOverride { current.withLock { $0 } }

    static func override(_ pair: (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey)) -> NIOSSLContextConfigurationOverride {
        var override = NIOSSLContextConfigurationOverride()
        override.certificateChain = pair.chain.map { .certificate($0) }
        override.privateKey = .privateKey(pair.key)
        return override
    }

    static func read(certificatePath: String, keyPath: String) throws -> (chain: [NIOSSLCertificate], key: NIOSSLPrivateKey) {
        let chain: [NIOSSLCertificate]
        do { chain = try NIOSSLCertificate.fromPEMFile(certificatePath) } catch {
            throw Unreadable(description: "\(certificatePath): not a readable PEM certificate chain")
        }
        guard !chain.isEmpty else { throw Unreadable(description: "\(certificatePath): no certificate in it") }
        let key: NIOSSLPrivateKey
        do { key = try NIOSSLPrivateKey(file: keyPath, format: .pem) } catch {
            throw Unreadable(description: "\(keyPath): not a readable PEM private key")
        }
        // A key that does not match the certificate would fail every handshake: refuse it here.
        guard let leaf = try? Certificate(derEncoded: try chain[0].toDERBytes()),
              let privateKey = try? Certificate.PrivateKey(pemEncoded: String(decoding: try Data(contentsOf: URL(fileURLWithPath: keyPath)), as: UTF8.self)),
              leaf.publicKey == privateKey.publicKey
        else { throw Unreadable(description: "\(keyPath): the key does not belong to the first certificate of \(certificatePath)") }
        return (chain, key)
    }
}

/// TLS on the listener, and optionally the client certificates the main data center presents.
public struct TransportSecurity: Sendable {
    public let identity: ServerIdentity
    /// The CAs that issue the main data center's client certificates; nil when mutual TLS is off.
    public let clientCertificateAuthorities: [NIOSSLCertificate]?

    public init(identity: ServerIdentity, clientCAPath: String? = nil) throws {
        self.identity = identity
        if let clientCAPath {
            do { clientCertificateAuthorities = try NIOSSLCertificate.fromPEMFile(clientCAPath) } catch {
                throw ServerIdentity.Unreadable(description: "\(clientCAPath): not a readable PEM certificate")
            }
        } else {
            clientCertificateAuthorities = nil
        }
    }

    /// Forward-secret AEAD suites for TLS 1.2; TLS 1.3's suites are all of that kind already.
    static let cipherSuites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    public var tlsConfiguration: TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: identity.initial.chain.map { .certificate($0) }, privateKey: .privateKey(identity.initial.key))
        configuration.minimumTLSVersion = .tlsv12
        configuration.cipherSuiteValues = Self.cipherSuites
        if let clientCertificateAuthorities {
            // Asked of every client, required by the routes of the main data center: a brand's
            // backend without one still reaches the data API. One that is presented must chain
            // to these CAs, or the handshake fails.
            configuration.certificateVerification = .optionalVerification
            configuration.trustRoots = .certificates(clientCertificateAuthorities)
        }
        let identity = self.identity
        configuration.sslContextCallback = { _, promise in promise.succeed(identity.override) }
        return configuration
    }
}

/// Which workspace a client certificate speaks for: its subject's common name, or a URI subject
/// alternative name `urn:domicile:workspace:<id>`.
enum ClientCertificateBinding {
    static let uriPrefix = "urn:domicile:workspace:"

    static func workspaces(of certificate: NIOSSLCertificate) -> Set<String> {
        guard let parsed = try? Certificate(derEncoded: try certificate.toDERBytes()) else { return [] }
        var names: Set<String> = []
        for rdn in parsed.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.commonName {
                if let name = String(attribute.value) { names.insert(name) }
            }
        }
        if let alternatives = try? parsed.extensions.subjectAlternativeNames {
            for case .uniformResourceIdentifier(let uri) in alternatives where uri.hasPrefix(uriPrefix) {
                names.insert(String(uri.dropFirst(uriPrefix.count)))
            }
        }
        return names
    }
}
