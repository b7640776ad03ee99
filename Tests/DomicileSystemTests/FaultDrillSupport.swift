import DomicileVault
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Hummingbird
import NIOCore
import Synchronization
import Testing

/// An answer of the real server, as the drills check it.
struct DrillAnswer: Sendable {
    let status: Int
    let retryAfter: String?
    let body: Data

    var text: String { String(decoding: body, as: UTF8.self) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try JSONDecoder().decode(type, from: body) }
}

/// The shapes the drills read.
enum Drill {
    struct IngestAnswer: Decodable {
        struct Refusal: Decodable { var index: Int? }
        var status: String
        var errors: [Refusal]?
    }

    struct SendAnswer: Decodable {
        struct Result: Decodable {
            var messageID: String?
            var accepted: Bool
            enum CodingKeys: String, CodingKey { case messageID = "message_id", accepted }
        }
        var results: [Result]
    }

    struct MessageStatus: Decodable {
        struct Step: Decodable {
            var status: String
            var errorCode: String?
            enum CodingKeys: String, CodingKey { case status, errorCode = "error_code" }
        }
        var status: String
        var attempts: Int
        var history: [Step]
    }

    struct Failure: Decodable {
        struct Detail: Decodable {
            var type: String
            var message: String
            var requestID: String?
            enum CodingKeys: String, CodingKey { case type, message, requestID = "request_id" }
        }
        var status: String
        var error: Detail
    }

    struct CustomerList: Decodable {
        struct Customer: Decodable {
            var customerID: String
            enum CodingKeys: String, CodingKey { case customerID = "customer_id" }
        }
        var customers: [Customer]
    }

    /// The drills' client: up to 32 connections to the server (URLSession's default of 6 per host
    /// would queue the concurrent clients inside the test process instead of in the server).
    static let session: URLSession = {
        let configuration = URLSessionConfiguration.ephemeral
        configuration.httpMaximumConnectionsPerHost = 32
        configuration.timeoutIntervalForRequest = 60
        return URLSession(configuration: configuration)
    }()

    /// `transform` of every item, at most `width` at a time, in the items' order.
    static func concurrentMap<T: Sendable, R: Sendable>(_ items: [T], width: Int = 16,
                                                         _ transform: @escaping @Sendable (T) async throws -> R) async throws -> [R] {
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var next = items.enumerated().makeIterator()
            var results = [R?](repeating: nil, count: items.count)
            for _ in 0..<width {
                guard let (index, item) = next.next() else { break }
                group.addTask { (index, try await transform(item)) }
            }
            while let (index, result) = try await group.next() {
                results[index] = result
                if let (index, item) = next.next() { group.addTask { (index, try await transform(item)) } }
            }
            return results.map { $0! }
        }
    }

    /// Issues a send key for the workspace; returns its id and secret.
    static func sendKey(_ workspace: String, dataDir: String, options: [String] = []) throws -> (id: String, secret: String) {
        let text = try ServerProcess.command(["workspace", "send-key", "create", workspace, "--data-dir", dataDir] + options)
        let id = try #require(text.firstMatch(of: /Send key (sk_[A-Za-z0-9_-]+)/)?.1)
        let secret = try #require(text.firstMatch(of: /\(shown once\): ([A-Za-z0-9_-]+)/)?.1)
        return (String(id), String(secret))
    }

    /// Runs a program to completion; its exit status and what it printed.
    @discardableResult
    static func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }
}

