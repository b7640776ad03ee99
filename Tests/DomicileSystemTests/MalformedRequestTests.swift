import Foundation
import Testing

@Suite("Malformed requests and server errors", .serialized)
struct MalformedRequestTests {
    static func chunked(_ body: String, key: String) -> [UInt8] {
        let auth = Data("acme:\(key)".utf8).base64EncodedString()
        return Array(("POST /v1/customer/acme HTTP/1.1\r\nHost: localhost\r\nAuthorization: Basic \(auth)\r\n"
            + "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" + body).utf8)
    }

    @Test(arguments: [
        "5\r\nhello\r\nZZ\r\n",             // a chunk size that is not hexadecimal
        "3\r\n{\"abcdef\r\n0\r\n\r\n",      // a chunk longer than its size
    ])
    func aBodyThatBreaksChunkedFramingIs400AndClosesTheConnection(body: String) async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let server = try await ServerProcess(dataDir: dataDir)
        defer { server.stop() }
        let answer = try rawExchange(port: server.port, Self.chunked(body, key: key))
        #expect(answer.hasPrefix("HTTP/1.1 400 "), "\(answer)")
        #expect(answer.lowercased().contains("connection: close"))
        // The server answered once, then closed: no second answer on the same connection.
        #expect(answer.components(separatedBy: "HTTP/1.1 ").count == 2, "\(answer)")
        try await Task.sleep(for: .milliseconds(100))
        #expect(server.log.contains("http.status=400") && !server.log.contains("http.status=500"), "\(server.log)")
    }

    @Test func everyServerErrorIsLoggedWithItsRequestID() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let server = try await ServerProcess(dataDir: dataDir)
        defer { server.stop() }
        let (stored, _) = try await server.request("POST", "/v1/customer/acme", auth: ("acme", key),
                                                   json: #"{"customer_id":"c-1","attributes":{"email":"broken@example.com"}}"#)
        #expect(stored == 200)
        // Whoever writes the database damages the customer's wrapped data key: reading it is now a server error.
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
        // The server writes too (shared counters, four times a second): wait for the lock rather than fail.
        sqlite.arguments = ["-cmd", ".timeout 5000", (dataDir as NSString).appendingPathComponent("domicile.sqlite"),
                            "UPDATE customers SET data_key = zeroblob(length(data_key)) WHERE customer_id = 'c-1';"]
        try sqlite.run()
        sqlite.waitUntilExit()
        #expect(sqlite.terminationStatus == 0)

        let answer = try rawExchange(port: server.port, Array(("GET /v1/workspaces/acme/customers/c-1?reveal=false HTTP/1.1\r\nHost: localhost\r\n"
            + "Authorization: Basic \(Data("acme:\(key)".utf8).base64EncodedString())\r\nConnection: close\r\n\r\n").utf8))
        #expect(answer.hasPrefix("HTTP/1.1 500 "), "\(answer)")
        let requestID = try #require(answer.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-request-id:") }?
            .split(separator: ":", maxSplits: 1).last?.trimmingCharacters(in: .whitespaces))
        try await Task.sleep(for: .milliseconds(200))
        let errorLine = server.log.split(separator: "\n").first { $0.contains(" error ") && $0.contains(requestID) }
        #expect(errorLine?.contains("request failed") == true, "\(server.log)")
        #expect(!server.log.contains("broken@example.com"))
    }
}
