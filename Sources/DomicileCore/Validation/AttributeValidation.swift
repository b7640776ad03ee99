extension AttributeDefinition {
    public static let maximumNameLength = 256
    public static let maximumAddressLength = 1024
    public static let maximumTextLength = 4096

    /// Checks a value against this attribute's type and returns the form to store:
    /// e-mail addresses trimmed and lower-cased, phones in E.164, names trimmed.
    public func normalize(_ value: AttributeValue) throws(Failure) -> AttributeValue {
        let attribute = name.rawValue
        func string() throws(Failure) -> String {
            guard case .string(let text) = value else {
                throw Failure(.attribute, attribute: attribute, "expected a string for a \(type.rawValue) attribute")
            }
            return text
        }
        func bounded(_ text: String, _ limit: Int) throws(Failure) -> String {
            guard text.count <= limit else {
                throw Failure(.attribute, attribute: attribute, "value is longer than \(limit) characters")
            }
            return text
        }
        switch type {
        case .email:
            let text = try string()
            do {
                return .string(try EmailAddress(validating: text).normalized)
            } catch {
                throw Failure(.attribute, attribute: attribute, error.message)
            }
        case .phone:
            let text = try string()
            do {
                return .string(try E164PhoneNumber(validating: text).e164)
            } catch {
                throw Failure(.attribute, attribute: attribute, "phone number \(error.description)")
            }
        case .name:
            let text = try string().trimmingWhitespace()
            guard !text.isEmpty else {
                throw Failure(.attribute, attribute: attribute, "name cannot be empty; send null to remove it")
            }
            return .string(try bounded(text, Self.maximumNameLength))
        case .address:
            return .string(try bounded(try string(), Self.maximumAddressLength))
        case .text:
            return .string(try bounded(try string(), Self.maximumTextLength))
        case .date:
            let text = try string().trimmingWhitespace()
            guard ISODate.isValid(text) else {
                throw Failure(.attribute, attribute: attribute,
                              "expected an ISO 8601 date (YYYY-MM-DD) or date-time (YYYY-MM-DDThh:mm:ssZ)")
            }
            return .string(text)
        case .number:
            switch value {
            case .integer, .double: return value
            default: throw Failure(.attribute, attribute: attribute, "expected a number")
            }
        case .boolean:
            guard case .bool = value else {
                throw Failure(.attribute, attribute: attribute, "expected true or false")
            }
            return value
        }
    }
}

/// ISO 8601 calendar dates and RFC 3339 date-times, checked without Foundation's formatters.
enum ISODate {
    static func isValid(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard bytes.count >= 10, isDate(bytes[0..<10]) else { return false }
        if bytes.count == 10 { return true }
        guard bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: " ") else { return false }
        return isTime(bytes[11...])
    }

    private static func number(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty, bytes.allSatisfy(\.isASCIIDigit) else { return nil }
        return bytes.reduce(0) { $0 * 10 + Int($1 - 0x30) }
    }

    private static func isDate(_ b: ArraySlice<UInt8>) -> Bool {
        let s = b.startIndex
        guard b[s + 4] == UInt8(ascii: "-"), b[s + 7] == UInt8(ascii: "-"),
              let year = number(b[s..<s + 4]), let month = number(b[s + 5..<s + 7]), let day = number(b[s + 8..<s + 10]),
              (1...12).contains(month), day >= 1
        else { return false }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let days = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        return day <= days
    }

    private static func isTime(_ b: ArraySlice<UInt8>) -> Bool {
        let s = b.startIndex
        guard b.count >= 9, b[s + 2] == UInt8(ascii: ":"), b[s + 5] == UInt8(ascii: ":"),
              let hour = number(b[s..<s + 2]), let minute = number(b[s + 3..<s + 5]), let second = number(b[s + 6..<s + 8]),
              hour < 24, minute < 60, second <= 60
        else { return false }
        var rest = b[(s + 8)...]
        if rest.first == UInt8(ascii: ".") {
            let fraction = rest.dropFirst().prefix(while: \.isASCIIDigit)
            guard !fraction.isEmpty else { return false }
            rest = rest[(fraction.endIndex)...]
        }
        if rest.count == 1, rest.first == UInt8(ascii: "Z") || rest.first == UInt8(ascii: "z") { return true }
        guard rest.count == 6, rest.first == UInt8(ascii: "+") || rest.first == UInt8(ascii: "-") else { return false }
        let r = rest.startIndex
        guard rest[r + 3] == UInt8(ascii: ":"), let oh = number(rest[r + 1..<r + 3]), let om = number(rest[r + 4..<r + 6]) else {
            return false
        }
        return oh < 24 && om < 60
    }
}
