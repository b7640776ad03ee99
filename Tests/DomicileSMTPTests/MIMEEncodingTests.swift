import DomicileCore
import Foundation
import Testing
@testable import DomicileSMTP

@Suite("MIME encoding")
struct MIMEEncodingTests {
    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    /// A reference decoder for quoted-printable, to check round trips.
    static func decodeQuotedPrintable(_ encoded: String) -> String {
        var bytes: [UInt8] = []
        let lines = encoded.components(separatedBy: "\r\n").dropLast()
        for line in lines {
            let raw = Array(line.utf8)
            var index = 0
            var soft = false
            while index < raw.count {
                if raw[index] == UInt8(ascii: "=") {
                    if index == raw.count - 1 { soft = true; break }
                    bytes.append(UInt8(String(decoding: raw[index + 1...index + 2], as: UTF8.self), radix: 16)!)
                    index += 3
                } else {
                    bytes.append(raw[index])
                    index += 1
                }
            }
            if !soft { bytes += [13, 10] }
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test(arguments: ["a\nb\n", "a\r\nb\r\n", "a\rb\r", "a\nb"])
    func anyLineBreakBecomesOneLine(input: String) {
        #expect(MIMEEncoding.lines(of: input).map(Self.text) == ["a", "b"])
    }

    @Test func blankLinesSurvive() {
        #expect(MIMEEncoding.lines(of: "a\n\n\nb").map(Self.text) == ["a", "", "", "b"])
        #expect(MIMEEncoding.lines(of: "").map(Self.text) == [""])
    }

    @Test(arguments: [
        ("plain ascii", MIMEEncoding.TransferEncoding.sevenBit),
        ("Grüße aus Köln: mostly ASCII text with a few accented letters", .quotedPrintable),
        ("ご注文の商品を発送しました", .base64),
        ("tab\tis fine", .sevenBit),
        ("escape \u{1B} is not", .quotedPrintable),
        (String(repeating: "x", count: 999), .quotedPrintable),
    ])
    func choosesTheTransferEncoding(body: String, expected: MIMEEncoding.TransferEncoding) {
        #expect(MIMEEncoding.transferEncoding(for: MIMEEncoding.lines(of: body)) == expected)
    }

    @Test(arguments: [
        ("a=b", "a=3Db\r\n"),
        ("trailing space ", "trailing space=20\r\n"),
        ("trailing tab\t", "trailing tab=09\r\n"),
        ("Grüße", "Gr=C3=BC=C3=9Fe\r\n"),
        ("..dots stay", "..dots stay\r\n"),
    ])
    func quotedPrintableEncodesWhatItMust(input: String, expected: String) {
        #expect(Self.text(MIMEEncoding.quotedPrintable(MIMEEncoding.lines(of: input))) == expected)
    }

    @Test(arguments: [
        String(repeating: "abcdefghij", count: 40),
        String(repeating: "ü", count: 100) + " end ",
        String(repeating: "=", count: 80),
        "line one\nline two with trailing space \n\nlast",
    ])
    func quotedPrintableKeepsLinesShortAndRoundTrips(input: String) {
        let encoded = Self.text(MIMEEncoding.quotedPrintable(MIMEEncoding.lines(of: input)))
        #expect(encoded.components(separatedBy: "\r\n").allSatisfy { $0.utf8.count <= 76 })
        #expect(Self.decodeQuotedPrintable(encoded) == input.replacingOccurrences(of: "\n", with: "\r\n") + "\r\n")
    }

    @Test func base64LinesAre76Characters() {
        let encoded = Self.text(MIMEEncoding.base64Lines(Array(repeating: 0xAB, count: 1000)))
        let lines = encoded.components(separatedBy: "\r\n").dropLast()
        #expect(lines.dropLast().allSatisfy { $0.count == 76 })
        #expect(Data(base64Encoded: lines.joined()) == Data(repeating: 0xAB, count: 1000))
    }

    @Test(arguments: ["Ä", "注文 #42 — ✓ " + String(repeating: "日本語のテキスト", count: 10), "👩‍👩‍👧‍👦 family", String(repeating: "é", count: 200)])
    func encodedWordsAreShortAndHoldWholeCharacters(input: String) throws {
        let words = MIMEEncoding.encodedWords(input)
        var decoded = ""
        for word in words {
            #expect(word.utf8.count <= 75)
            #expect(word.hasPrefix("=?utf-8?B?") && word.hasSuffix("?="))
            let payload = try #require(Data(base64Encoded: String(word.dropFirst(10).dropLast(2))))
            // Each word decodes on its own: no character is split between two words.
            let piece = try #require(String(data: payload, encoding: .utf8))
            decoded += piece
        }
        #expect(decoded == input)
    }

    @Test func plainSubjectsAreFoldedAtSpacesAndUnfoldBackToTheOriginal() {
        let subject = (0..<40).map { "word\($0)" }.joined(separator: " ")
        let header = Self.text(MIMEEncoding.header("Subject", MIMEEncoding.unstructured(subject, after: "Subject")))
        let lines = header.components(separatedBy: "\r\n").dropLast()
        #expect(lines.count > 1)
        #expect(lines.allSatisfy { $0.utf8.count <= 76 })
        #expect(lines.dropFirst().allSatisfy { $0.hasPrefix(" ") })
        #expect(lines.joined() == "Subject: " + subject)
    }

    @Test(arguments: ["Subject", "To", "X-A-Rather-Long-Extra-Header-Name-For-Testing"])
    func encodedHeadersStartOnTheNameLineAndStayWithin76Characters(name: String) throws {
        let value = String(repeating: "Grüße aus Köln ✓ ", count: 8)
        let header = Self.text(MIMEEncoding.header(name, MIMEEncoding.unstructured(value, after: name)))
        let lines = header.components(separatedBy: "\r\n").dropLast()
        #expect(try #require(lines.first).hasPrefix(name + ": =?utf-8?B?"))
        #expect(lines.allSatisfy { $0.utf8.count <= 76 })
    }

    @Test func textThatLooksLikeAnEncodedWordIsEncoded() {
        #expect(MIMEEncoding.unstructured("=?utf-8?B?abc?=", after: "Subject").allSatisfy { $0.hasPrefix(" =?utf-8?B?") })
        #expect(MIMEEncoding.unstructured("hello world", after: "Subject") == [" hello", " world"])
    }

    @Test(arguments: [
        ("Jane Doe", "Jane Doe <jane@customer.example>"),
        ("Doe, Jane", "\"Doe, Jane\" <jane@customer.example>"),
        ("Say \"hi\"", "\"Say \\\"hi\\\"\" <jane@customer.example>"),
        ("Zoë", "=?utf-8?B?Wm/Dqw==?= <jane@customer.example>"),
    ])
    func displayNamesAreAtomsQuotedOrEncoded(name: String, expected: String) throws {
        let mailbox = try EmailMessage.Mailbox(EmailAddress(validating: "jane@customer.example"), displayName: name)
        #expect(String(MIMEEncoding.mailbox(mailbox, after: "From").joined().dropFirst()) == expected)
    }

    @Test func dotStuffingDoublesALeadingDotOnEveryLine() {
        let stuffed = MIMEEncoding.dotStuffed(Array(".\r\nmid.dle\r\n..\r\n.x\r\n".utf8))
        #expect(Self.text(stuffed) == "..\r\nmid.dle\r\n...\r\n..x\r\n")
    }

    @Test(arguments: [
        (0.0, "Thu, 1 Jan 1970 00:00:00 +0000"),
        (951_782_400.0, "Tue, 29 Feb 2000 00:00:00 +0000"),
        (1_764_106_507.0, "Tue, 25 Nov 2025 21:35:07 +0000"),
        (4_133_980_799.0, "Fri, 31 Dec 2100 23:59:59 +0000"),
        (4_107_542_400.0, "Mon, 1 Mar 2100 00:00:00 +0000"),  // 2100 is not a leap year
    ])
    func formatsRFC5322Dates(seconds: Double, expected: String) {
        #expect(MIMEEncoding.date(Date(timeIntervalSince1970: seconds)) == expected)
    }
}

@Suite("Email message")
struct EmailMessageTests {
    static let from = EmailMessage.Mailbox(try! EmailAddress(validating: "news@brand.example"))
    static let to = EmailMessage.Mailbox(try! EmailAddress(validating: "jane@customer.example"))

    @Test func rendersSevenBitCRLFTextWithinTheLineLimit() throws {
        let message = try EmailMessage(
            from: Self.from, to: [Self.to], subject: "Grüße " + String(repeating: "lang ", count: 50),
            textBody: String(repeating: "a", count: 5000) + "\nzweite Zeile ü\n", htmlBody: "<p>" + String(repeating: "日本", count: 900) + "</p>"
        )
        let bytes = message.rendered()
        #expect(bytes.allSatisfy { $0 < 128 })
        let text = String(decoding: bytes, as: UTF8.self)
        #expect(text.hasSuffix("\r\n"))
        let lines = text.components(separatedBy: "\r\n")
        #expect(lines.allSatisfy { $0.utf8.count <= 998 })
        #expect(lines.allSatisfy { !$0.contains("\r") && !$0.contains("\n") }, "no bare CR or LF")
        #expect(text.contains("Content-Type: multipart/alternative;"))
        #expect(text.contains("MIME-Version: 1.0\r\n"))
    }

    @Test func generatesAMessageIDAtTheSendersDomain() throws {
        let one = try EmailMessage(from: Self.from, to: [Self.to], subject: "s", textBody: "t")
        let two = try EmailMessage(from: Self.from, to: [Self.to], subject: "s", textBody: "t")
        #expect(one.messageID.hasPrefix("<") && one.messageID.hasSuffix("@brand.example>"))
        #expect(one.messageID != two.messageID)
    }

    @Test func refusesHeaderInjectionWithoutEchoingTheValue() throws {
        let error = try #require(throws: EmailMessage.Invalid.self) {
            try EmailMessage.Header(name: "X-Note", value: "hi\r\nBcc: victim@example.com")
        }
        #expect(error.reason == .controlCharacterInHeader("X-Note"))
        #expect(!error.description.contains("victim"))
        #expect(throws: EmailMessage.Invalid.self) { try EmailMessage.Header(name: "Bcc", value: "x@y.example") }
        #expect(throws: EmailMessage.Invalid.self) { try EmailMessage.Header(name: "Bad Name", value: "x") }
        #expect(throws: EmailMessage.Invalid.self) {
            try EmailMessage(from: Self.from, to: [Self.to], subject: "a\nBcc: victim@example.com", textBody: "t")
        }
        #expect(throws: EmailMessage.Invalid.self) {
            try EmailMessage.Mailbox(Self.to.address, displayName: "Jane\r\nBcc: victim@example.com")
        }
    }

    @Test func needsARecipientAndABody() {
        #expect(throws: EmailMessage.Invalid(.noRecipients)) {
            try EmailMessage(from: Self.from, to: [], subject: "s", textBody: "t")
        }
        #expect(throws: EmailMessage.Invalid(.noBody)) {
            try EmailMessage(from: Self.from, to: [Self.to], subject: "s")
        }
    }

    @Test(arguments: ["no-brackets@x", "<no-at>", "<two@@x>", "<with space@x>"])
    func refusesAMalformedMessageID(id: String) {
        #expect(throws: EmailMessage.Invalid(.invalidMessageID)) {
            try EmailMessage(from: Self.from, to: [Self.to], subject: "s", textBody: "t", messageID: id)
        }
    }

    @Test func descriptionsNameNoAddressOrContent() throws {
        let message = try EmailMessage(from: Self.from, to: [Self.to], subject: "Secret subject", textBody: "Secret body")
        for text in ["\(message)", String(reflecting: message)] {
            #expect(!text.contains("jane"))
            #expect(!text.contains("Secret"))
        }
        let credentials = SMTPConfiguration.Credentials(username: "mailer", password: "hunter2")
        #expect(!"\(credentials)".contains("hunter2") && !"\(credentials)".contains("mailer"))
    }
}
