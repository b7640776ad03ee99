import Crypto
import DomicileCore
import DomicileHTTP
import DomicileOutbound
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

@Suite("Sending", .serialized)
struct SendingTests {
    /// Sends one message through the API, dispatches it, lets `callback` report a status, delivers
    /// the events; then checks what the main data center received and what is left at rest.
    func fullPath(_ f: SendFixture, channel: String, content: String, callback: @escaping @Sendable (any TestClientProtocol) async throws -> Void,
                  events: DoubleLog, expectedStatuses: [String]) async throws {
        try await f.test { client in
            let accepted = try await f.send(client, #"{"messages":[{"message_id":"m-1","customer_id":"c-1","channel":"\#(channel)","campaign_id":"spring","content":\#(content),"data":{"offer":"20%"}}]}"#)
            #expect(accepted.status == .accepted, "\(String(buffer: accepted.body))")
            #expect(String(buffer: accepted.body).contains(#""accepted":1"#))
            #expect(await f.dispatcher().dispatchOnce() == 1)
            try await callback(client)
            let history = try await client.execute(uri: "/v1/workspaces/acme/messages/m-1", method: .get,
                                                   headers: f.signedHeaders("GET", "/v1/workspaces/acme/messages/m-1", ""))
            let statuses = ((try JSONSerialization.jsonObject(with: Data(buffer: history.body)) as? [String: Any])?["history"] as? [[String: Any]])?
                .compactMap { $0["status"] as? String }
            #expect(statuses == ["queued", "sent"] + expectedStatuses)
            for marker in f.markers { #expect(!String(buffer: history.body).contains(marker)) }
        }
        _ = await EventDispatcher(vault: f.vault, logger: Logger(label: "test")).deliverOnce()
        let received = events.bodies.joined()
        #expect(received.contains(#""message_id":"m-1""#) && received.contains(#""campaign_id":"spring""#))
        for status in ["queued", "sent"] + expectedStatuses { #expect(received.contains(#""status":"\#(status)""#), "\(status) not reported") }
        for marker in f.markers { #expect(!received.contains(marker), "\(marker) reached the main data center") }
        #expect(try await f.store.message("m-1", workspace: f.workspace)?.sealedPayload == nil, "the outbox copy outlived delivery")
        try await f.assertNoMarkersAtRest()
    }

    @Test func smsThroughThePrivateSSP() async throws {
        let f = try await SendFixture.make()
        let ssp = DoubleLog(), events = DoubleLog()
        try await withDouble({ ProviderDoubles.privateSSP(ssp, router: $0); ProviderDoubles.mainDataCenter(events, router: $0) }) { port in
            try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp",
                                          settings: ["url": "http://127.0.0.1:\(port)/sms", "from": "BRAND", "callback_secret": "cb-secret"], actor: .commandLine)
            _ = try await f.vault.configureEvents(f.workspace, url: "http://127.0.0.1:\(port)/events")
            try await fullPath(f, channel: "sms", content: #"{"text":"Hi {{first_name}}, {{offer}} off today"}"#, callback: { client in
                let body = #"{"version":"1.0","messageId":"m-1","toNumber":"\#(f.markers[1])","status":"sms_sent","statusCode":0}"#
                let mac = HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: Array("cb-secret".utf8)))
                let unsigned = try await client.execute(uri: "/v1/callbacks/private_ssp/acme", method: .post, headers: [.contentType: "application/json"],
                                                        body: ByteBuffer(string: body))
                #expect(unsigned.status == .unauthorized)
                let signed = try await client.execute(uri: "/v1/callbacks/private_ssp/acme", method: .post,
                                                      headers: [.contentType: "application/json",
                                                                HTTPField.Name("X-Signature")!: mac.map { String(format: "%02x", $0) }.joined()],
                                                      body: ByteBuffer(string: body))
                #expect(signed.status == .ok)
            }, events: events, expectedStatuses: ["delivered"])
            let sent = try #require(ssp.requests.withLock { $0.first })
            let request = try #require(try JSONSerialization.jsonObject(with: Data(sent.body)) as? [String: Any])
            let sms = try #require(request["smsData"] as? [String: Any])
            #expect(sms["toNumber"] as? String == f.markers[1])
            #expect(sms["body"] as? String == "Hi \(f.markers[2]), 20% off today")
            #expect((request["metadata"] as? [String: Any])?["messageId"] as? String == "m-1")
            #expect(request["version"] as? String == "1.0")
        }
    }

