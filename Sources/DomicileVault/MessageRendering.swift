import DomicileCore
import Foundation

extension JSONValue {
    /// A Foundation scalar for template rendering.
    var scalar: Any? {
        switch self {
        case .string(let value): value
        case .integer(let value): value
        case .double(let value): value
        case .bool(let value): value
        default: nil
        }
    }
}

/// Renders a message for its provider: the one place that decides what a message's content
/// becomes and which contents are too long, for the nodes' sends and the relay's alike.
public enum MessageRendering {
    public struct Refusal: Error, Sendable {
        public var reason: MessageRefusal
        public var field: String?
    }

    /// - Parameters:
    ///   - attributes: the customer's values the templates may name (opened).
    ///   - template: parses a template (the caller may cache them).
    public static func render(_ request: MessageRequest, to address: String, attributes: [String: AttributeValue],
                              template: (String, MessageTemplate.Flavour) throws(Failure) -> MessageTemplate) throws(Refusal)
        -> (payload: OutboxPayload, sms: SMSBody?)
    {
        var context: [String: Any] = [:]
        for (key, value) in request.data { if let scalar = value.scalar { context[key] = scalar } }
        for (name, value) in attributes { context[name] = value.json.scalar }
        var payload = OutboxPayload(to: address)
        var sms: SMSBody?
        do {
            switch request.content {
            case .email(let subject, let text, let html):
                payload.subject = try template(subject, .text).render(context)
                payload.text = try text.map { try template($0, .text).render(context) }
                payload.html = try html.map { try template($0, .html).render(context) }
                if (payload.subject?.utf8.count ?? 0) > 998 { throw Refusal(reason: .contentTooLong, field: "content.subject") }
            case .text(let text):
                let body = try template(text, .text).render(context)
                payload.text = body
                if request.channel == .sms {
                    let measured = SMSBody(body)
                    if measured.isTooLong { throw Refusal(reason: .contentTooLong, field: "content.text") }
                    sms = measured
                } else if body.count > 4_096 {
                    throw Refusal(reason: .contentTooLong, field: "content.text")
                }
            case .whatsappTemplate(let name, let language, let parameters):
                payload.templateName = name
                payload.templateLanguage = language
                payload.templateParameters = try parameters.map { try template($0, .text).render(context) }
            }
        } catch let refusal as Refusal {
            throw refusal
        } catch let failure as Failure {
            throw Refusal(reason: .invalidTemplate, field: failure.attribute)
        } catch MessageRenderingError.missingVariable(let name) {
            throw Refusal(reason: .missingVariable, field: name)
        } catch {
            throw Refusal(reason: .invalidTemplate, field: nil)
        }
        return (payload, sms)
    }
}

/// A template's source and flavour, the key of the per-request template cache.
struct TemplateKey: Hashable {
    let source: String
    let html: Bool
}
