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
        asciiEmail(text) ?? emailByCharacters(text)
    }

    /// `email` on characters, for any address.
    static func emailByCharacters(_ text: String) -> String {
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
        asciiPhone(text) ?? phoneByCharacters(text)
    }

    /// `phone` for an ASCII number, on bytes; nil when the text is not ASCII.
    static func asciiPhone(_ text: String) -> String? {
        // Stored numbers are E.164 (ASCII): the same masking, on bytes (grapheme-by-grapheme
        // string work was most of a masked read's masking time).
        guard text.utf8.allSatisfy({ $0 < 0x80 }) else { return nil }
        let digits = text.utf8.filter { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        guard digits.count >= 6 else { return fully }
        let shown = min(7, digits.count - 5)
        let tail = min(3, shown / 2)
        let head = shown - tail
        var masked: [UInt8] = [UInt8(ascii: "+")]
        masked.reserveCapacity(digits.count + 1)
        masked += digits[..<head]
        masked += repeatElement(UInt8(ascii: "*"), count: digits.count - shown)
        masked += digits[(digits.count - tail)...]
        return String(decoding: masked, as: UTF8.self)
    }

    /// `phone` on characters, for any text.
    static func phoneByCharacters(_ text: String) -> String {
        let digits = Array(text.filter(\.isNumber))
        guard digits.count >= 6 else { return fully }
        let shown = min(7, digits.count - 5)
        let tail = min(3, shown / 2)
        let head = shown - tail
        let hidden = digits.count - shown
        return "+" + String(digits[..<head]) + String(repeating: "*", count: hidden) + String(digits[(digits.count - tail)...])
    }

    /// `email` for an ASCII address, on bytes; nil when the address is not ASCII.
    static func asciiEmail(_ text: String) -> String? {
        let bytes = Array(text.utf8)
        guard bytes.allSatisfy({ $0 < 0x80 }) else { return nil }
        guard let at = bytes.lastIndex(of: UInt8(ascii: "@")) else { return fully }
        let labels = bytes[(at + 1)...].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard at > 0, labels.count >= 2 else { return fully }
        var masked: [UInt8] = [bytes[0], UInt8(ascii: "*"), UInt8(ascii: "*"), UInt8(ascii: "*"), UInt8(ascii: "@")]
        masked.reserveCapacity(bytes.count - at + 5)
        for label in labels.dropLast() {
            if let first = label.first {
                masked.append(first)
                masked += repeatElement(UInt8(ascii: "*"), count: label.count - 1)
            }
            masked.append(UInt8(ascii: "."))
        }
        masked += labels.last!
        return String(decoding: masked, as: UTF8.self)
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
