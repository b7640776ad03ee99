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

/// `bounced`: the address cannot receive, as opposed to a message that failed.
@Suite("Bounces", .serialized)
struct BounceTests {
    /// What an event may hold: ids, channel, status, time and error code.
    static let eventFields: Set<String> = ["event_id", "type", "workspace_id", "customer_id", "occurred_at", "message_id", "campaign_id",
                                           "channel", "status", "error_code"]

    /// Delivers the workspace's events and returns those of message m-1, checking that none
    /// carries a field beyond ids, channel, status, time and error code, or a customer's value.
    func reportedEvents(_ f: SendFixture, _ log: DoubleLog) async throws -> [[String: Any]] {
        _ = await EventDispatcher(vault: f.vault, logger: Logger(label: "test")).deliverOnce()
        for marker in f.markers { #expect(!log.bodies.joined().contains(marker), "\(marker) reached the main data center") }
        let events = try log.bodies.flatMap { body in
            try #require((try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])?["events"] as? [[String: Any]])
        }
        for event in events { #expect(Set(event.keys).isSubset(of: Self.eventFields), "\(event.keys.sorted())") }
        return events.filter { $0["message_id"] as? String == "m-1" }
    }

    /// Accepts m-1 on `channel` and hands it to the provider.
    func sendOne(_ f: SendFixture, channel: String, content: [String: JSONValue] = ["text": .string("Hi {{first_name}}")]) async throws {
        let results = try await f.vault.acceptMessages([messageRequest("m-1", channel: channel, content: content)],
                                                       workspace: try await f.vault.workspace(f.workspace)!, actor: .mainDataCenter)
        #expect(results.first?.accepted == true)
        #expect(await f.dispatcher().dispatchOnce() == 1)
    }

    static let smtpRefusals: [(reply: String, status: MessageStatus, code: String)] = [
        ("550 5.1.1 User unknown", .bounced, "550"),
        ("550 Requested action not taken: mailbox unavailable", .bounced, "550"),
        ("551 User not local", .bounced, "551"),
        ("553 5.1.3 Bad recipient address syntax", .bounced, "553"),
        // About the sender, not the address: a dead letter, not a bounce.
        ("554 5.7.1 Relay access denied", .deadLetter, "554"),
        ("530 Authentication required", .deadLetter, "530"),
        // Transient: back in the queue for another attempt.
        ("450 4.2.1 Mailbox busy", .queued, "450"),
    ]

    @Test(arguments: smtpRefusals)
    func aRecipientRefusedForGoodAtRCPTToBounces(reply: String, status: MessageStatus, code: String) async throws {
        let f = try await SendFixture.make()
        // The sink appends the address to its reply, as real servers do.
        let smtp = try await SMTPServer(arguments: ["--rcpt-reply", reply])
        defer { smtp.stop() }
        let events = DoubleLog()
        try await withDouble({ ProviderDoubles.mainDataCenter(events, router: $0) }) { port in
            try await f.vault.setProvider(f.workspace, channel: .email, kind: "smtp", settings: [
                "host": "127.0.0.1", "port": String(smtp.port), "tls": "none", "from": "news@brand.example",
            ], actor: .commandLine)
            _ = try await f.vault.configureEvents(f.workspace, url: "http://127.0.0.1:\(port)/events")
            try await sendOne(f, channel: "email", content: ["subject": .string("Hi"), "text": .string("Hi {{first_name}}")])
            let message = try #require(try await f.store.message("m-1", workspace: f.workspace))
            #expect(message.status == status)
            #expect(message.errorCode == code)
            let history = try await f.store.messageHistory("m-1", workspace: f.workspace)
            #expect(history.last?.status == status && history.last?.errorCode == code)
            let reported = try await reportedEvents(f, events)
            if status.isFinal {
                #expect(reported.map { $0["status"] as? String } == ["queued", status.rawValue])
                #expect(reported.last?["error_code"] as? String == code)
                #expect(message.sealedPayload == nil, "the outbox copy outlived a final status")
            } else {
                // A retry shows in the history, not in events.
                #expect(reported.map { $0["status"] as? String } == ["queued"])
            }
        }
        #expect(smtp.messages.isEmpty)
        try await f.assertNoMarkersAtRest()
    }

    static let twilioReports: [(status: String, code: String, expected: MessageStatus)] = [
        ("undelivered", "30003", .bounced), ("failed", "30003", .bounced),
        ("undelivered", "30005", .bounced), ("failed", "30005", .bounced),
        ("undelivered", "30006", .bounced), ("failed", "30006", .bounced),
        ("undelivered", "30007", .failed), ("failed", "30008", .failed), ("undelivered", "", .failed), ("failed", "", .failed),
        ("canceled", "30003", .failed), ("delivered", "", .delivered),
    ]

    @Test(arguments: twilioReports)
    func twilioBouncesOnlyForNumbersThatCannotReceive(status: String, code: String, expected: MessageStatus) async throws {
        let f = try await SendFixture.make()
        try await f.withTwilio { _, events in
            try await sendOne(f, channel: "sms")
            let sid = try #require(try await f.store.message("m-1", workspace: f.workspace)?.providerMessageID)
            try await f.test { client in
                let answer = try await twilioCallback(client, sid: sid, status: status, errorCode: code, token: "tok", to: f.markers[1])
                #expect(answer.status == .ok)
            }
            let message = try #require(try await f.store.message("m-1", workspace: f.workspace))
            #expect(message.status == expected)
            #expect(message.errorCode == (code.isEmpty ? nil : code))
            let reported = try await reportedEvents(f, events)
            #expect(reported.map { $0["status"] as? String } == ["queued", "sent", expected.rawValue])
            #expect(reported.last?["error_code"] as? String == (code.isEmpty ? nil : code))
        }
    }

    static let whatsappFailures: [(code: Int?, expected: MessageStatus)] = [(131026, .bounced), (131047, .failed), (131000, .failed), (nil, .failed)]

    @Test(arguments: whatsappFailures)
    func whatsappBouncesOnlyWhenTheMessageIsUndeliverable(code: Int?, expected: MessageStatus) async throws {
        let f = try await SendFixture.make()
        try await f.withWhatsAppCloud { _, events in
            try await sendOne(f, channel: "whatsapp")
            let id = try #require(try await f.store.message("m-1", workspace: f.workspace)?.providerMessageID)
            let errors = code.map { #","errors":[{"code":\#($0),"title":"Message undeliverable"}]"# } ?? ""
            let (body, signature) = f.whatsappStatusWebhook(id: id, status: "failed", errors: errors)
            try await f.test { client in
                let answer = try await postWhatsAppWebhook(client, body: body, signature: signature)
                #expect(answer.status == .ok)
            }
            let message = try #require(try await f.store.message("m-1", workspace: f.workspace))
            #expect(message.status == expected && message.errorCode == code.map(String.init))
            let reported = try await reportedEvents(f, events)
            #expect(reported.map { $0["status"] as? String } == ["queued", "sent", expected.rawValue])
        }
    }

    static let refusedSends: [(kind: String, reply: String, status: MessageStatus, code: String)] = [
        ("twilio", #"{"code":21211,"message":"The 'To' number is not a valid phone number.","more_info":"https://www.twilio.com/docs/errors/21211","status":400}"#, .bounced, "21211"),
        ("twilio", #"{"code":21614,"message":"'To' number is not a valid mobile number","more_info":"https://www.twilio.com/docs/errors/21614","status":400}"#, .bounced, "21614"),
        // Unsubscribed (STOP): about consent, not the address.
        ("twilio", #"{"code":21610,"message":"Attempt to send to unsubscribed recipient","more_info":"https://www.twilio.com/docs/errors/21610","status":400}"#, .deadLetter, "21610"),
        ("private_ssp", #"{"status":"sms_rejected","statusCode":2003,"message":"Invalid mobile number"}"#, .bounced, "2003"),
        ("private_ssp", #"{"status":"sms_rejected","statusCode":2004,"message":"Invalid sender id"}"#, .deadLetter, "2004"),
    ]

    /// A provider that refuses the send because of the number bounces; other refusals dead-letter.
    @Test(arguments: refusedSends)
    func aSendRefusedForTheNumberBounces(kind: String, reply: String, status: MessageStatus, code: String) async throws {
        let f = try await SendFixture.make()
        let provider = DoubleLog(replies: [(kind == "twilio" ? .badRequest : .ok, reply)])
        let events = DoubleLog()
        try await withDouble({
            if kind == "twilio" {
                ProviderDoubles.twilio(provider, accountSID: "AC123", authToken: "tok", router: $0)
            } else {
                ProviderDoubles.privateSSP(provider, router: $0)
            }
            ProviderDoubles.mainDataCenter(events, router: $0)
        }) { port in
            let settings = kind == "twilio"
                ? ["base_url": "http://127.0.0.1:\(port)", "account_sid": "AC123", "auth_token": "tok", "from": "+15005550006"]
                : ["url": "http://127.0.0.1:\(port)/sms"]
            try await f.vault.setProvider(f.workspace, channel: .sms, kind: kind, settings: settings, actor: .commandLine)
            _ = try await f.vault.configureEvents(f.workspace, url: "http://127.0.0.1:\(port)/events")
            try await sendOne(f, channel: "sms")
            let message = try #require(try await f.store.message("m-1", workspace: f.workspace))
            #expect(message.status == status && message.errorCode == code && message.sealedPayload == nil)
            let reported = try await reportedEvents(f, events)
            #expect(reported.map { $0["status"] as? String } == ["queued", status.rawValue])
        }
    }

    /// The private SSP's later report of an invalid number bounces; other failures stay failed.
    @Test(arguments: [(2003, MessageStatus.bounced), (2009, .failed)])
    func privateSSPReportsOfInvalidNumbersBounce(code: Int, expected: MessageStatus) async throws {
        let f = try await SendFixture.make()
        let provider = DoubleLog()
        try await withDouble({ ProviderDoubles.privateSSP(provider, router: $0) }) { port in
            try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp",
                                          settings: ["url": "http://127.0.0.1:\(port)/sms", "callback_secret": "cb"], actor: .commandLine)
            try await sendOne(f, channel: "sms")
            let body = #"{"version":"1.0","messageId":"m-1","toNumber":"\#(f.markers[1])","status":"sms_failed","statusCode":\#(code)}"#
            let signature = HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: Data("cb".utf8)))
                .map { String(format: "%02x", $0) }.joined()
            try await f.test { client in
                let answer = try await client.execute(uri: "/v1/callbacks/private_ssp/acme", method: .post,
                                                      headers: [.contentType: "application/json", HTTPField.Name("X-Signature")!: signature],
                                                      body: ByteBuffer(string: body))
                #expect(answer.status == .ok)
            }
            let message = try #require(try await f.store.message("m-1", workspace: f.workspace))
            #expect(message.status == expected && message.errorCode == String(code))
        }
    }
}
