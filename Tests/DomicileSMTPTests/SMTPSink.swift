import Foundation
import NIOSSL
import Synchronization

/// A real SMTP server (aiosmtpd, through `scripts/smtp-sink.py`) on a free loopback port, for
/// one test. Without aiosmtpd the tests fail with a message that says how to install it.
final class SMTPSink {
    enum TLS { case none, startTLS, implicit }

    struct Options {
        var tls: TLS = .none
        var requireStartTLS = false
        var auth: (username: String, password: String)?
        /// Answers RCPT with this reply (the address appended, as real servers echo it).
        var rcptReply: String?
        /// Only for recipients containing this text; every recipient when nil.
        var rejectMatching: String?
        var pipelining = false
    }

    /// One accepted message, as the sink wrote it; the decoded fields come from Python's parser.
    struct Received: Decodable {
        let mail_from: String
        let mail_options: [String]
        let rcpt_tos: [String]
        let peer_port: Int?
        let helo: String?
        let tls: Bool
        let auth_login: String?
        let auth_mechanism: String?
        let resets_so_far: Int
        let raw: String
        let subject: String?
        let from: String?
        let to: String?
        let content_type: String
        let text: String?
        let html: String?
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let port: Int
    let directory: URL
    private let process: Process
    private let stdin: Pipe

    var messagesFile: URL { directory.appendingPathComponent("messages.jsonl") }
    var certificateFile: URL { directory.appendingPathComponent("tls/cert.pem") }

    static var script: URL {
        // Tests/DomicileSMTPTests/SMTPSink.swift → the package root → scripts/smtp-sink.py
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/smtp-sink.py")
    }

    init(_ options: Options = Options()) async throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-sink-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)

        var arguments = [Self.script.path, directory.appendingPathComponent("messages.jsonl").path, "--exit-on-stdin-eof"]
        switch options.tls {
        case .none: break
        case .startTLS: arguments += ["--starttls", "--cert-dir", directory.appendingPathComponent("tls").path]
        case .implicit: arguments += ["--implicit-tls", "--cert-dir", directory.appendingPathComponent("tls").path]
        }
        if options.requireStartTLS { arguments.append("--require-starttls") }
        if let auth = options.auth { arguments += ["--auth", "\(auth.username):\(auth.password)"] }
        if let rcptReply = options.rcptReply { arguments += ["--rcpt-reply", rcptReply] }
        if let rejectMatching = options.rejectMatching { arguments += ["--reject-matching", rejectMatching] }
        if options.pipelining { arguments.append("--pipelining") }

        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
        process.standardInput = stdin
        process.standardOutput = stdout
        process.standardError = stderr
        let output = Output(), errors = Output()
        for (pipe, sink) in [(stdout, output), (stderr, errors)] {
            pipe.fileHandleForReading.readabilityHandler = { handle in
                let chunk = handle.availableData
                if chunk.isEmpty { handle.readabilityHandler = nil } else { sink.append(chunk) }
            }
        }
        do {
            try process.run()
        } catch {
            throw Failure(description: "cannot start python3 for the SMTP sink: \(error)")
        }
        self.process = process
        self.stdin = stdin

        var port: Int?
        for _ in 0..<1200 {  // up to a minute: twenty sinks starting at once on two cores are slow
            if let line = output.text.split(separator: "\n").first,
               let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] {
                port = object["port"] as? Int
                break
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let port else {
            if !process.isRunning, process.terminationStatus == 3 {
                throw Failure(description: "aiosmtpd is missing, so the SMTP tests cannot run: run scripts/install-deps "
                    + "(python3 -m pip install aiosmtpd). \(errors.text)")
            }
            process.terminate()
            throw Failure(description: "the SMTP sink did not start: \(errors.text)")
        }
        self.port = port
    }

    /// Everything the sink accepted so far, in order.
    func messages() throws -> [Received] {
        guard let data = FileManager.default.contents(atPath: messagesFile.path) else { return [] }
        return try String(decoding: data, as: UTF8.self).split(separator: "\n").map {
            try JSONDecoder().decode(Received.self, from: Data($0.utf8))
        }
    }

    /// A TLS configuration that trusts the sink's self-signed certificate.
    func trustingTLSConfiguration() throws -> TLSConfiguration {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(certificateFile.path))
        return configuration
    }

    /// Stops the server without `waitUntilExit`, which would hold one of the few threads of the
    /// test runner's pool for as long as the process lives.
    func stop() {
        if process.isRunning {
            process.terminate()
            for _ in 0..<150 where process.isRunning { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
        try? stdin.fileHandleForWriting.close()
        try? FileManager.default.removeItem(at: directory)
    }

    deinit { stop() }

    private final class Output: Sendable {
        private let data = Mutex(Data())
        func append(_ chunk: Data) { data.withLock { $0.append(chunk) } }
        var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
    }
}