extension ServerProcess {
    func exchange(_ method: String, _ path: String, headers: [String: String] = [:], body: String? = nil) async throws -> DrillAnswer {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        for (name, value) in headers { request.setValue(value, forHTTPHeaderField: name) }
        if let body {
            request.httpBody = Data(body.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await Drill.session.data(for: request)
        let http = response as? HTTPURLResponse
        return DrillAnswer(status: http?.statusCode ?? 0, retryAfter: http?.value(forHTTPHeaderField: "Retry-After"), body: data)
    }

    /// A data API request (Basic auth).
    func call(_ method: String, _ path: String, key: String, json: String? = nil) async throws -> DrillAnswer {
        try await exchange(method, path, headers: ["Authorization": "Basic " + Data("acme:\(key)".utf8).base64EncodedString()], body: json)
    }

    /// A main-data-center request, signed with the send key.
    func signed(_ method: String, _ path: String, key: (id: String, secret: String), body: String = "") async throws -> DrillAnswer {
        let timestamp = String(Int(Date().timeIntervalSince1970))
        let signature = Vault.sendSignature(secret: key.secret, timestamp: timestamp, method: method, path: path, body: Array(body.utf8))
        return try await exchange(method, path, headers: ["X-Domicile-Key": key.id, "X-Domicile-Timestamp": timestamp,
                                                          "X-Domicile-Signature": "v1=" + signature],
                                  body: body.isEmpty ? nil : body)
    }

    /// A message's status, or nil when the vault has no such message.
    func messageStatus(_ id: String, key: (id: String, secret: String)) async throws -> Drill.MessageStatus? {
        let answer = try await signed("GET", "/v1/workspaces/acme/messages/\(id)", key: key)
        if answer.status == 404 { return nil }
        guard answer.status == 200 else { throw ProcessFailure(message: "message status answered \(answer.status): \(answer.text)") }
        return try answer.decode(Drill.MessageStatus.self)
    }
}

/// A private-SSP endpoint that counts what it is handed, by `metadata.messageId`, and can answer
/// 503 for a while.
final class RecordingSSP: Sendable {
    /// Until this instant every send is answered 503 and not counted as a delivery.
    let failingUntil = Mutex<ContinuousClock.Instant?>(nil)
    let deliveries = Mutex<[String: Int]>([:])
    let refusals = Mutex(0)
    /// How long each send takes to answer (a slow provider keeps deliveries in flight).
    let delay: Duration

    init(delay: Duration = .zero) { self.delay = delay }

    struct SMSRequest: Decodable {
        struct Metadata: Decodable { var messageId: String }
        var metadata: Metadata
    }

    var router: Router<BasicRequestContext> {
        let router = Router()
        router.post("sms") { request, _ -> Response in
            let body = try await request.body.collect(upTo: 1 << 20)
            if let until = self.failingUntil.withLock({ $0 }), ContinuousClock.now < until {
                self.refusals.withLock { $0 += 1 }
                return Response(status: .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: "{}")))
            }
            let sms = try JSONDecoder().decode(SMSRequest.self, from: Data(buffer: body))
            if self.delay > .zero { try await Task.sleep(for: self.delay) }
            self.deliveries.withLock { $0[sms.metadata.messageId, default: 0] += 1 }
            return Response(status: .ok, headers: [.contentType: "application/json"],
                            body: .init(byteBuffer: ByteBuffer(string: #"{"status":"sms_accepted"}"#)))
        }
        return router
    }

    /// Runs `body` with the double listening on loopback, its `/sms` URL configured as the
    /// workspace's SMS provider (`private_ssp`).
    func serve(workspaceIn dataDir: String, options: [String] = [], _ body: @Sendable () async throws -> Void) async throws {
        try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
            let port = try #require(client.port)
            try ServerProcess.command(["workspace", "egress", "acme", "--add", "127.0.0.1", "--data-dir", dataDir] + options)
            try ServerProcess.command(["workspace", "provider", "acme", "--channel", "sms", "--kind", "private_ssp",
                                       "--setting", "url=http://127.0.0.1:\(port)/sms", "--data-dir", dataDir] + options)
            try await body()
        }
    }
}

/// A small filesystem of the test's own (tmpfs), for a data folder that can run out of space.
///
/// As root it is mounted directly. Otherwise it is mounted in a user and mount namespace of its
/// own (`unshare -rm`), held open by a process that waits on its standard input, and every
/// process that must see it (the server, the CLI, `sqlite3`, the ballast) enters that namespace
/// through `nsenter`, which execs the command: a signal to the process reaches the command
/// itself. If neither works the drill fails, saying why: a drill that skips proves nothing.
final class SmallFilesystem: Sendable {
    let path: String
    /// Prepended to the command line of every process that must see the filesystem.
    let launcher: [String]
    private let holder: Process?
    private let holderInput: Pipe?

    init(kilobytes: Int) throws {
        path = temporaryDataDir()
        let options = "size=\(kilobytes)k,mode=0700"
        if geteuid() == 0 && ProcessInfo.processInfo.environment["DOMICILE_DRILL_USERNS"] == nil {
            let (status, output) = try Drill.run(["/bin/mount", "-t", "tmpfs", "-o", options, "tmpfs", path])
            guard status == 0 else { throw ServerProcess.ProcessFailure(message: "mount -t tmpfs failed as root: \(output)") }
            launcher = []
            holder = nil
            holderInput = nil
            return
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/unshare")
        process.arguments = ["-rm", "sh", "-c", #"mount -t tmpfs -o "$1" tmpfs "$0" && echo mounted && exec cat"#, path, options]
        let input = Pipe(), output = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = output
        do { try process.run() } catch {
            throw ServerProcess.ProcessFailure(message: "cannot run unshare (needed for a tmpfs without root): \(error)")
        }
        let line = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        guard line.hasPrefix("mounted") else {
            throw ServerProcess.ProcessFailure(message: """
                neither root nor a user namespace: `unshare -rm` could not mount a tmpfs (\(line)). \
                Run the drill as root, or allow unprivileged user namespaces.
                """)
        }
        launcher = ["/usr/bin/nsenter", "-t", "\(process.processIdentifier)", "-U", "-m", "--preserve-credentials"]
        holder = process
        holderInput = input
    }

    /// Runs a program where the filesystem is visible.
    @discardableResult
    func run(_ arguments: [String]) throws -> (status: Int32, output: String) {
        try Drill.run(launcher + arguments)
    }

    func unmount() {
        if let holder, let holderInput {
            // The namespace, and the mount with it, goes when its last process ends.
            try? holderInput.fileHandleForWriting.close()
            holder.waitUntilExit()
        } else {
            _ = try? Drill.run(["/bin/umount", path])
        }
    }
}
