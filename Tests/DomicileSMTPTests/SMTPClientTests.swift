import DomicileCore
import Foundation
import NIOSSL
import Testing
@testable import DomicileSMTP

/// The client against a real SMTP server (aiosmtpd) on loopback.
@Suite("SMTP client against aiosmtpd")
struct SMTPClientTests {
    static let sender = try! EmailAddress(validating: "news@brand.example")
    static let recipient = try! EmailAddress(validating: "jane.doe@customer.example")
    static let credentials = (username: "mailer", password: "s3cret-Pässword")

    static func message(
        to recipients: [EmailAddress] = [recipient], subject: String = "Your order",
        text: String? = "Hello", html: String? = nil
    ) throws -> EmailMessage {
        try EmailMessage(
            from: EmailMessage.Mailbox(sender, displayName: "Brand"), to: recipients.map { EmailMessage.Mailbox($0) },
            subject: subject, textBody: text, htmlBody: html
        )
    }

    static func client(
        _ sink: SMTPSink, tlsMode: SMTPConfiguration.TLSMode = .none, trust: Bool = true,
        credentials: SMTPConfiguration.Credentials? = nil, allowsAuthenticationWithoutTLS: Bool = false
    ) throws -> SMTPClient {
        try SMTPClient(configuration: SMTPConfiguration(
            host: "127.0.0.1", port: sink.port, tlsMode: tlsMode, credentials: credentials,
            heloName: "vault.test",
            timeouts: .init(connect: .seconds(10), command: .seconds(30), dataTermination: .seconds(30)),
            tlsConfiguration: tlsMode != .none && trust ? try sink.trustingTLSConfiguration() : .makeClientConfiguration(),
            allowsAuthenticationWithoutTLS: allowsAuthenticationWithoutTLS
        ))
    }

    /// Python's decoder keeps CRLF and the final line break; the comparison is about content.
    static func lines(_ text: String?) -> String? {
        text.map { $0.replacingOccurrences(of: "\r\n", with: "\n").trimmingCharacters(in: .newlines) }
    }

    @Test func deliversTextAndHTMLWithANonASCIISubjectToTheExactRecipient() async throws {
        let sink = try await SMTPSink()
        defer { sink.stop() }
        let subject = "Ihre Bestellung ✓ — 注文 #42 ist unterwegs, und dieser Betreff ist länger als eine Zeile"
        let text = "Hallo Zoë,\n\nIhre Bestellung ist unterwegs.\nViele Grüße\n"
        let html = "<p>こんにちは、ゾーイさん</p>\n<p>ご注文の商品を発送しました。</p>\n"
        let message = try EmailMessage(
            from: EmailMessage.Mailbox(Self.sender, displayName: "Zoë’s Café"),
            to: [EmailMessage.Mailbox(Self.recipient, displayName: "Jane Doe")],
            subject: subject, textBody: text, htmlBody: html,
            headers: [EmailMessage.Header(name: "X-Campaign", value: "spring-2026")]
        )

        let receipt = try await Self.client(sink).send(message)

        let received = try sink.messages()
        try #require(received.count == 1)
        let delivered = received[0]
        #expect(delivered.rcpt_tos == ["jane.doe@customer.example"])
        #expect(delivered.mail_from == "news@brand.example")
        #expect(delivered.subject == subject)
        #expect(delivered.from == "Zoë’s Café <news@brand.example>")
        #expect(delivered.to == "Jane Doe <jane.doe@customer.example>")
        #expect(delivered.content_type == "multipart/alternative")
        #expect(Self.lines(delivered.text) == Self.lines(text))
        #expect(Self.lines(delivered.html) == Self.lines(html))
        #expect(delivered.raw.contains("Message-ID: \(receipt.messageID)\r\n"))
        #expect(delivered.raw.contains("X-Campaign: spring-2026\r\n"))
        #expect(delivered.raw.contains("charset=utf-8"))
        #expect(delivered.raw.unicodeScalars.allSatisfy { $0.isASCII })
        #expect(delivered.raw.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 998 })
        #expect(receipt.messageID.hasSuffix("@brand.example>"))
        #expect(receipt.replyCode == 250)
        #expect(receipt.enhancedStatus == EnhancedStatusCode(statusClass: 2, subject: 0, detail: 0))
        #expect(!receipt.description.contains("jane"))
    }

    @Test func upgradesWithSTARTTLSAndAuthenticatesWithPLAIN() async throws {
        let sink = try await SMTPSink(.init(tls: .startTLS, requireStartTLS: true, auth: Self.credentials))
        defer { sink.stop() }
        let client = try Self.client(sink, tlsMode: .startTLS, credentials: .init(
            username: Self.credentials.username, password: Self.credentials.password, mechanisms: [.plain]
        ))

        let connection = try await client.connect()
        #expect(connection.isEncrypted)
        _ = try await connection.send(try Self.message())
        await connection.close()

        let delivered = try #require(try sink.messages().first)
        #expect(delivered.tls)
        #expect(delivered.auth_login == Self.credentials.username)
        #expect(delivered.auth_mechanism == "PLAIN")
        #expect(delivered.rcpt_tos == [Self.recipient.normalized])
    }

