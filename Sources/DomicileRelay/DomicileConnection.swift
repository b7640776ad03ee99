import AsyncHTTPClient
import DomicileCore
import DomicileVault
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOSSL

/// The relay's signed calls to Domicile's relay routes.
struct DomicileConnection: Sendable {
    let configuration: RelayConfiguration
    let client: HTTPClient

    init(_ configuration: RelayConfiguration) throws {
        self.configuration = configuration
        var tls = TLSConfiguration.makeClientConfiguration()
        if let ca = configuration.domicileCA { tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(ca)) }
        if let certificate = configuration.clientCertificate, let key = configuration.clientKey {
            tls.certificateChain = try NIOSSLCertificate.fromPEMFile(certificate).map { .certificate($0) }
            tls.privateKey = .privateKey(try NIOSSLPrivateKey(file: key, format: .pem))
        }
        client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
    }

    struct Refused: Error, CustomStringConvertible {
        let status: UInt
        let body: String
        var description: String { "Domicile answered \(status): \(body)" }
    }

    /// POSTs `body` to `/v1/relay/{ws}/{route}`, signed with the relay key; the answer's JSON.
    func post(_ route: String, _ body: JSONValue) async throws -> JSONValue {
        var writer = JSONWriter()
        writer.value(body)
        let bytes = writer.bytes
        let path = "/v1/relay/\(configuration.workspace.rawValue)/\(route)"
        let timestamp = String(Int(Date().timeIntervalSince1970))
        var request = HTTPClientRequest(url: configuration.domicileURL + path)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "X-Domicile-Key", value: configuration.relayKeyID)
        request.headers.add(name: "X-Domicile-Timestamp", value: timestamp)
        request.headers.add(name: "X-Domicile-Signature", value: "v1=" + Vault.sendSignature(
            secret: configuration.relayKeySecret, timestamp: timestamp, method: "POST", path: path, body: bytes))
        request.body = .bytes(ByteBuffer(bytes: bytes))
        let response = try await client.execute(request, timeout: .seconds(30))
        let answer = try await response.body.collect(upTo: 64 * 1024 * 1024)
        guard response.status.code == 200 else { throw Refused(status: response.status.code, body: String(buffer: answer)) }
        return try JSONParser.parse(answer.readableBytesView)
    }

    func shutdown() async throws { try await client.shutdown() }
}