    @Test func smsThroughTwilio() async throws {
        let f = try await SendFixture.make()
        try await f.withTwilio { twilio, events in
            try await fullPath(f, channel: "sms", content: #"{"text":"Hello {{first_name}}"}"#, callback: { client in
                let sid = try #require(try await f.store.message("m-1", workspace: f.workspace)?.providerMessageID)
                for (token, expected) in [("not-the-token", HTTPResponse.Status.unauthorized), ("tok", .ok)] {
                    let answer = try await twilioCallback(client, sid: sid, status: "delivered", token: token, to: f.markers[1])
                    #expect(answer.status == expected)
                }
            }, events: events, expectedStatuses: ["delivered"])
            let form = try #require(twilio.bodies.first)
            #expect(form.contains("To=%2B97150") && form.contains("From=%2B15005550006") && form.contains("Body=Hello%20"))
        }
    }

    @Test func whatsappThroughTheCloudAPI() async throws {
        let f = try await SendFixture.make()
        try await f.withWhatsAppCloud { meta, events in
            try await fullPath(f, channel: "whatsapp",
                               content: #"{"template":{"name":"order_ready","language":"ar","parameters":["{{first_name}}","{{offer}}"]}}"#,
                               callback: { client in
                let id = try #require(try await f.store.message("m-1", workspace: f.workspace)?.providerMessageID)
                let (body, signature) = f.whatsappStatusWebhook(id: id, status: "read")
                for (header, expected) in [("sha256=00", HTTPResponse.Status.unauthorized), (signature, .ok)] {
                    let answer = try await postWhatsAppWebhook(client, body: body, signature: header)
                    #expect(answer.status == expected)
                }
            }, events: events, expectedStatuses: ["read"])
            let first = try #require(meta.requests.withLock { $0.first })
            let request = try #require(try JSONSerialization.jsonObject(with: Data(first.body)) as? [String: Any])
            #expect(request["messaging_product"] as? String == "whatsapp")
            #expect(request["to"] as? String == String(f.markers[1].dropFirst()))
            let template = try #require(request["template"] as? [String: Any])
            #expect(template["name"] as? String == "order_ready")
            #expect(String(describing: template).contains(f.markers[2]))
        }
    }

    @Test func emailThroughARealSMTPServer() async throws {
        let f = try await SendFixture.make()
        let smtp = try await SMTPServer()
        defer { smtp.stop() }
        let events = DoubleLog()
        try await withDouble({ ProviderDoubles.mainDataCenter(events, router: $0) }) { port in
            try await f.vault.setProvider(f.workspace, channel: .email, kind: "smtp", settings: [
                "host": "127.0.0.1", "port": String(smtp.port), "tls": "none", "from": "news@brand.example", "from_name": "Brand",
            ], actor: .commandLine)
            _ = try await f.vault.configureEvents(f.workspace, url: "http://127.0.0.1:\(port)/events")
            try await fullPath(f, channel: "email",
                               content: #"{"subject":"{{first_name}}, {{offer}} off","text":"Hi {{first_name}}","html":"<p>Hi {{first_name}} & co</p>"}"#,
                               callback: { _ in }, events: events, expectedStatuses: [])
        }
        let received = try #require(smtp.messages.first)
        #expect(received["rcpt_tos"] as? [String] == [f.markers[0]])
        #expect(received["subject"] as? String == "\(f.markers[2]), 20% off")
        #expect((received["text"] as? String)?.contains("Hi \(f.markers[2])") == true)
        #expect((received["html"] as? String)?.contains("<p>Hi \(f.markers[2]) & co</p>") == true)
        #expect((received["raw"] as? String)?.contains("Message-ID: <m-1@brand.example>") == true)
    }

    @Test func refusalsCarryReasonCodesOnly() async throws {
        let f = try await SendFixture.make()
        _ = try await f.vault.ingest([.object(["type": .string("customer"), "customer_id": .string("c-2"),
                                               "attributes": .object(["first_name": .string("NoContact")])])],
                                     workspace: try await f.vault.workspace(f.workspace)!, actor: .apiKey(id: "test"))
        try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp", settings: ["url": "http://127.0.0.1:9/sms"], actor: .commandLine)
        try await f.test { client in
            let long = String(repeating: "x", count: 1_600)
            let answer = try await f.send(client, #"{"messages":[{"message_id":"a","customer_id":"nobody","channel":"sms","content":{"text":"hi"}},{"message_id":"b","customer_id":"c-2","channel":"sms","content":{"text":"hi"}},{"message_id":"c","customer_id":"c-1","channel":"sms","content":{"text":"Hi {{missing}}"}},{"message_id":"d","customer_id":"c-1","channel":"sms","content":{"text":"\#(long)"}},{"message_id":"e","customer_id":"c-1","channel":"email","content":{"subject":"s","text":"t"}},{"message_id":"f","customer_id":"c-1","channel":"sms","content":{"text":"{{#first_name}}Hi {{first_name}}{{/first_name}}{{^nick}}!{{/nick}}"}},{"message_id":"bad id!","customer_id":"c-1","channel":"sms","content":{"text":"x"}}]}"#)
            #expect(answer.status == .accepted)
            let results = try #require((try JSONSerialization.jsonObject(with: Data(buffer: answer.body)) as? [String: Any])?["results"] as? [[String: Any]])
            #expect(results.map { $0["reason"] as? String } == ["unknown_customer", "no_contact_for_channel", "missing_variable", "content_too_long",
                                                                "no_provider", nil, "invalid_message"])
            #expect(results[2]["field"] as? String == "missing")
            #expect(results[5]["accepted"] as? Bool == true && results[5]["segments"] as? Int == 1)
            for marker in f.markers { #expect(!String(buffer: answer.body).contains(marker)) }
        }
    }

    @Test func signaturesStaleTimestampsAndReplays() async throws {
        let f = try await SendFixture.make()
        try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp", settings: ["url": "http://127.0.0.1:9/sms"], actor: .commandLine)
        let body = #"{"message_id":"once","customer_id":"c-1","channel":"sms","content":{"text":"hi"}}"#
        let path = "/v1/workspaces/acme/messages"
        try await f.test { client in
            let now = Int(Date().timeIntervalSince1970)
            for headers in [f.signedHeaders("POST", path, body, secret: "wrong"), f.signedHeaders("POST", path, body, timestamp: now - 301),
                            f.signedHeaders("POST", path, body + " "), [HTTPField.Name.contentType: "application/json"]] {
                let refused = try await client.execute(uri: path, method: .post, headers: headers, body: ByteBuffer(string: body))
                #expect(refused.status == .unauthorized)
            }
            let first = try await client.execute(uri: path, method: .post, headers: f.signedHeaders("POST", path, body), body: ByteBuffer(string: body))
            #expect(first.status == .accepted)
            // The same message id again, even with a new signature: answered, not queued twice.
            let replay = try await client.execute(uri: path, method: .post, headers: f.signedHeaders("POST", path, body), body: ByteBuffer(string: body))
            #expect(String(buffer: replay.body).contains(#""duplicate":true"#))
        }
        #expect(try await f.store.messageHistory("once", workspace: f.workspace).count == 1)
    }

    @Test func providerFailuresAreRetriedThenDeadLettered() async throws {
        let f = try await SendFixture.make()
        let ssp = DoubleLog(replies: [(.internalServerError, "{}"), (.serviceUnavailable, "{}")])
        try await withDouble({ ProviderDoubles.privateSSP(ssp, router: $0) }) { port in
            try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp", settings: ["url": "http://127.0.0.1:\(port)/sms"], actor: .commandLine)
            try await f.test { client in
                _ = try await f.send(client, #"{"messages":[{"message_id":"r","customer_id":"c-1","channel":"sms","content":{"text":"a"}},{"message_id":"x","customer_id":"c-1","channel":"sms","content":{"text":"b"}}]}"#)
            }
            let dispatcher = f.dispatcher()
            for _ in 0..<20 where try await f.store.message("r", workspace: f.workspace)?.status != .sent {
                await dispatcher.dispatchOnce()
                try await Task.sleep(for: .milliseconds(10))
            }
            #expect(try await f.store.message("r", workspace: f.workspace)?.status == .sent)
            #expect(ssp.requests.withLock { $0.count } >= 3)
            // A provider that refuses the message outright: dead-lettered at once, with its code.
            ssp.replies.withLock { $0 = [(.ok, #"{"status":"sms_rejected","statusCode":2004,"message":"Invalid sender id"}"#)] }
            _ = try await f.vault.acceptMessages([.object(["message_id": .string("z"), "customer_id": .string("c-1"), "channel": .string("sms"),
                                                           "content": .object(["text": .string("c")])])],
                                                 workspace: try await f.vault.workspace(f.workspace)!, actor: .mainDataCenter)
            await dispatcher.dispatchOnce()
            let dead = try #require(try await f.store.message("z", workspace: f.workspace))
            #expect(dead.status == .deadLetter && dead.errorCode == "2004" && dead.sealedPayload == nil)
        }
        // A provider that never answers well: dead-lettered after the maximum attempts.
        let down = DoubleLog(replies: Array(repeating: (.badGateway, "{}"), count: 10))
        try await withDouble({ ProviderDoubles.privateSSP(down, router: $0) }) { port in
            try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp", settings: ["url": "http://127.0.0.1:\(port)/sms"], actor: .commandLine)
            _ = try await f.vault.acceptMessages([.object(["message_id": .string("d"), "customer_id": .string("c-1"), "channel": .string("sms"),
                                                           "content": .object(["text": .string("d")])])],
                                                 workspace: try await f.vault.workspace(f.workspace)!, actor: .mainDataCenter)
            let dispatcher = f.dispatcher(maximumAttempts: 3)
            for _ in 0..<20 where try await f.store.message("d", workspace: f.workspace)?.status != .deadLetter {
                await dispatcher.dispatchOnce()
                try await Task.sleep(for: .milliseconds(10))
            }
            let message = try #require(try await f.store.message("d", workspace: f.workspace))
            #expect(message.status == .deadLetter && message.attempts == 3 && message.errorCode == "http_502")
        }
    }

    @Test func erasureCancelsPendingMessages() async throws {
        let f = try await SendFixture.make()
        try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp", settings: ["url": "http://127.0.0.1:9/sms"], actor: .commandLine)
        _ = try await f.vault.acceptMessages([.object(["message_id": .string("p"), "customer_id": .string("c-1"), "channel": .string("sms"),
                                                       "content": .object(["text": .string("hi")])])],
                                             workspace: try await f.vault.workspace(f.workspace)!, actor: .mainDataCenter)
        try await f.vault.erase([CustomerID(trusted: "c-1")], workspace: f.workspace, actor: .apiKey(id: "k"), requestID: nil)
        let message = try #require(try await f.store.message("p", workspace: f.workspace))
        #expect(message.status == .cancelled && message.sealedPayload == nil && message.errorCode == "erased")
        #expect(await f.dispatcher().dispatchOnce() == 0)
        let events = try await f.store.pendingEvents(workspace: f.workspace, limit: 10)
        #expect(events.last?.status == .cancelled && events.last?.errorCode == "erased")
    }

    @Test func restrictionCancelsPendingMessagesWithItsOwnCode() async throws {
        let f = try await SendFixture.make()
        try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp", settings: ["url": "http://127.0.0.1:9/sms"], actor: .commandLine)
        _ = try await f.vault.acceptMessages([.object(["message_id": .string("r"), "customer_id": .string("c-1"), "channel": .string("sms"),
                                                       "content": .object(["text": .string("hi")])])],
                                             workspace: try await f.vault.workspace(f.workspace)!, actor: .mainDataCenter)
        try await f.vault.setRestricted(true, [CustomerID(trusted: "c-1")], workspace: f.workspace, actor: .apiKey(id: "k"), requestID: nil)
        let message = try #require(try await f.store.message("r", workspace: f.workspace))
        #expect(message.status == .cancelled && message.sealedPayload == nil && message.errorCode == "restricted")
        let events = try await f.store.pendingEvents(workspace: f.workspace, limit: 10)
        #expect(events.last?.status == .cancelled && events.last?.errorCode == "restricted")
        #expect(await f.dispatcher().dispatchOnce() == 0)
    }
}

enum CallbackSignature {
    static func twilio(url: String, fields: [(String, String)], token: String) -> String {
        let data = url + fields.sorted { $0.0 < $1.0 }.map { $0.0 + $0.1 }.joined()
        return Data(HMAC<Insecure.SHA1>.authenticationCode(for: Array(data.utf8), using: SymmetricKey(data: Array(token.utf8)))).base64EncodedString()
    }
}
