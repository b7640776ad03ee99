/// An RFC 3463 enhanced status code, such as `5.1.1` (bad destination mailbox).
///
/// Carries no value from the message: it is three numbers, safe to log and to store.
public struct EnhancedStatusCode: Sendable, Hashable, CustomStringConvertible {
    /// 2 (success), 4 (persistent transient failure) or 5 (permanent failure).
    public let statusClass: Int
    public let subject: Int
    public let detail: Int

    public init(statusClass: Int, subject: Int, detail: Int) {
        self.statusClass = statusClass
        self.subject = subject
        self.detail = detail
    }

    /// Reads `class.subject.detail` from the start of a reply line (`"5.1.1 <…> unknown"`), or nil.
    init?(prefixOf text: Substring) {
        let token = text.prefix { $0 != " " }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3,
              parts[0].count == 1, let statusClass = Int(parts[0]), [2, 4, 5].contains(statusClass),
              (1...3).contains(parts[1].count), let subject = Int(parts[1]),
              (1...3).contains(parts[2].count), let detail = Int(parts[2])
        else { return nil }
        self.init(statusClass: statusClass, subject: subject, detail: detail)
    }

    public var description: String { "\(statusClass).\(subject).\(detail)" }
}

/// Why a connection or a send failed.
///
/// `description` says what failed and where, with the reply code and the enhanced status code,
/// and nothing else: never an address, a header or message text. SMTP servers often echo the
/// recipient in their reply text (`550 5.1.1 <jane@example.com>: Recipient address rejected`),
/// so that text is kept out of `description` and out of every public property; it appears only in
/// `debugDescription`, which may therefore contain personal data and must not be logged or stored
/// outside the vault.
public struct SMTPError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    public enum Kind: String, Sendable, Hashable {
        /// The server answered with a failure reply; `replyCode` says which.
        case rejected
        /// No TCP connection could be made (refused, unreachable, name not resolved).
        case connectionFailed
        /// The server closed the connection, or the connection was already closed.
        case connectionClosed
        /// The server did not answer within the configured timeout.
        case timedOut
        /// `.startTLS` was required and the server does not offer STARTTLS.
        case tlsUnavailable
        /// The TLS handshake failed (for instance, an untrusted certificate).
        case tlsFailed
        /// Credentials are configured, but the server offers none of their mechanisms, or the
        /// connection is not encrypted and authentication without TLS is not allowed.
        case authenticationUnavailable
        /// The server's answer was not an SMTP reply, or not one that fits the command.
        case protocolViolation
        /// The configuration cannot be used (for instance, a TLS configuration that does not load).
        case invalidConfiguration
        /// The task that was sending was cancelled; the connection was closed.
        case cancelled
    }

    /// The step of the SMTP dialogue that failed.
    public enum Stage: String, Sendable, Hashable {
        case connect
        case greeting
        case hello = "EHLO"
        case startTLS = "STARTTLS"
        case authentication = "AUTH"
        case sender = "MAIL FROM"
        case recipient = "RCPT TO"
        case data = "DATA"
        /// The end of the message content: the server's verdict on the message itself.
        case content = "end of data"
        case reset = "RSET"
    }

    public let kind: Kind
    public let stage: Stage
    /// The server's reply code (`550`), when the failure is a reply.
    public let replyCode: Int?
    /// The enhanced status code (`5.1.1`), when the server sent one.
    public let enhancedStatus: EnhancedStatusCode?
    /// Which of `EmailMessage.recipients` the server refused (its index), for `.recipient` failures.
    public let recipientIndex: Int?
    /// Whether sending again later may succeed: 4xx replies and connection-level failures.
    /// A dispatcher retries these with backoff.
    public let isTransient: Bool
    /// Whether sending again will fail the same way: 5xx replies and unusable configuration.
    /// A dispatcher dead-letters these.
    public var isPermanent: Bool { !isTransient }

    /// The server's own words. May contain an address or message text: `debugDescription` only.
    let serverText: String?
    /// The lower layer's error (NIO, TLS), for `debugDescription` only.
    let underlying: String?

    init(
        _ kind: Kind, stage: Stage, replyCode: Int? = nil, enhancedStatus: EnhancedStatusCode? = nil,
        recipientIndex: Int? = nil, isTransient: Bool, serverText: String? = nil, underlying: (any Error)? = nil
    ) {
        self.kind = kind
        self.stage = stage
        self.replyCode = replyCode
        self.enhancedStatus = enhancedStatus
        self.recipientIndex = recipientIndex
        self.isTransient = isTransient
        self.serverText = serverText
        self.underlying = underlying.map { String(reflecting: $0) }
    }

    /// A failure reply. Transient for 4xx, permanent for 5xx; any other code where a failure was
    /// expected is a protocol violation, treated as transient.
    init(reply: SMTPReply, stage: Stage, recipientIndex: Int? = nil) {
        let isFailure = (400..<600).contains(reply.code)
        self.init(
            isFailure ? .rejected : .protocolViolation, stage: stage,
            replyCode: reply.code, enhancedStatus: reply.enhancedStatus, recipientIndex: recipientIndex,
            isTransient: !(500..<600).contains(reply.code), serverText: reply.text
        )
    }

    /// Whether the connection can carry another transaction after this failure.
    var leavesConnectionUsable: Bool {
        kind == .rejected && replyCode != 421
    }

    public var description: String {
        var text = "SMTP \(stage.rawValue) failed: "
        switch kind {
        case .rejected: text += "server replied"
        case .connectionFailed: text += "could not connect"
        case .connectionClosed: text += "connection closed"
        case .timedOut: text += "timed out waiting for the server"
        case .tlsUnavailable: text += "TLS is required but the server does not offer STARTTLS"
        case .tlsFailed: text += "TLS handshake failed"
        case .authenticationUnavailable: text += "authentication is not possible with this server or connection"
        case .protocolViolation: text += "unexpected reply"
        case .invalidConfiguration: text += "invalid configuration"
        case .cancelled: text += "cancelled"
        }
        if let replyCode { text += " \(replyCode)" }
        if let enhancedStatus { text += " \(enhancedStatus)" }
        if let recipientIndex { text += " (recipient #\(recipientIndex))" }
        text += isTransient ? " [transient]" : " [permanent]"
        return text
    }

    /// `description` plus the server's reply text and the underlying error.
    /// - Warning: the server's text may echo a recipient address: do not log or store this.
    public var debugDescription: String {
        var text = description
        if let serverText { text += "; server said: \(serverText)" }
        if let underlying { text += "; underlying: \(underlying)" }
        return text
    }
}
