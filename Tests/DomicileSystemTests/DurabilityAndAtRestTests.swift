import Foundation
import Testing

@Suite("The real server", .serialized)
struct SystemTests {
    @Test func anAnswered200SurvivesSIGKILLAndRestart() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let server = try await ServerProcess(dataDir: dataDir)
        let elements = (0..<50).map { i in
            #"{"type":"customer","customer_id":"durable-\#(i)","attributes":{"email":"durable\#(i)@example.com","first_name":"Dora"}}"#
        }
        let (status, _) = try await server.request("POST", "/v1/transition/acme", auth: ("acme", key),
                                                   json: #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#)
        let (single, _) = try await server.request("POST", "/v1/customer/acme", auth: ("acme", key),
                                                   json: #"{"customer_id":"last-one","attributes":{"email":"last@example.com"}}"#)
        // Killed the instant the answers arrived: no shutdown, no checkpoint, no flush.
        server.kill()
        #expect(status == 200 && single == 200)

        let restarted = try await ServerProcess(dataDir: dataDir)
        defer { restarted.stop() }
        for id in ["durable-0", "durable-49", "last-one"] {
            let (found, body) = try await restarted.request("GET", "/v1/workspaces/acme/customers/\(id)", auth: ("acme", key))
            #expect(found == 200, "customer \(id) lost after SIGKILL: \(String(decoding: body, as: UTF8.self))")
        }
        let (lookup, body) = try await restarted.request("GET", "/v1/workspaces/acme/customers?email=durable49%40example.com", auth: ("acme", key))
        #expect(lookup == 200)
        #expect(String(decoding: body, as: UTF8.self).contains("\"durable-49\""))
    }

    @Test func noPIIValueIsInTheDatabaseFilesOrTheLog() async throws {
        let dataDir = temporaryDataDir()
        let key = try ServerProcess.createWorkspace("acme", dataDir: dataDir)
        let server = try await ServerProcess(dataDir: dataDir)
        defer { server.stop() }
        let token = UUID().uuidString.prefix(8).lowercased()
        let markers = [
            "mk\(token)@marker-example.com", "Zq\(token)first", "Zq\(token)last", "+97150\(String(token.filter(\.isNumber).prefix(3)).padding(toLength: 3, withPad: "7", startingAt: 0))4321",
            "\(token) Marker Street 12", "loyal-\(token)",
        ]
        let attributes = #"{"email":"\#(markers[0])","first_name":"\#(markers[1])","last_name":"\#(markers[2])","mobile":"\#(markers[3])","address_line":"\#(markers[4])","loyalty":"\#(markers[5])"}"#
        let (status, _) = try await server.request("POST", "/v1/transition/acme", auth: ("acme", key),
                                                   json: #"{"type":"transition","elements":[{"type":"customer","customer_id":"c-\#(token)","attributes":\#(attributes)}]}"#)
        #expect(status == 200)
        // Lookups carry PII in the query string; they must not reach the log either.
        let (lookup, _) = try await server.request("GET", "/v1/workspaces/acme/customers?email=\(markers[0].replacingOccurrences(of: "@", with: "%40"))",
                                                   auth: ("acme", key))
        #expect(lookup == 200)
        let (read, body) = try await server.request("GET", "/v1/workspaces/acme/customers/c-\(token)", auth: ("acme", key))
        #expect(read == 200)
        let answer = String(decoding: body, as: UTF8.self)

        var files: [String: Data] = [:]
        for name in try FileManager.default.contentsOfDirectory(atPath: dataDir) {
            files[name] = FileManager.default.contents(atPath: (dataDir as NSString).appendingPathComponent(name))
        }
        #expect(files.keys.contains("domicile.sqlite") && files.keys.contains("domicile.sqlite-wal"))
        #expect((files["domicile.sqlite-wal"]?.count ?? 0) > 0, "the WAL should hold the uncheckpointed write")
        for marker in markers {
            for (name, data) in files {
                #expect(data.range(of: Data(marker.utf8)) == nil, "\(marker) in \(name)")
                #expect(data.range(of: Data(marker.lowercased().utf8)) == nil, "\(marker) lower-cased in \(name)")
            }
            #expect(!server.log.contains(marker) && !server.log.lowercased().contains(marker.lowercased()), "\(marker) in the log")
            #expect(!answer.contains(marker), "\(marker) in a masked answer")
        }
        #expect(!server.log.contains(key), "the data API key reached the log")
    }
}
