import AsyncHTTPClient
import DomicileCore
import DomicileVault
import Foundation
import NIOCore
import NIOHTTP1

/// What became of one hand-over to a provider.
public enum ProviderOutcome: Sendable, Equatable {
    /// The provider took the message; its id is how its callbacks will name it.
    case accepted(providerMessageID: String)
    /// Worth another attempt later (5xx, 429, a timeout, a connection refused).
    case transient(code: String)
    /// Will not work however often it is tried (4xx, invalid number, authentication).
    case permanent(code: String)
    /// The recipient's address was refused for good (an SMTP 5xx at RCPT TO): it cannot receive.
    case bounced(code: String)
}

/// A provider of one channel, configured for one workspace.
public protocol MessageProvider: Sendable {
    /// Outbound connections go to this host only, checked against the workspace's egress allowlist before each.
    var endpoint: EgressEndpoint { get }
    var kind: ProviderKind { get }
    func send(_ payload: OutboxPayload, message: OutboxMessage) async -> ProviderOutcome
}

public struct ProviderSettingsError: Error, CustomStringConvertible {
    public let description: String
}

func setting(_ settings: [String: String], _ key: String) throws -> String {
    guard let value = settings[key], !value.isEmpty else { throw ProviderSettingsError(description: "provider setting \(key) is required") }
    return value
}

/// POSTs through the shared HTTP client and classifies the answer the way every HTTP provider does.
struct HTTPPost {
    let client: HTTPClient

    func post(_ url: String, headers: [(String, String)], body: [UInt8]) async -> (status: UInt, body: [UInt8])? {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        do {
            let response = try await client.execute(request, timeout: .seconds(15))
            let answer = try await response.body.collect(upTo: 256 * 1024)
            return (response.status.code, Array(buffer: answer))
        } catch {
            return nil
        }
    }

    static func classify(_ status: UInt, code: String) -> ProviderOutcome {
        status == 429 || status >= 500 ? .transient(code: code) : .permanent(code: code)
    }
}

/// The brand's own SMS endpoint, by the private SSP contract.
struct PrivateSSPProvider: MessageProvider {
    var kind: ProviderKind { .privateSSP }
    let url: String
    let fromNumber: String
    let campaignType: String
    let http: HTTPPost
    let endpoint: EgressEndpoint

    init(settings: [String: String], client: HTTPClient) throws {
        url = try setting(settings, "url")
        endpoint = try ProviderKind.privateSSP.endpoint(settings: settings)
        fromNumber = settings["from"] ?? ""
        campaignType = settings["campaign_type"] ?? "TRANSACTIONAL"
        http = HTTPPost(client: client)
    }

    /// The contract's request: `{"version":"1.0","smsData":{…},"metadata":{…}}`.
    func request(_ payload: OutboxPayload, message: OutboxMessage, at date: Date) -> [UInt8] {
        var json = JSONWriter(capacity: 256 + (payload.text?.utf8.count ?? 0))
        json.beginObject()
        json.key("version")
        json.string("1.0")
        json.key("smsData")
        json.beginObject()
        json.key("toNumber")
        json.string(payload.to)
        json.key("fromNumber")
        json.string(fromNumber)
        json.key("body")
        json.string(payload.text ?? "")
        json.endObject()
        json.key("metadata")
        json.beginObject()
        json.key("messageId")
        json.string(message.messageID)
        json.key("campaignType")
        json.string(campaignType)
        json.key("timestamp")
        json.string(Timestamp.format(date))
        json.key("custom")
        json.beginObject()
        if let campaign = message.campaignID {
            json.key("campaign_id")
            json.string(campaign)
        }
        json.endObject()
        json.endObject()
        json.endObject()
        return json.bytes
    }

    func send(_ payload: OutboxPayload, message: OutboxMessage) async -> ProviderOutcome {
        guard let answer = await http.post(url, headers: [("Content-Type", "application/json")],
                                           body: request(payload, message: message, at: Date()))
        else { return .transient(code: "connection") }
        // `{"status": "sms_accepted" | "sms_rejected", "statusCode": …}`
        let decoded = try? JSONParser.parse(answer.body)
        let status: String? = if case .string(let value)? = decoded?["status"] { value } else { nil }
        if (200..<300).contains(answer.status), status == "sms_accepted" {
            return .accepted(providerMessageID: message.messageID)
        }
        if status == "sms_rejected" {
            let statusCode: Int? = switch decoded?["statusCode"] {
            case .integer(let value)?: Int(exactly: value)
            case .string(let value)?: Int(value)
            default: nil
            }
            let code = statusCode ?? 9988
            // 2015 (throttled) and 2000 (no credit) can pass; 2003 (invalid number) is the
            // address itself; the others will not pass either.
            if code == 2003 { return .bounced(code: "2003") }
            return code == 2015 || code == 2000 ? .transient(code: String(code)) : .permanent(code: String(code))
        }
        return HTTPPost.classify(answer.status, code: "http_\(answer.status)")
    }
}

/// Twilio Programmable Messaging, for SMS and WhatsApp.
struct TwilioProvider: MessageProvider {
    var kind: ProviderKind { .twilio }
    let baseURL: String
    let accountSID: String
    let authToken: String
    let from: String?
    let messagingServiceSID: String?
    let statusCallback: String?
    let whatsapp: Bool
    let http: HTTPPost
    let endpoint: EgressEndpoint

