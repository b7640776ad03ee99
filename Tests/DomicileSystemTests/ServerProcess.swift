import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Synchronization
import Testing

/// The real `domicile` executable, run as a child process on a loopback port.
final class ServerProcess: Sendable {
    static var binary: String {
        if let path = ProcessInfo.processInfo.environment["DOMICILE_BIN"] { return path }
        // Tests/DomicileSystemTests/ServerProcess.swift → package root → .build/debug/domicile
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/debug/domicile").path
    }

    let process: Process
    let port: Int
    private let output: OutputBuffer

    final class OutputBuffer: Sendable {
        let data = Mutex(Data())
        func append(_ chunk: Data) { data.withLock { $0.append(chunk) } }
        var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
    }

    /// Runs a CLI command to completion and returns what it printed.
    /// - Parameter launcher: a command line the executable's is appended to (`nsenter …`), if any.
    @discardableResult
    static func command(_ arguments: [String], launcher: [String] = []) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher.first ?? binary)
        process.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [binary] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw ProcessFailure(message: "domicile \(arguments.joined(separator: " ")) exited \(process.terminationStatus): \(text)")
        }
        return text
    }

    struct ProcessFailure: Error, CustomStringConvertible { let message: String; var description: String { message } }

    /// Creates a workspace and returns its data API key.
    static func createWorkspace(_ id: String, dataDir: String, rateLimit: Int = 100_000, launcher: [String] = []) throws -> String {
        let text = try command(["workspace", "create", id, "--data-dir", dataDir, "--rate-limit", "\(rateLimit)"], launcher: launcher)
        guard let range = text.range(of: #"dk_[0-9a-f]{16}_[A-Za-z0-9_-]+"#, options: .regularExpression) else {
            throw ProcessFailure(message: "no key in: \(text)")
        }
        return String(text[range])
    }

    /// - Parameter launcher: a command line the server's is appended to; it must exec the server
    ///   (`nsenter` does), so that `kill()` and `stop()` reach the server itself.
    convenience init(dataDir: String, arguments extra: [String] = [], launcher: [String] = []) async throws {
        try await self.init(command: ["serve", "--data-dir", dataDir, "--port", "0", "--log-level", "info"] + extra, launcher: launcher)
    }

    /// Any command of the executable that prints `listening on http://127.0.0.1:PORT` once it
    /// listens (`serve`, `relay`).
    init(command arguments: [String], launcher: [String] = []) async throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: launcher.first ?? Self.binary)
        process.arguments = launcher.isEmpty ? arguments : Array(launcher.dropFirst()) + [Self.binary] + arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        let output = OutputBuffer()
        pipe.fileHandleForReading.readabilityHandler = { handle in
            output.append(handle.availableData)
        }
        try process.run()
        self.process = process
        self.output = output
        var port: Int?
        for _ in 0..<200 {
            let text = output.text
            if let range = text.range(of: #"listening on https?://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) {
                port = Int(text[range].split(separator: ":").last!)
                break
            }
            if !process.isRunning { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        guard let port else {
            process.terminate()
            throw ProcessFailure(message: "server did not start: \(output.text)")
        }
        self.port = port
    }

    /// Everything the server printed so far (stdout and stderr).
    var log: String { output.text }

    func kill() {
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    func stop() {
        if process.isRunning {
            process.terminate()
            process.waitUntilExit()
        }
    }

    func request(_ method: String, _ path: String, auth: (String, String)? = nil, json: String? = nil) async throws -> (Int, Data) {
        var request = URLRequest(url: URL(string: "http://127.0.0.1:\(port)\(path)")!)
        request.httpMethod = method
        if let (user, password) = auth {
            request.setValue("Basic " + Data("\(user):\(password)".utf8).base64EncodedString(), forHTTPHeaderField: "Authorization")
        }
        if let json {
            request.httpBody = Data(json.utf8)
            request.setValue("application/json", forHTTPHeaderField: "Content-Type")
        }
        let (data, response) = try await URLSession.shared.data(for: request)
        return ((response as? HTTPURLResponse)?.statusCode ?? 0, data)
    }
}

func temporaryDataDir() -> String {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-system-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder.path
}
