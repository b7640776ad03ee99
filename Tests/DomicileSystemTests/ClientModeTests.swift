import Crypto
import DomicileClient
import DomicileCore
import DomicileVault
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// Client-held keys end to end, with the real executable: `domicile client keygen` and
/// `encrypt` on the brand's side (and the Python reference encoder), ingest, a signed send from
/// the main data center, `domicile relay` opening the envelopes and handing the messages to a
/// real SMTP server and the HTTP providers' doubles, a provider callback through the relay to the
/// main data center's events, and what Domicile holds and says all along: no value in clear.
@Suite(.serialized)
struct ClientModeTests {
    static let email = "zqmarker.alice@example.com"
    static let firstName = "Zqmarkername"
    static let mobile = "+971501234567"
    static let secondMobile = "+971559876543"
    static let markers = ["zqmarker", firstName, "971501234567", "971559876543", "Qxsecondname"]

    /// The providers' and the main data center's side: what each received.
    final class Doubles: Sendable {
        let smsBodies = Mutex<[Data]>([])
        let whatsappBodies = Mutex<[Data]>([])
        var sms: [[String: Any]] { smsBodies.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] } }
        var whatsapp: [[String: Any]] {
            whatsappBodies.withLock { $0 }.compactMap { try? JSONSerialization.jsonObject(with: $0) as? [String: Any] }
        }
        let events = Mutex<[String]>([])
        static let token = "wa-token"

        var router: Router<BasicRequestContext> {
            let router = Router()
            router.post("sms") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                self.smsBodies.withLock { $0.append(Data(buffer: body)) }
                return Response(status: .ok, headers: [.contentType: "application/json"],
                                body: .init(byteBuffer: ByteBuffer(string: #"{"status":"sms_accepted"}"#)))
            }
            router.post(":phone/messages") { request, _ -> Response in
                guard request.headers[.authorization] == "Bearer \(Self.token)" else { return Response(status: .unauthorized) }
                let body = try await request.body.collect(upTo: 1 << 20)
                self.whatsappBodies.withLock { $0.append(Data(buffer: body)) }
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(
                    string: #"{"messaging_product":"whatsapp","messages":[{"id":"wamid.\#(UUID().uuidString)"}]}"#)))
            }
            router.post("events") { request, _ -> Response in
                let body = try await request.body.collect(upTo: 1 << 20)
                self.events.withLock { $0.append(String(buffer: body)) }
                return Response(status: .ok)
            }
            return router
        }

        func smsCount(_ messageID: String) -> Int {
            sms.count { (($0["metadata"] as? [String: Any])?["messageId"] as? String) == messageID }
        }
    }

    static func waitFor(_ what: String, seconds: Double = 30, _ condition: () async throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("timed out waiting for \(what)")
        throw ServerProcess.ProcessFailure(message: "timed out waiting for \(what)")
    }

    static func shell(_ command: String) throws -> String {
        let (status, output) = try Drill.run(["/bin/sh", "-c", command])
        guard status == 0 else { throw ServerProcess.ProcessFailure(message: "\(command) exited \(status): \(output)") }
        return output
    }

    @Test func everyChannelGoesThroughTheRelayAndDomicileHoldsNoValueInClear() async throws {
        let dir = temporaryDataDir()
        let data = dir + "/data", brand = dir + "/brand"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let created = try ServerProcess.command(["workspace", "create", "acme", "--protection", "client", "--data-dir", data,
                                                 "--rate-limit", "100000"])
        let apiKey = String(try #require(created.firstMatch(of: /dk_[0-9a-f]{16}_[A-Za-z0-9_-]+/)?.0))
        try ServerProcess.command(["workspace", "attribute", "set", "acme", "plan", "--type", "text", "--pii", "false", "--data-dir", data])
        let sendKey = try Drill.sendKey("acme", dataDir: data)
        let relayText = try ServerProcess.command(["workspace", "relay-key", "create", "acme", "--data-dir", data])
        let relayKeyID = String(try #require(relayText.firstMatch(of: /Relay key (rk_[A-Za-z0-9_-]+)/)?.1))
        let relaySecret = String(try #require(relayText.firstMatch(of: /\(shown once\): ([A-Za-z0-9_-]+)/)?.1))
        // A vault-mode workspace's send key does not open the relay's routes, nor the other way round.
        #expect(!relayKeyID.hasPrefix("sk_"))
        try Data((relaySecret + "\n").utf8).write(to: URL(fileURLWithPath: dir + "/relay.secret"))

        // The brand's side: keys, and payloads encrypted before they leave.
        try ServerProcess.command(["client", "keygen", "--out", brand])
        let attributes = try FileManager.default.attributesOfItem(atPath: brand + "/brand.key")
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        try Data(#"""
            {"type":"transition","elements":[{"type":"customer","customer_id":"c-1","attributes":{
              "email":" ZQMarker.Alice@Example.com","mobile":"+971 50 123 4567","first_name":"\#(Self.firstName)","plan":"gold"}}]}
            """#.utf8).write(to: URL(fileURLWithPath: dir + "/in.json"))
        try ServerProcess.command(["client", "encrypt", "--workspace", "acme", "--key", brand + "/brand.key", "--index-key",
                                   brand + "/index.key", "--plain", "plan", "--in", dir + "/in.json", "--out", dir + "/encrypted.json"])
        // The Python reference encoder, for a second customer (values already normalised, as it requires).
        let python = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("clients/python/domicile_client.py").path
        try Data(#"""
            {"type":"transition","elements":[{"type":"customer","customer_id":"c-2","attributes":{"mobile":"\#(Self.secondMobile)","first_name":"Qxsecondname","plan":"silver"}}]}
            """#.utf8).write(to: URL(fileURLWithPath: dir + "/in2.json"))
        _ = try Self.shell("python3 \(python) encrypt --workspace acme --key \(brand)/brand.key --index-key \(brand)/index.key --plain plan < \(dir)/in2.json > \(dir)/encrypted2.json")
        let keys = try BrandKeys(encryption: [try KeyFile.read(brand + "/brand.key")], index: try KeyFile.read(brand + "/index.key"))

        let smtp = try await SMTPSinkProcess()
        defer { smtp.stop() }
        let doubles = Doubles()
        try await Application(router: doubles.router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
            let port = try #require(client.port)
            try ServerProcess.command(["workspace", "egress", "acme", "--add", "127.0.0.1", "--data-dir", data])
            try ServerProcess.command(["workspace", "events", "acme", "--url", "http://127.0.0.1:\(port)/events", "--data-dir", data])
            let providers = """
                {"email": {"kind": "smtp", "settings": {"host": "127.0.0.1", "port": "\(smtp.port)", "tls": "none", "from": "news@brand.example"}},
                 "sms": {"kind": "private_ssp", "settings": {"url": "http://127.0.0.1:\(port)/sms", "callback_secret": "ssp-secret"}},
                 "whatsapp": {"kind": "whatsapp_cloud", "settings": {"base_url": "http://127.0.0.1:\(port)", "phone_number_id": "1055",
                              "access_token": "\(Doubles.token)", "app_secret": "wa-secret"}}}
                """
            try Data(providers.utf8).write(to: URL(fileURLWithPath: dir + "/providers.json"))
            let server = try await ServerProcess(dataDir: data)
            defer { server.stop() }

            // Ingest: envelopes accepted, values in clear refused.
            for file in ["encrypted.json", "encrypted2.json"] {
                let body = try String(contentsOfFile: dir + "/" + file, encoding: .utf8)
                let answer = try await server.call("POST", "/v1/transition/acme", key: apiKey, json: body)
                #expect(answer.status == 200, "\(file): \(answer.text)")
            }
            let plain = try await server.call("POST", "/v1/transition/acme", key: apiKey, json: #"""
                {"type":"transition","elements":[{"type":"customer","customer_id":"c-3","attributes":{"email":"zqmarker.bob@example.com"}}]}
                """#)
            #expect(plain.status == 400)
            #expect(plain.text.contains("client-encrypted") && !plain.text.contains("zqmarker"))

            // Masked reads show the brand's masked forms; lookups go by the brand's digests.
            let read = try await server.call("GET", "/v1/workspaces/acme/customers/c-1", key: apiKey)
            #expect(read.text.contains(Masking.email(Self.email)) && read.text.contains("\"plan\":\"gold\""))
            let digest = Data(try keys.digest(.string(Self.email), attribute: "email")).base64EncodedString()
            let encoded = digest.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let found = try await server.call("GET", "/v1/workspaces/acme/customers?attribute=email&digest=\(encoded)", key: apiKey)
            #expect(found.status == 200 && found.text.contains("\"customer_id\":\"c-1\""), "\(found.text)")
            #expect(try await server.call("GET", "/v1/workspaces/acme/customers?email=zqmarker.alice%40example.com", key: apiKey).status == 400)

            // The main data center sends; nothing goes out until the relay takes it.
            let template = "Hello {{first_name}}, your plan is {{plan}}"
            let messages = """
                {"messages":[
                  {"message_id":"m-email","customer_id":"c-1","channel":"email","content":{"subject":"For {{first_name}}","text":"\(template)"}},
                  {"message_id":"m-sms","customer_id":"c-1","channel":"sms","content":{"text":"\(template)"}},
                  {"message_id":"m-wa","customer_id":"c-1","channel":"whatsapp","content":{"text":"\(template)"}},
                  {"message_id":"m-python","customer_id":"c-2","channel":"sms","content":{"text":"\(template)"}},
                  {"message_id":"m-none","customer_id":"c-2","channel":"email","content":{"subject":"x","text":"y"}}]}
                """
            let sent = try await server.signed("POST", "/v1/workspaces/acme/messages", key: sendKey, body: messages)
            #expect(sent.status == 202, "\(sent.text)")
            #expect(sent.text.contains("no_contact_for_channel"))

            let relayArguments = ["relay", "--domicile-url", "http://127.0.0.1:\(server.port)", "--workspace", "acme",
                                  "--relay-key-id", relayKeyID, "--relay-key-file", dir + "/relay.secret", "--key", brand + "/brand.key",
                                  "--providers", dir + "/providers.json", "--journal", dir + "/relay.sqlite", "--port", "0"]
            var relay = try await ServerProcess(command: relayArguments)
            try await Self.waitFor("the relay's hand-overs") {
                smtp.messages.count == 1 && doubles.smsCount("m-sms") == 1 && doubles.smsCount("m-python") == 1
                    && doubles.whatsapp.count == 1
            }
            let mail = try #require(smtp.messages.first)
            #expect((mail["rcpt_tos"] as? [String]) == [Self.email])
            #expect((mail["text"] as? String)?.contains("Hello \(Self.firstName), your plan is gold") == true)
            #expect((mail["subject"] as? String) == "For \(Self.firstName)")
            let sms = try #require(doubles.sms.first { (($0["metadata"] as? [String: Any])?["messageId"] as? String) == "m-sms" })
            #expect((sms["smsData"] as? [String: Any])?["toNumber"] as? String == Self.mobile)
            #expect((sms["smsData"] as? [String: Any])?["body"] as? String == "Hello \(Self.firstName), your plan is gold")
            let python = try #require(doubles.sms.first { (($0["metadata"] as? [String: Any])?["messageId"] as? String) == "m-python" })
            #expect((python["smsData"] as? [String: Any])?["toNumber"] as? String == Self.secondMobile)
            #expect((python["smsData"] as? [String: Any])?["body"] as? String == "Hello Qxsecondname, your plan is silver")
            let whatsapp = try #require(doubles.whatsapp.first)
            #expect(whatsapp["to"] as? String == String(Self.mobile.dropFirst()))
            #expect(((whatsapp["text"] as? [String: Any])?["body"] as? String) == "Hello \(Self.firstName), your plan is gold")
            for id in ["m-email", "m-sms", "m-wa", "m-python"] {
                try await Self.waitFor("\(id) sent") { try await server.messageStatus(id, key: sendKey)?.status == "sent" }
            }

            // The provider's callback reaches the relay, which passes the status on; the main data
            // center hears of it with ids only.
            let callback = #"{"messageId":"m-sms","status":"sms_delivered","statusCode":0}"#
            let signature = HMAC<SHA256>.authenticationCode(for: Array(callback.utf8), using: SymmetricKey(data: Array("ssp-secret".utf8)))
                .map { String(format: "%02x", $0) }.joined()
            // (An unsigned or badly signed callback is refused by the same routes as a node's: CallbackTests.)
            let reported = try await relay.exchange("POST", "/v1/callbacks/private_ssp/acme", headers: ["X-Signature": signature], body: callback)
            #expect(reported.status == 200, "\(reported.text)")
            try await Self.waitFor("m-sms delivered") { try await server.messageStatus("m-sms", key: sendKey)?.status == "delivered" }
            try await Self.waitFor("the delivered event") {
                doubles.events.withLock { $0.contains { $0.contains("m-sms") && $0.contains("delivered") } }
            }

            // The relay down: messages wait; back up, each is delivered once. m-dup stands for a
            // message the relay sent before it stopped without Domicile hearing of it: its journal
            // says so, and it is reported from there, not sent again.
            relay.stop()
            let later = try await server.signed("POST", "/v1/workspaces/acme/messages", key: sendKey, body:
                #"{"messages":[{"message_id":"m-later","customer_id":"c-1","channel":"sms","content":{"text":"Later, {{first_name}}"}},"#
                + #"{"message_id":"m-dup","customer_id":"c-1","channel":"sms","content":{"text":"Once"}}]}"#)
            #expect(later.status == 202)
            try await Task.sleep(for: .seconds(1))
            #expect(doubles.smsCount("m-later") == 0)
            #expect(try await server.messageStatus("m-later", key: sendKey)?.status == "queued")
            _ = try Self.shell("sqlite3 \(dir)/relay.sqlite \"INSERT INTO handovers (message_id, state, outcome, provider_message_id, reported, at) "
                               + "VALUES ('m-dup', 'done', 'sent', 'm-dup', 1, 0)\"")
            relay = try await ServerProcess(command: relayArguments)
            defer { relay.stop() }
            try await Self.waitFor("m-later delivered") { doubles.smsCount("m-later") == 1 }
            try await Self.waitFor("m-dup reported") { try await server.messageStatus("m-dup", key: sendKey)?.status == "sent" }
            try await Task.sleep(for: .seconds(1))
            #expect(doubles.smsCount("m-later") == 1 && doubles.smsCount("m-sms") == 1 && doubles.smsCount("m-dup") == 0)

            // An access export carries the envelopes; the brand's tool opens them.
            let access = try await server.call("POST", "/v1/opengdpr_requests/acme", key: apiKey, json:
                #"{"request_type":"access","identities":[{"identity_type":"email_digest","identity_value":"\#(digest)"}],"api_version":"1.0"}"#)
            #expect(access.status == 201 || access.status == 200 || access.status == 202, "\(access.text)")
            let requestID = try #require((try JSONSerialization.jsonObject(with: access.body) as? [String: Any])?["request_id"] as? String)
            let export = try await server.call("GET", "/v1/opengdpr_requests/acme/\(requestID)", key: apiKey)
            #expect(export.text.contains("domicile_envelope") && !export.text.contains("zqmarker"))
            try export.body.write(to: URL(fileURLWithPath: dir + "/export.json"))
            try ServerProcess.command(["client", "decrypt-export", "--workspace", "acme", "--key", brand + "/brand.key",
                                       "--in", dir + "/export.json", "--out", dir + "/export-clear.json"])
            let clear = try String(contentsOfFile: dir + "/export-clear.json", encoding: .utf8)
            #expect(clear.contains(Self.email) && clear.contains(Self.firstName) && clear.contains(Self.mobile))

            // Domicile holds no key that opens the brand's envelopes: its root key does not, and
            // the brand's key is nowhere in its folder.
            let envelopeJSON = try #require((try JSONSerialization.jsonObject(with: export.body) as? [String: Any]).flatMap {
                (((($0["export"] as? [String: Any])?["customers"] as? [[String: Any]])?.first?["attributes"]) as? [String: Any])?["email"]
            })
            let envelope = try ClientEnvelope.parse(try JSONParser.parse(try JSONSerialization.data(withJSONObject: envelopeJSON)), attribute: "email")
            let rootKey = try KeyFile.read(data + "/root.key")
            #expect(throws: ClientError.self) {
                try BrandKeys(encryption: [rootKey], index: nil).open(
                    ClientEnvelope(keyID: BrandKeys.keyID(of: rootKey), nonce: envelope.nonce, ciphertext: envelope.ciphertext),
                    workspace: "acme", customer: "c-1", attribute: "email")
            }
            let brandKey = try Data(contentsOf: URL(fileURLWithPath: brand + "/brand.key"))
            let brandKeyRaw = Data(base64Encoded: String(decoding: brandKey, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))!

            // Erasure by the brand's digest.
            let erase = try await server.call("POST", "/v1/opengdpr_requests/acme", key: apiKey, json:
                #"{"request_type":"erasure","identities":[{"identity_type":"mobile_digest","identity_value":"\#(Data(try keys.digest(.string(Self.secondMobile), attribute: "mobile")).base64EncodedString())"}]}"#)
            #expect(erase.status < 300, "\(erase.text)")
            try await Self.waitFor("c-2 erased") { try await server.call("GET", "/v1/workspaces/acme/customers/c-2", key: apiKey).status == 404 }

            // Nothing Domicile stored, logged or sent to the main data center holds a value.
            server.stop()
            var stored = Data()
            for file in try FileManager.default.contentsOfDirectory(atPath: data) {
                stored.append(try Data(contentsOf: URL(fileURLWithPath: data + "/" + file)))
            }
            let storedText = String(decoding: stored, as: UTF8.self)
            let events = doubles.events.withLock { $0.joined(separator: "\n") }
            for marker in Self.markers {
                #expect(!storedText.localizedCaseInsensitiveContains(marker), "\(marker) in the data folder")
                #expect(!server.log.localizedCaseInsensitiveContains(marker), "\(marker) in the server's log")
                #expect(!events.localizedCaseInsensitiveContains(marker), "\(marker) in an event")
                #expect(!relay.log.localizedCaseInsensitiveContains(marker), "\(marker) in the relay's log")
            }
            #expect(stored.range(of: brandKeyRaw) == nil && stored.range(of: brandKey.prefix(44)) == nil)
        }
    }
}

/// aiosmtpd on a free loopback port (scripts/smtp-sink.py), recording what it accepts.
final class SMTPSinkProcess: Sendable {
    let port: Int
    let file: URL
    let process: Process

    init() async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/smtp-sink.py")
        file = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-\(UUID().uuidString).jsonl")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, file.path]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = output.fileHandleForReading.availableData
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any], let port = object["port"] as? Int else {
            process.terminate()
            throw ServerProcess.ProcessFailure(message: "the SMTP sink did not start; run scripts/install-deps (aiosmtpd)")
        }
        self.port = port
    }

    var messages: [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: file.path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