    @Test func authenticatesWithLOGIN() async throws {
        let sink = try await SMTPSink(.init(tls: .startTLS, auth: Self.credentials))
        defer { sink.stop() }
        let client = try Self.client(sink, tlsMode: .startTLS, credentials: .init(
            username: Self.credentials.username, password: Self.credentials.password, mechanisms: [.login, .plain]
        ))

        _ = try await client.send(try Self.message())

        let delivered = try #require(try sink.messages().first)
        #expect(delivered.auth_mechanism == "LOGIN")
        #expect(delivered.auth_login == Self.credentials.username)
    }

    @Test func sendsOverImplicitTLS() async throws {
        let sink = try await SMTPSink(.init(tls: .implicit))
        defer { sink.stop() }

        _ = try await Self.client(sink, tlsMode: .implicit).send(try Self.message())

        let delivered = try #require(try sink.messages().first)
        #expect(delivered.tls)
    }

    @Test func aWrongPasswordIsAPermanent535() async throws {
        let sink = try await SMTPSink(.init(tls: .startTLS, auth: Self.credentials))
        defer { sink.stop() }
        let client = try Self.client(sink, tlsMode: .startTLS, credentials: .init(
            username: Self.credentials.username, password: "wrong"
        ))

        let error = try await #require(throws: SMTPError.self) { try await client.send(try Self.message()) }

        #expect(error.kind == .rejected)
        #expect(error.stage == .authentication)
        #expect(error.replyCode == 535)
        #expect(error.enhancedStatus?.description == "5.7.8")
        #expect(error.isPermanent)
        #expect(!error.description.contains("wrong"))
        #expect(try sink.messages().isEmpty)
    }

    @Test(arguments: [false, true])
    func aRecipientRefusedWith550IsPermanentAndItsDescriptionNamesNoAddress(pipelining: Bool) async throws {
        let sink = try await SMTPSink(.init(rcptReply: "550 5.1.1 Mailbox unavailable", pipelining: pipelining))
        defer { sink.stop() }

        let error = try await #require(throws: SMTPError.self) {
            try await Self.client(sink).send(try Self.message())
        }

