import Crypto
import DomicileCore
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Who receives providers' callbacks: the node's vault, or the brand's relay (client mode).
public protocol CallbackTarget: Sendable {
    /// Whether callbacks for this workspace are taken here.
    func knows(_ workspace: WorkspaceID) async throws -> Bool
    /// A channel's provider, whose settings hold the secrets callbacks are signed with.
    func provider(_ workspace: WorkspaceID, channel: DomicileCore.Channel) async throws -> (kind: String, settings: [String: String])?
    @discardableResult
    func applyProviderStatus(_ reference: Vault.ProviderReference, status: MessageStatus, errorCode: String?, workspace: WorkspaceID)
        async throws -> Bool
}

extension Vault: CallbackTarget {
    public func knows(_ workspace: WorkspaceID) async throws -> Bool { try await self.workspace(workspace) != nil }
}

extension DomicileAPI {
    /// Providers' callbacks alone at `/v1/callbacks/{provider}/{ws}`, each checked and mapped as a
    /// node does, then handed to `target`: the relay's listener.
    public static func callbackRouter(target: any CallbackTarget) -> Router<DomicileRequestContext> {
        let router = Router(context: DomicileRequestContext.self)
        router.add(middleware: RequestLogMiddleware())
        HealthController.addLiveness(to: router)
        CallbackController(target: target).addRoutes(to: router.group("v1/callbacks"))
        return router
    }
}

/// Provider status callbacks at `/v1/callbacks/{provider}/{ws}`: each checked against the
/// provider's own signature scheme (401 when unsigned or badly signed), mapped to one status
/// vocabulary, stripped of the address it carries. `GET` on the same path answers the WhatsApp
/// Cloud API's subscription handshake.
struct CallbackController {
    /// The node's vault, or in client mode the brand's relay, which holds the providers' settings.
    let target: any CallbackTarget

    struct Done: Encodable { var status = "success" }

    func addRoutes(to router: RouterGroup<DomicileRequestContext>) {
        router.post(":provider/:workspace", use: receive)
        // Not a static `whatsapp` segment: Hummingbird resolves the path before the method, so a
        // GET-only `…/whatsapp/:workspace` would take WhatsApp's status POSTs and answer them 404.
        router.get(":provider/:workspace", use: verifySubscription)
    }

    static let unsigned = Failure(.unauthorized, "missing or invalid provider signature")

    /// Status reports are small; WhatsApp batches several in one body.
    static let maximumBody = 256 * 1024

    @Sendable func receive(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let provider = try context.parameters.require("provider")
        guard let workspaceID = try? WorkspaceID(validating: try context.parameters.require("workspace")),
              try await target.knows(workspaceID)
        else { throw Self.unsigned }
        var request = request
        let body = Array(buffer: try await JSONBody.collect(&request, upTo: Self.maximumBody))
        switch provider {
        case "twilio": try await twilio(request, body: body, workspace: workspaceID)
        case "whatsapp": try await whatsapp(request, body: body, workspace: workspaceID)
        case "private_ssp": try await privateSSP(request, body: body, workspace: workspaceID)
        default: throw Failure(.notFound, attribute: "provider", "no such provider: twilio, whatsapp or private_ssp")
        }
        return JSONResponse.make(Done())
    }

    /// Whether the settings of some provider of this kind in the workspace vouch for a request.
    /// Every one is tried: a workspace may use one kind on several channels with different
    /// accounts (Twilio for SMS with one account, for WhatsApp with another), and each account
    /// signs the callbacks of the messages it sent.
    func anyProvider(_ kind: String, workspace: WorkspaceID, vouches: ([String: String]) -> Bool) async throws -> Bool {
        for channel in Channel.allCases {
            if let provider = try await target.provider(workspace, channel: channel), provider.kind == kind, vouches(provider.settings) {
                return true
            }
        }
        return false
    }

    /// A setting that holds a secret; an empty one is no secret at all, so it counts as not set.
    static func secret(_ settings: [String: String], _ name: String) -> String? {
        guard let value = settings[name], !value.isEmpty else { return nil }
        return value
    }

    /// Lower-case hex HMAC-SHA256 of the raw body, as WhatsApp and the private SSP sign it.
    static func hexHMAC(_ body: [UInt8], secret: String) -> String {
        HMAC<SHA256>.authenticationCode(for: body, using: SymmetricKey(data: Array(secret.utf8))).hexEncoded
    }

