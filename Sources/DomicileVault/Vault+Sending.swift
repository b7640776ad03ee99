import Crypto
import DomicileCore
import Foundation
import Metrics

/// What one message of a send request asks for.
public struct MessageRequest: Sendable {
    public enum Content: Sendable {
        case email(subject: String, text: String?, html: String?)
        case text(String)
        case whatsappTemplate(name: String, language: String, parameters: [String])

        /// Every Mustache template of the content, with how it is rendered.
        var templateSources: [(source: String, flavour: MessageTemplate.Flavour)] {
            switch self {
            case .email(let subject, let text, let html):
                [(subject, .text)] + (text.map { [($0, .text)] } ?? []) + (html.map { [($0, .html)] } ?? [])
            case .text(let text): [(text, .text)]
            case .whatsappTemplate(_, _, let parameters): parameters.map { ($0, .text) }
            }
        }
    }

    public var messageID: String
    public var customerID: CustomerID
    public var channel: Channel
    public var campaignID: String?
    public var content: Content
    public var data: [String: JSONValue]

    static let idCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:-")

    /// Reads one message; a malformed one is refused naming the field, never echoing a value.
    public static func parse(_ json: JSONValue) throws(Failure) -> MessageRequest {
        guard case .object(let fields) = json else { throw Failure(.attribute, attribute: "messages", "each message must be a JSON object") }
        func string(_ key: String, required: Bool = true) throws(Failure) -> String? {
            switch fields[key] {
            case .string(let value)?: return value
            case nil, .null?:
                if required { throw Failure(.missingAttribute, attribute: key, "\(key) is required") }
                return nil
            default: throw Failure(.attribute, attribute: key, "\(key) must be a string")
            }
        }
        let messageID = try string("message_id")!
        guard (1...128).contains(messageID.count), messageID.allSatisfy({ idCharacters.contains($0) }) else {
            throw Failure(.attribute, attribute: "message_id", "message_id must be 1 to 128 characters of letters, digits, '.', '_', ':' or '-'")
        }
        let customerID = try CustomerID(validating: try string("customer_id")!, allowIdentifying: true)
        guard let channel = Channel(rawValue: try string("channel")!) else {
            throw Failure(.attribute, attribute: "channel", "channel must be email, sms or whatsapp")
        }
        let campaignID = try string("campaign_id", required: false)
        if let campaignID, campaignID.count > 128 { throw Failure(.attribute, attribute: "campaign_id", "campaign_id is longer than 128 characters") }
        var data: [String: JSONValue] = [:]
        switch fields["data"] {
        case nil, .null?: break
        case .object(let object)?:
            for (key, value) in object {
                switch value {
                case .string, .integer, .double, .bool, .null: data[key] = value
                default: throw Failure(.attribute, attribute: "data", "data values must be strings, numbers or booleans")
                }
            }
        default: throw Failure(.attribute, attribute: "data", "data must be a JSON object")
        }
        guard case .object(let content)? = fields["content"] else {
            throw Failure(.missingAttribute, attribute: "content", "content is required and must be an object")
        }
        func contentString(_ key: String) throws(Failure) -> String? {
            switch content[key] {
            case .string(let value)?: return value
            case nil, .null?: return nil
            default: throw Failure(.attribute, attribute: "content.\(key)", "content.\(key) must be a string")
            }
        }
        let parsed: Content
        switch channel {
        case .email:
            guard let subject = try contentString("subject") else {
                throw Failure(.missingAttribute, attribute: "content.subject", "an e-mail needs content.subject")
            }
            let text = try contentString("text"), html = try contentString("html")
            guard text != nil || html != nil else {
                throw Failure(.missingAttribute, attribute: "content.text", "an e-mail needs content.text, content.html or both")
            }
            parsed = .email(subject: subject, text: text, html: html)
        case .sms:
            guard let text = try contentString("text") else { throw Failure(.missingAttribute, attribute: "content.text", "an SMS needs content.text") }
            parsed = .text(text)
        case .whatsapp:
            if case .object(let template)? = content["template"] {
                guard case .string(let name)? = template["name"] else {
                    throw Failure(.missingAttribute, attribute: "content.template.name", "a WhatsApp template needs a name")
                }
                var language = "en"
                if case .string(let code)? = template["language"] { language = code }
                var parameters: [String] = []
                if case .array(let values)? = template["parameters"] {
                    for value in values {
                        guard case .string(let text) = value else {
                            throw Failure(.attribute, attribute: "content.template.parameters", "template parameters must be strings")
                        }
                        parameters.append(text)
                    }
                }
                parsed = .whatsappTemplate(name: name, language: language, parameters: parameters)
            } else if let text = try contentString("text") {
                parsed = .text(text)
            } else {
                throw Failure(.missingAttribute, attribute: "content.text", "a WhatsApp message needs content.text or content.template")
            }
        }
        return MessageRequest(messageID: messageID, customerID: customerID, channel: channel, campaignID: campaignID,
                              content: parsed, data: data)
    }
}

