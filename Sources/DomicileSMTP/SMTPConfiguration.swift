import NIOCore
import NIOSSL

/// Where and how to reach an SMTP server (a provider's submission endpoint, or a relay).
public struct SMTPConfiguration: Sendable {
    /// How the connection is encrypted.
    public enum TLSMode: Sendable, Hashable {
        /// Plain text throughout. Only for a relay on the same host or network segment.
        case none
        /// Upgrade with STARTTLS (RFC 3207) and refuse to go on when the server does not offer it.
        case startTLS
        /// Upgrade with STARTTLS when the server offers it, otherwise go on in plain text.
        case startTLSIfAvailable
        /// TLS from the first byte ("SMTPS", RFC 8314), usually on port 465.
        case implicit
    }

    /// The SASL mechanisms this client speaks (RFC 4954).
    public enum AuthenticationMechanism: String, Sendable, Hashable, CaseIterable {
        /// RFC 4616, sent as an initial response: one round trip.
        case plain = "PLAIN"
        /// The de-facto LOGIN mechanism: username and password in two challenges.
        case login = "LOGIN"
    }

    /// A username and password for AUTH. Never printed.
    public struct Credentials: Sendable, CustomStringConvertible, CustomDebugStringConvertible {
        public var username: String
        public var password: String
        /// In order of preference; the first one the server advertises is used.
        public var mechanisms: [AuthenticationMechanism]

        public init(username: String, password: String, mechanisms: [AuthenticationMechanism] = [.plain, .login]) {
            self.username = username
            self.password = password
            self.mechanisms = mechanisms
        }

        public var description: String { "Credentials(redacted, mechanisms: \(mechanisms.map(\.rawValue)))" }
        public var debugDescription: String { description }
    }

    /// How long to wait. RFC 5321 §4.5.3.2 suggests minutes; a dispatcher that retries prefers
    /// to give up sooner and try again.
    public struct Timeouts: Sendable, Hashable {
        /// For the TCP connection (and, with `.implicit`, not the handshake: that is `command`).
        public var connect: Duration
        /// For each reply: the greeting, EHLO, AUTH, MAIL, RCPT, DATA, RSET.
        public var command: Duration
        /// For the reply after the message content, while the server scans and queues the message.
        public var dataTermination: Duration

        public init(connect: Duration = .seconds(10), command: Duration = .seconds(60), dataTermination: Duration = .seconds(180)) {
            self.connect = connect
            self.command = command
            self.dataTermination = dataTermination
        }
    }

    public var host: String
    public var port: Int
    public var tlsMode: TLSMode
    public var credentials: Credentials?
    /// The name sent with EHLO/HELO: this machine's fully-qualified name, or an address literal
    /// such as `[192.0.2.1]`. Providers may refuse a bare `localhost`.
    public var heloName: String
    public var timeouts: Timeouts
    /// Trust roots, minimum version, client certificate… Tests trust a self-signed certificate here.
    public var tlsConfiguration: TLSConfiguration
    /// The name to verify the certificate against and to send as SNI; `host` when nil, unless
    /// `host` is an IP address, in which case the certificate is checked against that address.
    public var tlsServerName: String?
    /// Whether credentials may be sent over a connection that is not encrypted. Off by default:
    /// with `.startTLSIfAvailable`, a server that stops offering STARTTLS would otherwise receive
    /// the password in clear.
    public var allowsAuthenticationWithoutTLS: Bool

    /// - Parameter port: 465 for `.implicit`, 587 otherwise, when nil.
    public init(
        host: String,
        port: Int? = nil,
        tlsMode: TLSMode = .startTLS,
        credentials: Credentials? = nil,
        heloName: String = "localhost",
        timeouts: Timeouts = Timeouts(),
        tlsConfiguration: TLSConfiguration = .makeClientConfiguration(),
        tlsServerName: String? = nil,
        allowsAuthenticationWithoutTLS: Bool = false
    ) {
        self.host = host
        self.port = port ?? (tlsMode == .implicit ? 465 : 587)
        self.tlsMode = tlsMode
        self.credentials = credentials
        self.heloName = heloName
        self.timeouts = timeouts
        self.tlsConfiguration = tlsConfiguration
        self.tlsServerName = tlsServerName
        self.allowsAuthenticationWithoutTLS = allowsAuthenticationWithoutTLS
    }

    /// The SNI and verification name: nil for an IP address, which NIOSSL then verifies as such.
    var effectiveTLSServerName: String? {
        if let tlsServerName { return tlsServerName }
        let isIPAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        return isIPAddress ? nil : host
    }
}