        #expect(error.kind == .rejected)
        #expect(error.stage == .recipient)
        #expect(error.replyCode == 550)
        #expect(error.enhancedStatus == EnhancedStatusCode(statusClass: 5, subject: 1, detail: 1))
        #expect(error.recipientIndex == 0)
        #expect(error.isPermanent && !error.isTransient)
        #expect(!error.description.contains(Self.recipient.normalized))
        #expect(!error.description.contains("jane"))
        #expect(!"\(error)".contains("jane"))
        #expect(!String(describing: error).contains("customer.example"))
        // The server echoed the address; only debugDescription (documented as such) carries it.
        #expect(error.debugDescription.contains(Self.recipient.normalized))
        #expect(try sink.messages().isEmpty)
    }

    @Test func aRecipientRefusedWith451IsTransient() async throws {
        let sink = try await SMTPSink(.init(rcptReply: "451 4.3.0 Try again later"))
        defer { sink.stop() }

        let error = try await #require(throws: SMTPError.self) {
            try await Self.client(sink).send(try Self.message())
        }

        #expect(error.kind == .rejected)
        #expect(error.replyCode == 451)
        #expect(error.enhancedStatus?.description == "4.3.0")
        #expect(error.isTransient)
        #expect(!error.description.contains("jane"))
    }

    @Test(arguments: [false, true])
    func sendsSeveralMessagesOverOneConnectionWithRSETBetweenThem(pipelining: Bool) async throws {
        let sink = try await SMTPSink(.init(pipelining: pipelining))
        defer { sink.stop() }
        let connection = try await Self.client(sink).connect()
        #expect(connection.capabilities.pipelining == pipelining)

        var receipts: [SMTPReceipt] = []
        for index in 0..<5 {
            let to = try EmailAddress(validating: "customer\(index)@customer.example")
            receipts.append(try await connection.send(try Self.message(to: [to], subject: "Message \(index)")))
        }
        #expect(await connection.isOpen)
        await connection.close()
        #expect(await !connection.isOpen)

        let received = try sink.messages()
        try #require(received.count == 5)
        #expect(Set(received.map(\.peer_port)).count == 1, "all on one connection")
        #expect(received.map(\.rcpt_tos) == (0..<5).map { ["customer\($0)@customer.example"] })
        #expect(received.map(\.subject) == (0..<5).map { "Message \($0)" })
        #expect(received.map(\.resets_so_far) == [0, 1, 2, 3, 4])
        #expect(Set(receipts.map(\.messageID)).count == 5)
    }

    @Test(arguments: [false, true])
    func aRefusedRecipientFailsTheWholeMessageAndLeavesTheConnectionUsable(pipelining: Bool) async throws {
        let sink = try await SMTPSink(.init(rcptReply: "550 5.1.1 No such user", rejectMatching: "bounce", pipelining: pipelining))
        defer { sink.stop() }
        let connection = try await Self.client(sink).connect()
        let bounce = try EmailAddress(validating: "bounce@customer.example")

        let error = try await #require(throws: SMTPError.self) {
            try await connection.send(try Self.message(to: [Self.recipient, bounce]))
        }
        #expect(error.recipientIndex == 1)
        #expect(error.replyCode == 550)
        #expect(await connection.isOpen)

        _ = try await connection.send(try Self.message(subject: "Second"))
        await connection.close()

        let received = try sink.messages()
        #expect(received.map(\.subject) == ["Second"], "the first message reached nobody")
        #expect(received.first?.rcpt_tos == [Self.recipient.normalized])
    }

    @Test(arguments: [
        "First line\n.\n..two dots\n.leading dot\nlast",  // 7bit
        "Grüße\n.\n..zwei Punkte\n.führender Punkt\nEnde",  // quoted-printable
    ])
    func dotStuffsLinesThatStartWithADot(body: String) async throws {
        let sink = try await SMTPSink()
        defer { sink.stop() }

        _ = try await Self.client(sink).send(try Self.message(text: body))

        let delivered = try #require(try sink.messages().first)
        #expect(Self.lines(delivered.text) == body)
    }

    @Test func sendsLongLinesAndLongBodiesWithinTheLineLimit() async throws {
        let sink = try await SMTPSink()
        defer { sink.stop() }
        let text = String(repeating: "long-line-without-spaces ", count: 400) + "\n" + String(repeating: "ä", count: 3000)
        let subject = String(repeating: "word ", count: 60) + "end"

        _ = try await Self.client(sink).send(try Self.message(subject: subject, text: text))

        let delivered = try #require(try sink.messages().first)
        #expect(delivered.raw.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 78 })
        #expect(Self.lines(delivered.text) == text)
        #expect(delivered.subject == subject)
    }

    @Test func requiredSTARTTLSIsATransientFailureWhenTheServerDoesNotOfferIt() async throws {
        let sink = try await SMTPSink()
        defer { sink.stop() }

        let error = try await #require(throws: SMTPError.self) {
            try await Self.client(sink, tlsMode: .startTLS, trust: false).send(try Self.message())
        }

        #expect(error.kind == .tlsUnavailable)
        #expect(error.isTransient)
        #expect(try sink.messages().isEmpty)
    }

    @Test func startTLSIfAvailableGoesOnInPlainTextWhenTheServerDoesNotOfferIt() async throws {
        let sink = try await SMTPSink()
        defer { sink.stop() }

        let connection = try await Self.client(sink, tlsMode: .startTLSIfAvailable, trust: false).connect()
        #expect(!connection.isEncrypted)
        _ = try await connection.send(try Self.message())
        await connection.close()

        #expect(try sink.messages().count == 1)
    }

    @Test func anUntrustedCertificateFailsTheHandshake() async throws {
        let sink = try await SMTPSink(.init(tls: .startTLS))
        defer { sink.stop() }

        let error = try await #require(throws: SMTPError.self) {
            try await Self.client(sink, tlsMode: .startTLS, trust: false).send(try Self.message())
        }

        #expect(error.kind == .tlsFailed)
        #expect(error.stage == .startTLS)
        #expect(try sink.messages().isEmpty)
    }

    @Test func credentialsAreNotSentInClearUnlessAllowed() async throws {
        let sink = try await SMTPSink(.init(auth: Self.credentials))
        defer { sink.stop() }
        let credentials = SMTPConfiguration.Credentials(username: Self.credentials.username, password: Self.credentials.password)

        let error = try await #require(throws: SMTPError.self) {
            try await Self.client(sink, tlsMode: .startTLSIfAvailable, trust: false, credentials: credentials).send(try Self.message())
        }
        #expect(error.kind == .tlsUnavailable)
        #expect(error.stage == .authentication)

        _ = try await Self.client(
            sink, tlsMode: .startTLSIfAvailable, trust: false, credentials: credentials, allowsAuthenticationWithoutTLS: true
        ).send(try Self.message())
        #expect(try sink.messages().first?.auth_login == Self.credentials.username)
    }

    @Test func aServerThatIsNotListeningIsATransientConnectionFailure() async throws {
        let sink = try await SMTPSink()
        let client = try Self.client(sink)
        sink.stop()

        let error = try await #require(throws: SMTPError.self) { try await client.send(try Self.message()) }

        #expect(error.kind == .connectionFailed)
        #expect(error.stage == .connect)
        #expect(error.isTransient)
    }

    @Test func concurrentSendsOnOneConnectionAreSerialised() async throws {
        let sink = try await SMTPSink(.init(pipelining: true))
        defer { sink.stop() }
        let connection = try await Self.client(sink).connect()

        try await withThrowingTaskGroup(of: SMTPReceipt.self) { group in
            for index in 0..<8 {
                let message = try Self.message(subject: "Concurrent \(index)")
                group.addTask { try await connection.send(message) }
            }
            try await group.waitForAll()
        }
        await connection.close()

        #expect(Set(try sink.messages().compactMap(\.subject)) == Set((0..<8).map { "Concurrent \($0)" }))
    }
}
