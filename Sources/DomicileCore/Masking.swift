/// How PII is shown to anyone without `view_pii`: enough to recognise a record, not to use it.
public enum Masking {
    /// The masked form of any attribute value, by the attribute's type.
    public static func mask(_ value: AttributeValue, as type: AttributeType) -> String {
        switch (type, value) {
        case (.email, .string(let text)): email(text)
        case (.phone, .string(let text)): phone(text)
        case (.name, .string(let text)): name(text)
        case (.date, .string(let text)): date(text)
        default: fully
        }
    }

    /// Whether the masked form of a `type` value depends on the value. When it does not (every
    /// type but e-mail, phone, name and date), a masked read need not decrypt it at all.
    public static func dependsOnValue(_ type: AttributeType) -> Bool {
        switch type {
        case .email, .phone, .name, .date: true
        default: false
        }
    }

    /// Other types are fully masked with a fixed width, so not even the length shows.
    public static let fully = "********"

    /// `john@example.com` → `j***@e******.com`: first letter of the local part, then every
    /// label of the domain but the top-level one reduced to its first letter and stars.
    public static func email(_ text: String) -> String {
        guard let at = text.lastIndex(of: "@") else { return fully }
        let local = text[..<at]
        let labels = text[text.index(after: at)...].split(separator: ".", omittingEmptySubsequences: false)
        guard let first = local.first, labels.count >= 2 else { return fully }
        let masked = labels.dropLast().map { label in
            label.isEmpty ? "" : String(label.first!) + String(repeating: "*", count: label.count - 1)
        }
        return "\(first)***@" + (masked + [String(labels.last!)]).joined(separator: ".")
    }

    /// `+971501234567` → `+9715*****567`: up to four leading digits (the calling code and a
    /// little more) and three trailing ones stay; at least five digits are always hidden, so
    /// short numbers show less.
    public static func phone(_ text: String) -> String {
        let digits = Array(text.filter(\.isNumber))
        guard digits.count >= 6 else { return fully }
        let shown = min(7, digits.count - 5)
        let tail = min(3, shown / 2)
        let head = shown - tail
        let hidden = digits.count - shown
        return "+" + String(digits[..<head]) + String(repeating: "*", count: hidden) + String(digits[(digits.count - tail)...])
    }

    /// `Jane` → `J***`.
    public static func name(_ text: String) -> String {
        guard let first = text.first else { return "***" }
        return "\(first)***"
    }

    /// Dates keep their year only: `1990-04-17` → `1990-**-**`.
    public static func date(_ text: String) -> String {
        guard text.count >= 4 else { return fully }
        return text.prefix(4) + "-**-**"
    }
}
