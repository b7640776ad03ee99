/// A phone number in ITU-T E.164 form, `+` then the country calling code and the national
/// significant number, 7 to 15 digits in all: `+971501234567`.
///
/// The check is structural, not a numbering-plan lookup: the calling code must be assigned
/// (see ``CountryCallingCodes``) and the lengths plausible; whether a given national number is
/// in service is not known here.
public struct E164PhoneNumber: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    /// Fewest digits, calling code included: the shortest real numbers (Niue, Tokelau: a 3-digit
    /// code and 4 national digits) have 7.
    public static let minimumDigits = 7
    /// Most digits, calling code included (E.164 §6.2.1).
    public static let maximumDigits = 15
    /// Fewest digits after the calling code.
    public static let minimumNationalDigits = 4

    /// `+971501234567`.
    public let e164: String
    /// `971`.
    public let countryCallingCode: String

    /// Strict: a leading '+', then digits only; spaces, dashes, dots and parentheses between digits
    /// are tolerated and removed (" +971 50-123 4567 " → "+971501234567"); the first digit is not 0;
    /// 7...15 digits in all counting the calling code, at least 4 of them after it; the calling
    /// code must be assigned.
    public init(validating raw: String) throws(PhoneNumberError) {
        let text = raw.trimmingWhitespace()
        guard let first = text.unicodeScalars.first else { throw .empty }
        guard first == "+" else { throw .missingPlus }
        let digits = try Self.digits(in: text.unicodeScalars.dropFirst())
        try self.init(internationalDigits: digits)
    }

    /// National formats accepted only with an explicit default region (ISO 3166-1 alpha-2, any
    /// case): "050 123 4567" with region "AE" → "+971501234567".
    ///
    /// - A number starting with '+' or '00' is international and read as such; the region is then
    ///   not used (and not checked).
    /// - Otherwise one trunk prefix is removed where the region has one: a leading `0` in most
    ///   regions, `06` in Hungary; in the NANP (no trunk 0) a leading `1` before ten digits, and in
    ///   Russia and Kazakhstan a leading `8` before ten digits. Regions whose national numbers
    ///   include a leading 0 (Italy, San Marino, the Vatican, Côte d'Ivoire…) keep it.
    public init(validating raw: String, defaultRegion: String) throws(PhoneNumberError) {
        let text = raw.trimmingWhitespace()
        guard let first = text.unicodeScalars.first else { throw .empty }
        if first == "+" {
            try self.init(validating: text)
            return
        }
        let digits = try Self.digits(in: text.unicodeScalars[...])
        if digits.hasPrefix("00") {
            try self.init(internationalDigits: String(digits.dropFirst(2)))
            return
        }
        let region = defaultRegion.trimmingWhitespace().uppercased()
        guard region.utf8.count == 2, let code = CountryCallingCodes.code(forRegion: region) else {
            throw .unknownRegion
        }
        try self.init(internationalDigits: code + Self.removingTrunkPrefix(from: digits, region: region, code: code))
    }

    /// Validates the digits after the '+'.
    private init(internationalDigits digits: String) throws(PhoneNumberError) {
        guard let first = digits.utf8.first else { throw .tooShort }
        guard first != UInt8(ascii: "0") else { throw .leadingZero }
        let count = digits.utf8.count
        guard count <= Self.maximumDigits else { throw .tooLong }
        guard count >= Self.minimumDigits else { throw .tooShort }
        guard let code = CountryCallingCodes.code(prefixing: digits) else { throw .unassignedCountryCode }
        guard count - code.utf8.count >= Self.minimumNationalDigits else { throw .tooShort }
        self.e164 = "+" + digits
        self.countryCallingCode = code
    }

    /// The ASCII digits of `scalars`, the tolerated separators removed.
    private static func digits(in scalars: Substring.UnicodeScalarView) throws(PhoneNumberError) -> String {
        var digits = String.UnicodeScalarView()
        for scalar in scalars {
            if ("0"..."9").contains(scalar) {
                digits.append(scalar)
            } else if !separators.contains(scalar) {
                throw .invalidCharacters
            }
        }
        return String(digits)
    }

    /// Space (and the no-break spaces word processors put in numbers), dash, dot, parentheses.
    private static let separators: Set<Unicode.Scalar> = [" ", "\u{00A0}", "\u{202F}", "-", ".", "(", ")"]

    /// Regions whose national format starts with a trunk prefix `0` that is not part of the number.
    private static let trunkZeroRegions: Set<String> = [
        // Europe
        "AL", "AT", "AX", "BA", "BE", "BG", "CH", "DE", "FI", "FR", "GB", "GG", "HR", "IE", "IM",
        "JE", "MC", "MD", "ME", "MK", "NL", "RO", "RS", "SE", "SI", "SK", "TR", "UA", "XK",
        // Middle East, Central and South Asia
        "AE", "AF", "AM", "AZ", "BD", "GE", "IL", "IN", "IQ", "IR", "JO", "KG", "LB", "LK", "NP",
        "PK", "PS", "SA", "SY", "YE",
        // East and South-East Asia, Oceania
        "AU", "CC", "CN", "CX", "ID", "JP", "KH", "KP", "KR", "LA", "MM", "MN", "MY", "NZ", "PH",
        "TH", "TW", "VN",
        // Africa
        "CD", "DZ", "EG", "EH", "ER", "ET", "GH", "KE", "LR", "LY", "MA", "MG", "MW", "NA", "NG",
        "RW", "SD", "SL", "SO", "SS", "TZ", "UG", "ZA", "ZM", "ZW",
        // The Americas and the French overseas departments
        "AR", "BL", "BO", "BR", "CU", "EC", "GF", "GP", "MF", "MQ", "PE", "PM", "PY", "RE", "UY",
        "VE", "YT",
    ]

    private static func removingTrunkPrefix(from digits: String, region: String, code: String) -> String {
        if region == "HU" {
            return digits.hasPrefix("06") ? String(digits.dropFirst(2)) : digits
        }
        if trunkZeroRegions.contains(region) {
            return digits.hasPrefix("0") ? String(digits.dropFirst()) : digits
        }
        if code == "1" || region == "RU" || region == "KZ" {
            let trunk = code == "1" ? "1" : "8"
            return digits.utf8.count == 11 && digits.hasPrefix(trunk) ? String(digits.dropFirst()) : digits
        }
        return digits
    }

    /// Never the number: its masked form, `+9715*****567`.
    public var description: String { Masking.phone(e164) }
    public var debugDescription: String { description }
}

/// Why a phone number was refused. The descriptions never contain the number; each completes
/// a sentence that starts with "phone number" ("phone number must start with '+'…").
public enum PhoneNumberError: Error, Sendable, Equatable, CustomStringConvertible {
    case empty
    case missingPlus
    case invalidCharacters
    case tooShort
    case tooLong
    case unassignedCountryCode
    case leadingZero
    case unknownRegion

    public var description: String {
        switch self {
        case .empty:
            "cannot be empty"
        case .missingPlus:
            "must start with '+' and the country calling code (E.164)"
        case .invalidCharacters:
            "may contain only digits after the '+', optionally separated by spaces, dashes, dots or parentheses"
        case .tooShort:
            "is too short: E.164 numbers have at least \(E164PhoneNumber.minimumDigits) digits including the country calling code"
        case .tooLong:
            "is too long: E.164 numbers have at most \(E164PhoneNumber.maximumDigits) digits including the country calling code"
        case .unassignedCountryCode:
            "does not start with an assigned country calling code"
        case .leadingZero:
            "cannot start with 0 after the '+': country calling codes never start with 0"
        case .unknownRegion:
            "is in national format but the default region is not a known ISO 3166-1 alpha-2 code"
        }
    }
}
