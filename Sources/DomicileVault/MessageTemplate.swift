import DomicileCore
import Foundation
import Mustache

/// A Mustache template rendered inside the region with the customer's attributes and the main
/// data center's `data`.
///
/// A variable used outside any section must exist, or the message is refused with
/// `missing_variable`; a template gives a fallback with a section pair:
/// `{{#first_name}}{{first_name}}{{/first_name}}{{^first_name}}there{{/first_name}}`.
public struct MessageTemplate: Sendable {
    public enum Flavour: Sendable { case text, html }

    let template: MustacheTemplate
    let required: Set<String>
    /// Every name a tag looks up, in or out of sections (the first part of a dotted name): the
    /// attributes rendering can touch, so only those need decrypting.
    public let referenced: Set<String>

    public init(_ source: String, flavour: Flavour) throws(Failure) {
        guard source.utf8.count <= 256 * 1024 else {
            throw Failure(.attribute, attribute: "content", "a template is longer than 256 KB")
        }
        let pragma = flavour == .text ? "{{%CONTENT_TYPE:TEXT}}" : "{{%CONTENT_TYPE:HTML}}"
        do {
            template = try MustacheTemplate(string: pragma + source)
        } catch {
            throw Failure(.attribute, attribute: "content", "the template does not parse as Mustache")
        }
        (required, referenced) = Self.variables(source)
    }

    /// Names used in `{{name}}`, `{{{name}}}` or `{{&name}}` tags outside every section.
    static func unguardedVariables(_ source: String) -> Set<String> { variables(source).unguarded }

    /// The unguarded names, and every name any variable or section tag looks up.
    static func variables(_ source: String) -> (unguarded: Set<String>, all: Set<String>) {
        var names: Set<String> = []
        var all: Set<String> = []
        var depth = 0
        var rest = Substring(source)
        while let open = rest.range(of: "{{") {
            rest = rest[open.upperBound...]
            let triple = rest.hasPrefix("{")
            guard let close = rest.range(of: triple ? "}}}" : "}}") else { break }
            var tag = rest[..<close.lowerBound]
            rest = rest[close.upperBound...]
            if triple { tag = tag.dropFirst() }
            tag = Substring(tag.trimmingWhitespace())
            guard let sigil = tag.first else { continue }
            switch sigil {
            case "#", "^":
                depth += 1
                let name = tag.dropFirst().trimmingWhitespace()
                if name != "." { all.insert(Self.head(name)) }
            case "/": depth = max(0, depth - 1)
            case "!", "%", ">", "<", "$", "=": break
            default:
                let name = (sigil == "&" ? tag.dropFirst() : tag).trimmingWhitespace()
                guard name != "." else { continue }
                let head = Self.head(name)
                all.insert(head)
                if depth == 0 { names.insert(head) }
            }
        }
        return (names, all)
    }

    /// The name a dotted tag name is looked up by first (`offer` in `offer.title`).
    private static func head(_ name: some StringProtocol) -> String {
        String(name.split(separator: ".").first ?? "")
    }

    /// - Throws: `missing_variable` naming none of the values.
    public func render(_ context: [String: Any]) throws(MessageRenderingError) -> String {
        if let missing = required.sorted().first(where: { context[$0] == nil }) {
            throw .missingVariable(missing)
        }
        return template.render(context)
    }
}

public enum MessageRenderingError: Error, Sendable {
    /// The variable's name (a schema attribute or a `data` key: not a value).
    case missingVariable(String)
}
