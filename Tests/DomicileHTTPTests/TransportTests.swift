import AsyncHTTPClient
import Crypto
import DomicileCore
import DomicileHTTP
import DomicileSQLite
import DomicileTestSupport
import DomicileVault
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOSSL
import Testing

/// TLS on the listener and mutual TLS on the main data center's routes, over real sockets with
/// certificates made here.
@Suite("Transport security", .serialized)
struct TransportTests {
    let folder: URL
    let authority: TestCertificateAuthority
    let vault: Vault
    let dataKey: DataAPIKey

    init() async throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-tls-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        authority = try TestCertificateAuthority(name: "Domicile test CA")
        let store = try SQLiteVaultStore(path: folder.appendingPathComponent("domicile.sqlite").path)
        vault = Vault(store: store, root: LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)), region: "local", cacheLifetime: .zero)
        dataKey = try await vault.createWorkspace(WorkspaceID(trusted: "acme"))
        _ = try await vault.createWorkspace(WorkspaceID(trusted: "other"))
    }

    func identity(_ name: String = "server", authority: TestCertificateAuthority? = nil) throws -> ServerIdentity {
        let (certificate, key) = try (authority ?? self.authority).issue(commonName: "localhost", server: true)
        return try ServerIdentity(certificatePath: TestCertificateAuthority.write(certificate, "\(name).pem", in: folder),
                                  keyPath: TestCertificateAuthority.write(key, "\(name).key", in: folder))
    }

    /// Runs the API over TLS on a free port for the length of `body`.
    func withServer(_ transport: TransportSecurity, _ body: @Sendable (Int) async throws -> Void) async throws {
        let (ports, continuation) = AsyncStream.makeStream(of: Int.self)
        let app = try DomicileAPI.application(vault: vault, host: "127.0.0.1", port: 0, logger: Logger(label: "test"),
                                              transport: transport) { port in continuation.yield(port) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body(port)
            group.cancelAll()
        }
    }

    static func client(trusting authorities: [TestCertificateAuthority], certificate: (certificate: String, key: String)? = nil,
                       maximumVersion: TLSVersion? = nil) throws -> HTTPClient {
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .certificates(try authorities.map { try NIOSSLCertificate(bytes: Array($0.pem.utf8), format: .pem) })
        if let certificate {
            tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificate.certificate.utf8)).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(certificate.key.utf8), format: .pem))
        }
        if let maximumVersion {
            tls.minimumTLSVersion = .tlsv1
            tls.maximumTLSVersion = maximumVersion
        }
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    /// A refused handshake makes the client retry the connection until the deadline: tests that
    /// expect one give a short deadline.
    static func get(_ client: HTTPClient, _ url: String, headers: [(String, String)] = [], timeout: TimeAmount = .seconds(10)) async throws
        -> (status: UInt, body: String)
    {
        var request = HTTPClientRequest(url: url)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        let response = try await client.execute(request, timeout: timeout)
        return (response.status.code, String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    @Test func aTLSClientIsServedAndTLS1_0And1_1AreRefused() async throws {
        try await withServer(try TransportSecurity(identity: identity())) { port in
            for version in [TLSVersion?.none, .tlsv12] {
                let client = try Self.client(trusting: [authority], maximumVersion: version)
                let answer = try await Self.get(client, "https://localhost:\(port)/health/live")
                #expect(answer.status == 200)
                try await client.shutdown()
            }
            for version in [TLSVersion.tlsv1, .tlsv11] {
                let old = try Self.client(trusting: [authority], maximumVersion: version)
                await #expect(throws: (any Error).self, "TLS \(version) was accepted") {
                    _ = try await Self.get(old, "https://localhost:\(port)/health/live", timeout: .seconds(1))
                }
                try await old.shutdown()
            }
            // Plain HTTP on the TLS port is not answered as HTTP.
            let plain = HTTPClient(eventLoopGroupProvider: .singleton)
            await #expect(throws: (any Error).self) { _ = try await Self.get(plain, "http://127.0.0.1:\(port)/health/live", timeout: .seconds(1)) }
            try await plain.shutdown()
        }
    }

    @Test func aReloadedCertificateServesNewHandshakesAndKeepsOpenConnections() async throws {
        let identity = try identity("reloading")
        let renewedAuthority = try TestCertificateAuthority(name: "Renewed CA")
        try await withServer(try TransportSecurity(identity: identity)) { port in
            let url = "https://localhost:\(port)/health/live"
            let before = try Self.client(trusting: [authority])
            #expect(try await Self.get(before, url).status == 200)
            // The renewed certificate, from another CA, written over the same files.
            let (certificate, key) = try renewedAuthority.issue(commonName: "localhost", server: true)
            _ = try TestCertificateAuthority.write(certificate, "reloading.pem", in: folder)
            _ = try TestCertificateAuthority.write(key, "reloading.key", in: folder)
            let renewed = try Self.client(trusting: [renewedAuthority])
            await #expect(throws: (any Error).self, "the new certificate was served before the reload") { _ = try await Self.get(renewed, url, timeout: .seconds(1)) }
            try identity.reload()
            #expect(try await Self.get(renewed, url).status == 200)
            // The connection opened before the reload is still up, on the old certificate.
            #expect(try await Self.get(before, url).status == 200)
            let fresh = try Self.client(trusting: [authority])
            await #expect(throws: (any Error).self, "the old certificate was served after the reload") { _ = try await Self.get(fresh, url, timeout: .seconds(1)) }
            for client in [before, renewed, fresh] { try await client.shutdown() }
        }
        // A key that does not match its certificate is refused, and the pair in use stays.
        let (_, strayKey) = try authority.issue(commonName: "localhost", server: true)
        _ = try TestCertificateAuthority.write(strayKey, "reloading.key", in: folder)
        #expect(throws: ServerIdentity.Unreadable.self) { try identity.reload() }
    }

    @Test func theMainDataCentersRoutesRequireAClientCertificateBoundToTheWorkspace() async throws {
        let mainDataCenterCA = try TestCertificateAuthority(name: "Main data center CA")
        let strangerCA = try TestCertificateAuthority(name: "Stranger CA")
        let caPath = try TestCertificateAuthority.write(try mainDataCenterCA.pem, "client-ca.pem", in: folder)
        let (keyID, secret) = try await vault.issueSendKey(WorkspaceID(trusted: "acme"))
        let path = "/v1/workspaces/acme/messages/m-1"
        @Sendable func signed() -> [(String, String)] {
            let timestamp = String(Int(Date().timeIntervalSince1970))
            return [("X-Domicile-Key", keyID), ("X-Domicile-Timestamp", timestamp),
                    ("X-Domicile-Signature", "v1=" + Vault.sendSignature(secret: secret, timestamp: timestamp, method: "GET", path: path, body: []))]
        }
        try await withServer(try TransportSecurity(identity: identity(), clientCAPath: caPath)) { port in
            let url = "https://localhost:\(port)\(path)"
            let anonymous = try Self.client(trusting: [authority])
            let none = try await Self.get(anonymous, url, headers: signed())
            #expect(none.status == 401 && none.body.contains("client certificate"))
            // The brand's data API does not need one.
            let schema = try await Self.get(anonymous, "https://localhost:\(port)/v1/workspaces/acme/schema",
                                            headers: [("Authorization", "Basic " + Data("acme:\(dataKey.secret)".utf8).base64EncodedString())])
            #expect(schema.status == 200)

            let stranger = try Self.client(trusting: [authority], certificate: try strangerCA.issue(commonName: "acme", server: false))
            await #expect(throws: (any Error).self, "a certificate of another CA was accepted") { _ = try await Self.get(stranger, url, headers: signed()) }

            let otherWorkspace = try Self.client(trusting: [authority], certificate: try mainDataCenterCA.issue(commonName: "other", server: false))
            let misbound = try await Self.get(otherWorkspace, url, headers: signed())
            #expect(misbound.status == 401 && misbound.body.contains("not bound to this workspace"))

            for certificate in [try mainDataCenterCA.issue(commonName: "acme", server: false),
                                try mainDataCenterCA.issue(commonName: "main-dc", server: false, uri: "urn:domicile:workspace:acme")] {
                let bound = try Self.client(trusting: [authority], certificate: certificate)
                let answer = try await Self.get(bound, url, headers: signed())
                #expect(answer.status == 404, "\(answer.body)")  // past both checks: no such message
                let unsigned = try await Self.get(bound, url)
                #expect(unsigned.status == 401, "the certificate replaced the signature")
                try await bound.shutdown()
            }
            for client in [anonymous, stranger, otherWorkspace] { try await client.shutdown() }
        }
    }
}
