import DomicileTestSupport
import Foundation
import Testing

/// `serve` as an operator runs it: TLS with a certificate renewed by SIGHUP, JSON logs, and no
/// plain HTTP off loopback unless asked for.
@Suite("Serving over TLS")
struct ServeTransportTests {
    /// The certificate the server presents on a new connection, as Python's ssl module reads it.
    static func servedCertificate(port: Int) throws -> String {
        let script = "import ssl; print(ssl.get_server_certificate(('127.0.0.1', \(port))))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Self.body(String(decoding: data, as: UTF8.self))
    }

    /// The base64 of a PEM block, without its lines and markers.
    static func body(_ pem: String) -> String {
        pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined().trimmingCharacters(in: .whitespaces)
    }

    @Test func sighupServesTheRenewedCertificateAndLogsAreJSON() async throws {
        let dataDir = temporaryDataDir()
        let folder = URL(fileURLWithPath: dataDir)
        _ = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let first = try TestCertificateAuthority(name: "First CA").issue(commonName: "localhost", server: true)
        let certificate = try TestCertificateAuthority.write(first.certificate, "tls.pem", in: folder)
        let key = try TestCertificateAuthority.write(first.key, "tls.key", in: folder)
        let server = try await ServerProcess(dataDir: dataDir, arguments: ["--tls-certificate", certificate, "--tls-key", key, "--log-format", "json"])
        defer { server.stop() }
        #expect(server.log.contains("Transport: TLS 1.2+"))
        #expect(try Self.servedCertificate(port: server.port) == Self.body(first.certificate))

        let renewed = try TestCertificateAuthority(name: "Second CA").issue(commonName: "localhost", server: true)
        _ = try TestCertificateAuthority.write(renewed.certificate, "tls.pem", in: folder)
        _ = try TestCertificateAuthority.write(renewed.key, "tls.key", in: folder)
        kill(server.process.processIdentifier, SIGHUP)
        for _ in 0..<100 where !server.log.contains("TLS certificate reloaded") { try await Task.sleep(for: .milliseconds(50)) }
        #expect(server.process.isRunning)
        #expect(try Self.servedCertificate(port: server.port) == Self.body(renewed.certificate))

        // Every log line is one JSON object with a level and a message.
        let lines = server.log.split(separator: "\n").filter { $0.hasPrefix("{") }
        #expect(lines.contains { $0.contains("TLS certificate reloaded") })
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] is String && object?["message"] is String, "\(line)")
        }
    }

    @Test func plainHTTPOffLoopbackIsRefusedUnlessAskedFor() throws {
        let dataDir = temporaryDataDir()
        let error = #expect(throws: ServerProcess.ProcessFailure.self) {
            try ServerProcess.command(["serve", "--data-dir", dataDir, "--host", "0.0.0.0", "--port", "0"])
        }
        #expect(error?.message.contains("refusing plain HTTP on 0.0.0.0") == true)
    }
}