/// The fate of one message of a send request.
public struct MessageResult: Sendable {
    public var messageID: String?
    public var accepted: Bool
    public var duplicate = false
    public var status: MessageStatus?
    public var reason: MessageRefusal?
    /// Which field was wrong, for `invalid_message`.
    public var field: String?
    public var detail: String?
    public var segments: Int?
    public var encoding: String?
}

/// What a provider needs to deliver one message: the only place the address is in clear,
/// and it exists only in memory, between opening the outbox copy and the provider call.
public struct OutboxPayload: Sendable, Equatable {
    public var to: String
    public var subject: String?
    public var text: String?
    public var html: String?
    public var templateName: String?
    public var templateLanguage: String?
    public var templateParameters: [String]?

    public init(to: String, subject: String? = nil, text: String? = nil, html: String? = nil, templateName: String? = nil,
                templateLanguage: String? = nil, templateParameters: [String]? = nil) {
        self.to = to
        self.subject = subject
        self.text = text
        self.html = html
        self.templateName = templateName
        self.templateLanguage = templateLanguage
        self.templateParameters = templateParameters
    }

    /// The JSON object sealed into the outbox (absent fields are left out).
    public var json: [UInt8] {
        var writer = JSONWriter(capacity: 64 + to.utf8.count + (text?.utf8.count ?? 0) + (html?.utf8.count ?? 0))
        writer.beginObject()
        writer.key("to")
        writer.string(to)
        for (key, value) in [("subject", subject), ("text", text), ("html", html), ("templateName", templateName),
                             ("templateLanguage", templateLanguage)] {
            if let value {
                writer.key(key)
                writer.string(value)
            }
        }
        if let templateParameters {
            writer.key("templateParameters")
            writer.beginArray()
            for parameter in templateParameters { writer.string(parameter) }
            writer.endArray()
        }
        writer.endObject()
        return writer.bytes
    }

    /// Reads what `json` wrote; nil when it is not such an object.
    public init?(json bytes: some Sequence<UInt8>) {
        guard case .object(let object)? = try? JSONParser.parse(bytes), case .string(let to)? = object["to"] else { return nil }
        func string(_ key: String) -> String? {
            if case .string(let value)? = object[key] { value } else { nil }
        }
        self.init(to: to, subject: string("subject"), text: string("text"), html: string("html"),
                  templateName: string("templateName"), templateLanguage: string("templateLanguage"))
        if case .array(let parameters)? = object["templateParameters"] {
            templateParameters = parameters.compactMap { if case .string(let value) = $0 { value } else { nil } }
        }
    }
}

extension Vault {
    /// At most this many messages in one request (a campaign's slice).
    public static let maximumMessagesPerRequest = 1_000

    static func outboxAttribute(_ messageID: String) -> AttributeName { AttributeName(trusted: "_outbox:\(messageID)") }

