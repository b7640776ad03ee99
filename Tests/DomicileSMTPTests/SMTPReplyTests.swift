import Testing
@testable import DomicileSMTP

@Suite("SMTP replies")
struct SMTPReplyTests {
    static func parse(_ lines: [String]) throws -> [SMTPReply] {
        var parser = SMTPReplyParser()
        return try lines.compactMap { line throws(SMTPReplyParser.Malformed) in try parser.feed(line: Array(line.utf8)) }
    }

    @Test func assemblesAMultiLineReplyAndReadsTheCapabilities() throws {
        let replies = try Self.parse([
            "250-smtp.provider.example at your service",
            "250-SIZE 35882577",
            "250-8BITMIME",
            "250-STARTTLS",
            "250-AUTH=LOGIN",
            "250-AUTH PLAIN login XOAUTH2",
            "250-ENHANCEDSTATUSCODES",
            "250-PIPELINING",
            "250 SMTPUTF8",
        ])
        try #require(replies.count == 1)
        let capabilities = SMTPCapabilities(ehlo: replies[0])
        #expect(capabilities.startTLS && capabilities.pipelining && capabilities.enhancedStatusCodes && capabilities.eightBitMIME)
        #expect(capabilities.authenticationMechanisms == ["PLAIN", "LOGIN", "XOAUTH2"])
        #expect(capabilities.size && capabilities.maximumMessageSize == 35_882_577)
    }

    @Test func readsTheEnhancedStatusCodeOnlyWhenItMatchesTheReplyClass() throws {
        let replies = try Self.parse(["550 5.1.1 <jane@customer.example>: unknown", "250 OK", "451 5.1.1 mismatched", "250 2.0.0"])
        #expect(replies.map(\.enhancedStatus?.description) == ["5.1.1", nil, nil, "2.0.0"])
    }

    @Test(arguments: ["hello", "25", "2500 x", "600 x", "250x", "abc def"])
    func refusesLinesThatAreNoReply(line: String) {
        #expect(throws: SMTPReplyParser.Malformed.notAReplyLine) { try Self.parse([line]) }
    }

    @Test func refusesACodeThatChangesWithinAReply() {
        #expect(throws: SMTPReplyParser.Malformed.codeChangedWithinReply) { try Self.parse(["250-a", "251 b"]) }
    }

    @Test func refusesAnOverlongLine() {
        #expect(throws: SMTPReplyParser.Malformed.lineTooLong) {
            try Self.parse(["250 " + String(repeating: "x", count: SMTPReplyParser.maximumLineLength)])
        }
    }

    @Test func anErrorDescriptionCarriesCodesButNotTheServerText() {
        let reply = SMTPReply(code: 550, lines: ["5.1.1 <jane@customer.example>: Recipient address rejected"])
        let error = SMTPError(reply: reply, stage: .recipient, recipientIndex: 0)
        #expect(error.description == "SMTP RCPT TO failed: server replied 550 5.1.1 (recipient #0) [permanent]")
        #expect(error.debugDescription.contains("jane@customer.example"))
        #expect(error.isPermanent)
        #expect(SMTPError(reply: SMTPReply(code: 452, lines: ["4.2.2 full"]), stage: .recipient).isTransient)
        #expect(SMTPError(reply: SMTPReply(code: 354, lines: ["go"]), stage: .recipient).kind == .protocolViolation)
    }
}