    init(settings: [String: String], channel: DomicileCore.Channel, client: HTTPClient) throws {
        baseURL = settings["base_url"] ?? ProviderKind.defaultTwilioBaseURL
        endpoint = try ProviderKind.twilio.endpoint(settings: settings)
        accountSID = try setting(settings, "account_sid")
        authToken = try setting(settings, "auth_token")
        from = settings["from"]
        messagingServiceSID = settings["messaging_service_sid"]
        guard from != nil || messagingServiceSID != nil else {
            throw ProviderSettingsError(description: "Twilio needs from or messaging_service_sid")
        }
        statusCallback = settings["status_callback"]
        whatsapp = channel == .whatsapp
        http = HTTPPost(client: client)
    }

    static func formEncode(_ fields: [(String, String)]) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~")
        return fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: allowed) ?? "")" }.joined(separator: "&")
    }

    func send(_ payload: OutboxPayload, message: OutboxMessage) async -> ProviderOutcome {
        let prefix = whatsapp ? "whatsapp:" : ""
        var fields = [("To", prefix + payload.to), ("Body", payload.text ?? "")]
        if let messagingServiceSID { fields.append(("MessagingServiceSid", messagingServiceSID)) } else if let from { fields.append(("From", prefix + from)) }
        if let statusCallback { fields.append(("StatusCallback", statusCallback)) }
        let credentials = Data("\(accountSID):\(authToken)".utf8).base64EncodedString()
        guard let answer = await http.post("\(baseURL)/2010-04-01/Accounts/\(accountSID)/Messages.json",
                                           headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Authorization", "Basic \(credentials)")],
                                           body: Array(Self.formEncode(fields).utf8))
        else { return .transient(code: "connection") }
        // A message resource `{"sid": "SM…", "status": "queued", …}`, or an error
        // `{"code": 21211, "message": …, "status": 400}` (its `status` is a number there).
        let decoded = try? JSONParser.parse(answer.body)
        if (200..<300).contains(answer.status), case .string(let sid)? = decoded?["sid"] { return .accepted(providerMessageID: sid) }
        let code: Int64? = if case .integer(let value)? = decoded?["code"] { value } else { nil }
        // 21211: the 'To' number is not a valid phone number; 21614: it is not a mobile number.
        if let code, [21211, 21614].contains(code) { return .bounced(code: String(code)) }
        return HTTPPost.classify(answer.status, code: code.map(String.init) ?? "http_\(answer.status)")
    }
}

/// The WhatsApp Cloud API.
struct WhatsAppCloudProvider: MessageProvider {
    var kind: ProviderKind { .whatsappCloud }
    let baseURL: String
    let phoneNumberID: String
    let accessToken: String
    let http: HTTPPost
    let endpoint: EgressEndpoint

    init(settings: [String: String], client: HTTPClient) throws {
        baseURL = settings["base_url"] ?? ProviderKind.defaultWhatsAppBaseURL
        endpoint = try ProviderKind.whatsappCloud.endpoint(settings: settings)
        phoneNumberID = try setting(settings, "phone_number_id")
        accessToken = try setting(settings, "access_token")
        http = HTTPPost(client: client)
    }

    struct Answer: Decodable {
        struct Message: Decodable { var id: String }
        struct Failure: Decodable { var code: Int? }
        var messages: [Message]?
        var error: Failure?
    }

    func send(_ payload: OutboxPayload, message: OutboxMessage) async -> ProviderOutcome {
        var body: [String: JSONValue] = ["messaging_product": .string("whatsapp"), "recipient_type": .string("individual"),
                                         "to": .string(String(payload.to.drop(while: { $0 == "+" })))]
        if let name = payload.templateName {
            var template: [String: JSONValue] = ["name": .string(name), "language": .object(["code": .string(payload.templateLanguage ?? "en")])]
            if let parameters = payload.templateParameters, !parameters.isEmpty {
                template["components"] = .array([.object(["type": .string("body"), "parameters": .array(parameters.map {
                    .object(["type": .string("text"), "text": .string($0)])
                })])])
            }
            body["type"] = .string("template")
            body["template"] = .object(template)
        } else {
            body["type"] = .string("text")
            body["text"] = .object(["body": .string(payload.text ?? "")])
        }
        var encoded = JSONWriter()
        encoded.value(.object(body))
        guard let answer = await http.post("\(baseURL)/\(phoneNumberID)/messages",
                                           headers: [("Content-Type", "application/json"), ("Authorization", "Bearer \(accessToken)")],
                                           body: encoded.bytes)
        else { return .transient(code: "connection") }
        let decoded = try? JSONDecoder().decode(Answer.self, from: Data(answer.body))
        if (200..<300).contains(answer.status), let id = decoded?.messages?.first?.id { return .accepted(providerMessageID: id) }
        let code = decoded?.error?.code
        // Throttling codes of the Cloud API are worth a retry.
        if let code, [4, 80007, 130429, 131056].contains(code) { return .transient(code: String(code)) }
        return HTTPPost.classify(answer.status, code: code.map(String.init) ?? "http_\(answer.status)")
    }
}