    // MARK: WhatsApp Cloud API subscription: GET ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…

    /// Meta's challenges are numbers; nothing longer or richer is echoed, so the route cannot be
    /// made to reflect content of a caller's choosing.
    static let challengeCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
    static let maximumChallengeLength = 128

    /// Meta calls the callback URL once, when it is set in the app, and expects the challenge back
    /// as plain text when the verify token is the one configured (`verify_token` of a
    /// `whatsapp_cloud` provider of the workspace), else 403.
    @Sendable func verifySubscription(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        guard try context.parameters.require("provider") == "whatsapp" else {
            throw Failure(.notFound, attribute: "provider", "only whatsapp has a subscription handshake")
        }
        let query = request.uri.queryParameters
        guard let mode = query["hub.mode"] else { throw Failure(.missingAttribute, attribute: "hub.mode", "hub.mode is required") }
        guard mode == "subscribe" else { throw Failure(.attribute, attribute: "hub.mode", "hub.mode must be subscribe") }
        guard let challenge = query["hub.challenge"] else {
            throw Failure(.missingAttribute, attribute: "hub.challenge", "hub.challenge is required")
        }
        guard (1...Self.maximumChallengeLength).contains(challenge.count), challenge.allSatisfy(Self.challengeCharacters.contains) else {
            throw Failure(.attribute, attribute: "hub.challenge",
                          "hub.challenge must be 1 to \(Self.maximumChallengeLength) letters, digits, '_' or '-'")
        }
        // One answer for an unknown workspace, no token configured and a wrong token.
        guard let token = query["hub.verify_token"].map(String.init), !token.isEmpty,
              let workspaceID = try? WorkspaceID(validating: try context.parameters.require("workspace")),
              try await target.knows(workspaceID),
              try await anyProvider("whatsapp_cloud", workspace: workspaceID, vouches: { settings in
                  Self.secret(settings, "verify_token").map { ConstantTime.equals($0, token) } ?? false
              })
        else {
            throw Failure(.forbidden, attribute: "hub.verify_token", "hub.verify_token is not the verify_token of this workspace's WhatsApp provider")
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                        body: .init(byteBuffer: ByteBuffer(substring: challenge)))
    }

    // MARK: Twilio: form POST, X-Twilio-Signature = base64(HMAC-SHA1(auth token, URL + sorted key/value pairs))

    static func twilioSignature(url: String, parameters: [(String, String)], authToken: String) -> String {
        let data = url + parameters.sorted { $0.0 < $1.0 }.map { $0.0 + $0.1 }.joined()
        let mac = HMAC<Insecure.SHA1>.authenticationCode(for: Array(data.utf8), using: SymmetricKey(data: Array(authToken.utf8)))
        return Data(mac).base64EncodedString()
    }

    func twilio(_ request: Request, body: [UInt8], workspace: WorkspaceID) async throws {
        guard let signature = request.headers[HTTPField.Name("X-Twilio-Signature")!] else { throw Self.unsigned }
        let fields = FormURLEncoded.fields(body)
        guard try await anyProvider("twilio", workspace: workspace, vouches: { settings in
            guard let token = Self.secret(settings, "auth_token"), let url = settings["status_callback"] else { return false }
            return ConstantTime.equals(Self.twilioSignature(url: url, parameters: fields, authToken: token), signature)
        }) else { throw Self.unsigned }
        let values = Dictionary(fields, uniquingKeysWith: { first, _ in first })
        guard let sid = values["MessageSid"], let raw = values["MessageStatus"] else {
            throw Failure(.missingAttribute, attribute: "MessageSid", "MessageSid and MessageStatus are required")
        }
        let code = values["ErrorCode"].flatMap { $0.isEmpty ? nil : $0 }
        guard let status = Self.twilioStatus(raw, errorCode: code) else { return }
        try await target.applyProviderStatus(.providerMessageID(sid), status: status, errorCode: code, workspace: workspace)
    }

    /// Twilio's error codes that say the number itself cannot receive: 30003 unreachable
    /// destination handset, 30005 unknown destination handset, 30006 landline or unreachable carrier.
    static let twilioBounceCodes: Set<String> = ["30003", "30005", "30006"]

