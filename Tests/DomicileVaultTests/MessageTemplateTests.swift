import Testing
@testable import DomicileVault

@Suite("Message templates")
struct MessageTemplateTests {
    @Test func htmlEscapesValuesAndTextDoesNot() throws {
        let context: [String: Any] = ["name": "<b>Tom & Jerry</b>"]
        #expect(try MessageTemplate("Hi {{name}}", flavour: .html).render(context) == "Hi &lt;b&gt;Tom &amp; Jerry&lt;/b&gt;")
        #expect(try MessageTemplate("Hi {{name}}", flavour: .text).render(context) == "Hi <b>Tom & Jerry</b>")
    }

    @Test("variables outside sections are required; sections give fallbacks", arguments: [
        ("Hi {{first_name}}", ["first_name"]),
        ("Hi {{{first_name}}} {{& last_name}}", ["first_name", "last_name"]),
        ("{{#first_name}}Hi {{first_name}}{{/first_name}}{{^first_name}}Hi there{{/first_name}}", []),
        ("{{! a comment }}Code {{code}}{{#vip}} {{perk}}{{/vip}}", ["code"]),
        ("{{customer.city}}", ["customer"]),
    ])
    func required(_ source: String, _ names: [String]) {
        #expect(MessageTemplate.unguardedVariables(source) == Set(names))
    }

    @Test func aMissingVariableIsRefusedByName() throws {
        let template = try MessageTemplate("Hi {{first_name}}, code {{code}}", flavour: .text)
        #expect(throws: MessageRenderingError.self) { try template.render(["first_name": "A"]) }
        #expect(try template.render(["first_name": "A", "code": 7]) == "Hi A, code 7")
        #expect(throws: Failure.self) { try MessageTemplate("{{#open}}never closed", flavour: .text) }
    }

    @Test("every name a tag can look up is referenced, in sections too, so sending decrypts only those")
    func referencedNames() throws {
        let template = try MessageTemplate(
            "Hi {{first_name}}, {{#city}}in {{city}}{{/city}}{{^vip}}join{{/vip}} {{{offer.title}}} {{& code}} {{! note}} {{.}}",
            flavour: .text)
        #expect(template.referenced == ["first_name", "city", "vip", "offer", "code"])
        #expect(MessageTemplate.unguardedVariables("{{#city}}{{city}}{{/city}} {{first_name}}") == ["first_name"])
    }
}

import DomicileCore
