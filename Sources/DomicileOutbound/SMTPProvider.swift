import DomicileCore
import DomicileSMTP
import DomicileVault
import Foundation

/// E-mail through the workspace's SMTP server (RFC 5321, STARTTLS, AUTH PLAIN/LOGIN).
///
/// The Message-ID is derived from the outbox message id, so a message retried after a crash
/// carries the same id and receiving systems can drop the copy.
struct SMTPProvider: MessageProvider {
    var kind: ProviderKind { .smtp }
    let client: SMTPClient
    let from: EmailMessage.Mailbox
    let endpoint: EgressEndpoint

    init(settings: [String: String]) throws {
        endpoint = try ProviderKind.smtp.endpoint(settings: settings)
        let host = try setting(settings, "host")
        let mode: SMTPConfiguration.TLSMode
        switch settings["tls"] ?? "starttls" {
        case "none": mode = .none
        case "starttls": mode = .startTLS
        case "starttls_if_available": mode = .startTLSIfAvailable
        case "implicit": mode = .implicit
        default: throw ProviderSettingsError(description: "smtp tls must be none, starttls, starttls_if_available or implicit")
        }
        let credentials = settings["username"].map { SMTPConfiguration.Credentials(username: $0, password: settings["password"] ?? "") }
        let configuration = SMTPConfiguration(
            host: host, port: settings["port"].flatMap(Int.init), tlsMode: mode, credentials: credentials,
            heloName: settings["helo"] ?? "domicile.localdomain",
            allowsAuthenticationWithoutTLS: settings["allow_auth_without_tls"] == "true")
        do {
            client = try SMTPClient(configuration: configuration)
            from = try EmailMessage.Mailbox(try EmailAddress(validating: try setting(settings, "from")), displayName: settings["from_name"])
        } catch {
            throw ProviderSettingsError(description: "smtp settings are not usable")
        }
    }

    func send(_ payload: OutboxPayload, message: OutboxMessage) async -> ProviderOutcome {
        let email: EmailMessage
        do {
            email = try EmailMessage(
                from: from, to: [EmailMessage.Mailbox(try EmailAddress(validating: payload.to))], subject: payload.subject ?? "",
                textBody: payload.text, htmlBody: payload.html,
                messageID: "<\(message.messageID)@\(from.address.normalized.split(separator: "@").last ?? "domicile")>")
        } catch {
            return .permanent(code: "invalid_message")
        }
        do {
            let receipt = try await client.send(email)
            return .accepted(providerMessageID: receipt.messageID)
        } catch {
            let code = error.replyCode.map(String.init) ?? "smtp_\(error.stage.rawValue)"
            if Self.isBounce(error) { return .bounced(code: code) }
            return error.isTransient ? .transient(code: code) : .permanent(code: code)
        }
    }

    /// A permanent refusal of the recipient at RCPT TO (550 mailbox unavailable, 551, 553, 5.1.1
    /// bad mailbox, …) says the address cannot receive. Not a 5.7.x refusal or a 530 (relaying
    /// denied, authentication required, the sender blocked by policy): those are about this
    /// sender's setup, and reporting them as bounces would have the main data center suppress
    /// good addresses because of a misconfigured relay. They stay dead letters.
    static func isBounce(_ error: SMTPError) -> Bool {
        error.kind == .rejected && error.stage == .recipient && error.isPermanent
            && error.replyCode != 530 && error.enhancedStatus?.subject != 7
    }
}