    /// Maps Twilio's `MessageStatus`; nil for queued, accepted and sending, which Domicile's own
    /// `sent` already covers.
    static func twilioStatus(_ reported: String, errorCode: String?) -> MessageStatus? {
        switch reported {
        case "undelivered", "failed": errorCode.map(twilioBounceCodes.contains) == true ? .bounced : .failed
        case "canceled": .failed
        default: reachedStatus(reported)
        }
    }

    /// The reports every provider names alike.
    static func reachedStatus(_ reported: String) -> MessageStatus? {
        switch reported {
        case "sent": .sent
        case "delivered": .delivered
        case "read": .read
        default: nil
        }
    }

    // MARK: WhatsApp Cloud API: X-Hub-Signature-256 = "sha256=" + hex(HMAC-SHA256(app secret, body))

    struct WhatsAppWebhook: Decodable {
        struct Entry: Decodable { var changes: [Change]? }
        struct Change: Decodable { var value: Value? }
        struct Value: Decodable { var statuses: [StatusReport]? }
        struct StatusReport: Decodable {
            struct Failure: Decodable { var code: Int? }
            var id: String
            var status: String
            var errors: [Failure]?
        }
        var entry: [Entry]?
    }

    func whatsapp(_ request: Request, body: [UInt8], workspace: WorkspaceID) async throws {
        guard let signature = request.headers[HTTPField.Name("X-Hub-Signature-256")!],
              try await anyProvider("whatsapp_cloud", workspace: workspace, vouches: { settings in
                  Self.secret(settings, "app_secret").map { ConstantTime.equals("sha256=" + Self.hexHMAC(body, secret: $0), signature) } ?? false
              })
        else { throw Self.unsigned }
        guard let webhook = try? JSONDecoder().decode(WhatsAppWebhook.self, from: Data(body)) else {
            throw Failure(.malformedJSON, "webhook body is not the WhatsApp status shape")
        }
        for report in (webhook.entry ?? []).flatMap({ $0.changes ?? [] }).flatMap({ $0.value?.statuses ?? [] }) {
            let code = report.errors?.first?.code
            guard let status = Self.whatsappStatus(report.status, errorCode: code) else { continue }
            try await target.applyProviderStatus(.providerMessageID(report.id), status: status, errorCode: code.map(String.init),
                                                workspace: workspace)
        }
    }

    /// 131026, message undeliverable: the number is not on WhatsApp or cannot receive.
    static let whatsappBounceCode = 131026

    /// Maps a Cloud API status; nil for the others (inbound messages' statuses, new ones).
    static func whatsappStatus(_ reported: String, errorCode: Int?) -> MessageStatus? {
        guard reported == "failed" else { return reachedStatus(reported) }
        return errorCode == whatsappBounceCode ? .bounced : .failed
    }

    // MARK: Private SSP: X-Signature = hex(HMAC-SHA256(callback secret, body))

    struct SSPStatus: Decodable {
        var messageId: String
        var status: String
        var statusCode: Int?
    }

    func privateSSP(_ request: Request, body: [UInt8], workspace: WorkspaceID) async throws {
        guard let signature = request.headers[HTTPField.Name("X-Signature")!],
              try await anyProvider("private_ssp", workspace: workspace, vouches: { settings in
                  Self.secret(settings, "callback_secret").map { ConstantTime.equals(Self.hexHMAC(body, secret: $0), signature) } ?? false
              })
        else { throw Self.unsigned }
        guard let report = try? JSONDecoder().decode(SSPStatus.self, from: Data(body)) else {
            throw Failure(.malformedJSON, "callback body is not the private SSP status shape")
        }
        // 2003: invalid number, the address itself (a bounce); other codes: the message failed.
        let status: MessageStatus = switch report.status {
        case "sms_sent", "sms_delivered": report.statusCode == nil || report.statusCode == 0 ? .delivered : .failed
        default: report.statusCode == 2003 ? .bounced : .failed
        }
        let code = report.statusCode.flatMap { $0 == 0 ? nil : String($0) }
        try await target.applyProviderStatus(.messageID(report.messageId), status: status, errorCode: code, workspace: workspace)
    }
}