    /// Checks, decrypts, renders and durably enqueues messages. Answers once every accepted
    /// message is on disk, sealed with its customer's data key.
    public func acceptMessages(_ items: [JSONValue], workspace: WorkspaceRecord, actor: Actor) async throws -> [MessageResult] {
        try actor.require(.send)
        var results = [MessageResult?](repeating: nil, count: items.count)
        var requests: [(index: Int, request: MessageRequest)] = []
        var firstIndex: [String: Int] = [:]
        var repeats: [(index: Int, first: Int)] = []
        for (index, item) in items.enumerated() {
            do {
                let request = try MessageRequest.parse(item)
                if let first = firstIndex[request.messageID] {
                    repeats.append((index, first))
                    continue
                }
                firstIndex[request.messageID] = index
                requests.append((index, request))
            } catch {
                results[index] = MessageResult(accepted: false, reason: .invalidMessage, field: error.attribute, detail: error.message)
            }
        }
        let workspaceID = workspace.id
        let client = workspace.protection == .client
        let existingMessages = try await store.messages(requests.map(\.request.messageID), workspace: workspaceID)
        let customers = try await store.customers(Array(Set(requests.map(\.request.customerID))), workspace: workspaceID)
        let keys = try await keyring.keys(for: workspaceID)
        var providers: [Channel: Bool] = [:]
        for channel in Set(requests.map(\.request.channel)) {
            providers[channel] = try await store.provider(workspace: workspaceID, channel: channel) != nil
        }
        let now = Date()
        var queued: [(index: Int, message: OutboxMessage, result: MessageResult)] = []
        // A campaign slice shares its templates: each distinct one is parsed once per request.
        var compiled: [TemplateKey: MessageTemplate] = [:]
        func template(_ source: String, _ flavour: MessageTemplate.Flavour) throws(Failure) -> MessageTemplate {
            let key = TemplateKey(source: source, html: flavour == .html)
            if let known = compiled[key] { return known }
            let parsed = try MessageTemplate(source, flavour: flavour)
            compiled[key] = parsed
            return parsed
        }
        for (position, (index, request)) in requests.enumerated() {
            // As in ingest: a batch of 1,000 takes tens of milliseconds; other connections get a turn.
            if position > 0 && position % Self.customersBetweenYields == 0 { await Task.yield() }
            func refuse(_ reason: MessageRefusal, field: String? = nil) {
                results[index] = MessageResult(messageID: request.messageID, accepted: false, reason: reason, field: field)
            }
            if let existing = existingMessages[request.messageID] {
                results[index] = MessageResult(messageID: request.messageID, accepted: true, duplicate: true, status: existing.status)
                continue
            }
            guard let customer = customers[request.customerID] else { refuse(.unknownCustomer); continue }
            guard !customer.restricted else { refuse(.restricted); continue }
            // A client-mode workspace's providers are the relay's, configured on the brand's side.
            guard client || providers[request.channel] == true else { refuse(.noProvider); continue }
            // Parsed first, so that only the attributes the templates can look up are decrypted.
            var needed: Set<String> = [request.channel.contactAttribute.rawValue, request.channel.optOutAttribute.rawValue]
            do {
                for (source, flavour) in request.content.templateSources { needed.formUnion(try template(source, flavour).referenced) }
            } catch {
                refuse(.invalidTemplate, field: error.attribute)
                continue
            }
            if client {
                switch try relayMessage(request, item: items[index], customer: customer, keys: keys, needed: needed, now: now) {
                case .queued(let message):
                    queued.append((index, message, MessageResult(messageID: request.messageID, accepted: true, status: .queued)))
                case .refused(let reason):
                    refuse(reason)
                }
                continue
            }
            let cipher = try Envelope.CustomerCipher(dataKey: keys.dataKey(of: customer), workspace: workspaceID,
                                                     customer: customer.customerID)
            var attributes: [String: AttributeValue] = [:]
            for (name, sealed) in customer.attributes where try needed.contains(name) && Envelope.kind(of: sealed) == .vault {
                attributes[name] = try cipher.open(sealed, attribute: AttributeName(trusted: name))
            }
            guard case .string(let address)? = attributes[request.channel.contactAttribute.rawValue] else {
                refuse(.noContactForChannel)
                continue
            }
            if case .bool(true)? = attributes[request.channel.optOutAttribute.rawValue] { refuse(.noConsent); continue }
            let payload: OutboxPayload, sms: SMSBody?
            do {
                (payload, sms) = try MessageRendering.render(request, to: address, attributes: attributes, template: template)
            } catch {
                refuse(error.reason, field: error.field)
                continue
            }
            let sealed = try cipher.seal(.string(String(decoding: payload.json, as: UTF8.self)),
                                         attribute: Self.outboxAttribute(request.messageID))
            let message = OutboxMessage(workspaceID: workspaceID, messageID: request.messageID, customerID: customer.customerID,
                                        campaignID: request.campaignID, channel: request.channel, nextAttemptAt: now,
                                        segments: sms?.segments, encoding: sms?.encoding.rawValue, createdAt: now, updatedAt: now,
                                        sealedPayload: sealed)
            queued.append((index, message, MessageResult(messageID: request.messageID, accepted: true, status: .queued,
                                                         segments: sms?.segments, encoding: sms?.encoding.rawValue)))
        }
        let inserted = try await store.enqueue(queued.map(\.message), workspace: workspaceID)
        for (entry, added) in zip(queued, inserted) {
            var result = entry.result
            result.duplicate = !added
            results[entry.index] = result
        }
        // A message id repeated within the request gets what its first copy got, marked duplicate.
        for (index, first) in repeats {
            var result = results[first]!
            result.duplicate = true
            results[index] = result
        }
        let answered = results.map { $0! }
        Self.count(answered, queued: zip(queued, inserted).compactMap { $1 ? $0.message.channel : nil })
        return answered
    }

