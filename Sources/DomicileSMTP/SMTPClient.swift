import NIOCore
import NIOPosix
import NIOSSL

/// Sends e-mail through one SMTP server (RFC 5321), with STARTTLS or implicit TLS and AUTH
/// PLAIN/LOGIN.
///
/// ```swift
/// let client = try SMTPClient(configuration: .init(host: "smtp.provider.example", tlsMode: .startTLS,
///                                                   credentials: .init(username: "u", password: "p"),
///                                                   heloName: "vault-1.example.com"))
/// let receipt = try await client.send(message)        // one connection for one message
///
/// let connection = try await client.connect()          // or many messages over one connection
/// for message in batch { _ = try await connection.send(message) }
/// await connection.close()
/// ```
///
/// Every failure is an `SMTPError` that says whether a retry may help (`isTransient`).
public struct SMTPClient: Sendable {
    public let configuration: SMTPConfiguration
    private let eventLoopGroup: any EventLoopGroup
    /// Built once: loading trust roots is too slow to repeat for every connection.
    private let sslContext: NIOSSLContext?

    /// - Throws: `SMTPError` of kind `.invalidConfiguration` when the TLS configuration does not
    ///   load or the HELO name is not a single printable ASCII word.
    public init(
        configuration: SMTPConfiguration,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
    ) throws(SMTPError) {
        let name = configuration.heloName.utf8
        guard !name.isEmpty, name.allSatisfy({ (33...126).contains($0) }) else {
            throw SMTPError(.invalidConfiguration, stage: .hello, isTransient: false)
        }
        if configuration.tlsMode == .none {
            sslContext = nil
        } else {
            do {
                sslContext = try NIOSSLContext(configuration: configuration.tlsConfiguration)
            } catch {
                throw SMTPError(.invalidConfiguration, stage: .connect, isTransient: false, underlying: error)
            }
        }
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup
    }

    /// Opens a session ready for `SMTPConnection.send(_:)`: greeted, upgraded to TLS and
    /// authenticated as configured.
    public func connect() async throws(SMTPError) -> SMTPConnection {
        try await SMTPConnection.open(configuration: configuration, sslContext: sslContext, group: eventLoopGroup)
    }

    /// Sends one message over a connection of its own, closed afterwards.
    public func send(_ message: EmailMessage) async throws(SMTPError) -> SMTPReceipt {
        let connection = try await connect()
        do {
            let receipt = try await connection.send(message)
            await connection.close()
            return receipt
        } catch {
            await connection.close()
            throw error
        }
    }
}
