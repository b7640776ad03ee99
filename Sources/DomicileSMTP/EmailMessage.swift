import DomicileCore
import Foundation

/// An e-mail ready to hand to an SMTP server: addresses, subject, a text and/or HTML body and a
/// few extra headers. `SMTPConnection` renders it as RFC 5322 / MIME text (see
/// `EmailMessage+MIME.swift`).
///
/// It holds personal data (addresses, content), so `description` shows only its Message-ID and
/// the number of recipients.
public struct EmailMessage: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// An address with an optional display name: `Jane Doe <jane@example.com>`.
    public struct Mailbox: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
        public let address: EmailAddress
        public let displayName: String?

        /// An address without a display name.
        public init(_ address: EmailAddress) {
            self.address = address
            self.displayName = nil
        }

        /// - Throws: `EmailMessage.Invalid` when the display name contains a line break or
        ///   another control character.
        public init(_ address: EmailAddress, displayName: String?) throws(EmailMessage.Invalid) {
            if let displayName, displayName.unicodeScalars.contains(where: \.isControl) {
                throw EmailMessage.Invalid(.controlCharacterInDisplayName)
            }
            self.address = address
            self.displayName = displayName.flatMap { $0.isEmpty ? nil : $0 }
        }

        /// The masked address, never the display name.
        public var description: String { address.description }
        public var debugDescription: String { description }
    }

    /// An extra header such as `List-Unsubscribe` or `X-Campaign`.
    public struct Header: Sendable, Hashable {
        public let name: String
        public let value: String

        /// Headers this type writes itself; an extra header may not replace them.
        static let reserved: Set<String> = [
            "date", "from", "to", "cc", "bcc", "subject", "message-id", "mime-version",
            "content-type", "content-transfer-encoding", "reply-to", "sender", "return-path",
        ]

        /// - Parameter value: sent as it is when it is printable ASCII (write structured values
        ///   such as `<https://…>` this way), otherwise as RFC 2047 encoded-words.
        /// - Throws: `EmailMessage.Invalid` for a name that is not an RFC 5322 field name or is
        ///   reserved, or a value with a line break or another control character (header injection).
        public init(name: String, value: String) throws(EmailMessage.Invalid) {
            guard !name.isEmpty, name.utf8.count <= 76,
                  name.utf8.allSatisfy({ (33...126).contains($0) && $0 != UInt8(ascii: ":") })
            else { throw EmailMessage.Invalid(.invalidHeaderName) }
            guard !Self.reserved.contains(name.lowercased()) else {
                throw EmailMessage.Invalid(.reservedHeader(name))
            }
            guard !value.unicodeScalars.contains(where: { $0.isControl && $0 != "\t" }) else {
                throw EmailMessage.Invalid(.controlCharacterInHeader(name))
            }
            self.name = name
            self.value = value
        }
    }

    /// Why a message cannot be built. Names the field, never its value.
    public struct Invalid: Error, Sendable, Hashable, CustomStringConvertible {
        public enum Reason: Sendable, Hashable {
            case noRecipients
            case noBody
            case invalidHeaderName
            /// The header is one `EmailMessage` writes itself (its name is given, not its value).
            case reservedHeader(String)
            case controlCharacterInHeader(String)
            case controlCharacterInSubject
            case controlCharacterInDisplayName
            case invalidMessageID
        }

        public let reason: Reason

        init(_ reason: Reason) { self.reason = reason }

        public var description: String {
            switch reason {
            case .noRecipients: "e-mail message needs at least one recipient"
            case .noBody: "e-mail message needs a text body, an HTML body or both"
            case .invalidHeaderName: "extra header name is not a valid RFC 5322 field name"
            case .reservedHeader(let name): "extra header \(name) is written by the message itself"
            case .controlCharacterInHeader(let name): "extra header \(name) contains a line break or control character"
            case .controlCharacterInSubject: "subject contains a line break or control character"
            case .controlCharacterInDisplayName: "display name contains a line break or control character"
            case .invalidMessageID: "Message-ID must have the form <id@domain> without spaces"
            }
        }
    }

    public let from: Mailbox
    public let to: [Mailbox]
    public let replyTo: Mailbox?
    public let subject: String
    public let textBody: String?
    public let htmlBody: String?
    public let headers: [Header]
    /// The bounce address given in `MAIL FROM`; `from`'s address when nil.
    public let envelopeSender: EmailAddress?
    /// `<random@from-domain>` unless given, e.g. derived from an outbox id for idempotency.
    public let messageID: String
    public let date: Date

    /// - Parameters:
    ///   - to: at least one recipient; each receives the message (one `RCPT TO` each).
    ///   - textBody, htmlBody: at least one; with both, the message is `multipart/alternative`.
    ///   - messageID: in angle brackets, `<id@domain>`; generated when nil.
    public init(
        from: Mailbox,
        to: [Mailbox],
        replyTo: Mailbox? = nil,
        subject: String,
        textBody: String? = nil,
        htmlBody: String? = nil,
        headers: [Header] = [],
        envelopeSender: EmailAddress? = nil,
        messageID: String? = nil,
        date: Date = Date()
    ) throws(Invalid) {
        guard !to.isEmpty else { throw Invalid(.noRecipients) }
        guard textBody != nil || htmlBody != nil else { throw Invalid(.noBody) }
        guard !subject.unicodeScalars.contains(where: { $0.isControl && $0 != "\t" }) else {
            throw Invalid(.controlCharacterInSubject)
        }
        if let messageID {
            let bytes = Array(messageID.utf8)
            guard bytes.count >= 5, bytes.count <= 900, bytes.first == UInt8(ascii: "<"), bytes.last == UInt8(ascii: ">"),
                  bytes.filter({ $0 == UInt8(ascii: "@") }).count == 1,
                  bytes.dropFirst().dropLast().allSatisfy({ (33...126).contains($0) && $0 != UInt8(ascii: "<") && $0 != UInt8(ascii: ">") })
            else { throw Invalid(.invalidMessageID) }
        }
        self.from = from
        self.to = to
        self.replyTo = replyTo
        self.subject = subject
        self.textBody = textBody
        self.htmlBody = htmlBody
        self.headers = headers
        self.envelopeSender = envelopeSender
        self.messageID = messageID ?? Self.makeMessageID(domain: from.address.domain)
        self.date = date
    }

    /// `<32 random hex digits@domain>`.
    public static func makeMessageID(domain: String) -> String {
        "<\(randomHex(byteCount: 16))@\(domain)>"
    }

    /// The addresses given to `RCPT TO`, in order.
    public var recipients: [EmailAddress] { to.map(\.address) }

    public var description: String { "EmailMessage(\(messageID), \(to.count) recipient(s))" }
    public var debugDescription: String { description }
}

extension EmailAddress {
    /// The part after the `@`.
    var domain: String {
        String(normalized[normalized.index(after: normalized.lastIndex(of: "@")!)...])
    }
}

func randomHex(byteCount: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    return (0..<byteCount).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexEncoded
}

extension Unicode.Scalar {
    /// C0 and C1 controls and DEL.
    var isControl: Bool { value < 0x20 || (0x7F...0x9F).contains(value) }
}