    /// Messages accepted (newly queued) by channel, and refused by reason.
    static func count(_ results: [MessageResult], queued: [Channel]) {
        var accepted: [Channel: Int64] = [:]
        for channel in queued { accepted[channel, default: 0] += 1 }
        for (channel, count) in accepted {
            Counter(label: "domicile_messages_accepted_total", dimensions: [("channel", channel.rawValue)]).increment(by: count)
        }
        var refused: [String: Int64] = [:]
        for result in results where !result.accepted { refused[result.reason?.rawValue ?? "unknown", default: 0] += 1 }
        for (reason, count) in refused {
            Counter(label: "domicile_messages_refused_total", dimensions: [("reason", reason)]).increment(by: count)
        }
    }

    /// Opens a message's outbox copy with its customer's data key; nil when the customer was
    /// erased (the key is gone, so the message cannot be sent).
    public func openPayload(of message: OutboxMessage) async throws -> OutboxPayload? {
        guard let sealed = message.sealedPayload,
              let wrapped = try await store.wrappedDataKey(of: message.customerID, workspace: message.workspaceID)
        else { return nil }
        let dataKey = try await keyring.dataKey(wrapped: wrapped, customer: message.customerID, workspace: message.workspaceID)
        guard case .string(let json) = try Envelope.open(sealed, with: dataKey, workspace: message.workspaceID,
                                                          customer: message.customerID, attribute: Self.outboxAttribute(message.messageID)),
              let payload = OutboxPayload(json: json.utf8)
        else { throw KeyError.malformedCiphertext }
        return payload
    }

    /// A message's state and PII-free status history, for the main data center.
    public func messageHistory(_ id: String, workspace: WorkspaceID, actor: Actor) async throws
        -> (message: OutboxMessage, history: [MessageStatusChange])
    {
        try actor.require(.send)
        guard let message = try await store.message(id, workspace: workspace) else {
            throw Failure(.notFound, attribute: "message_id", "no message with this id in this workspace")
        }
        return (message, try await store.messageHistory(id, workspace: workspace))
    }
}
