/// How an SMS body travels: GSM 03.38 7-bit when every character is in the GSM alphabet (or
/// its extension table, which costs two septets), UCS-2 otherwise; and how many segments that
/// makes (160/153 septets, or 70/67 UTF-16 units, single/concatenated).
public struct SMSBody: Sendable, Hashable {
    public enum Encoding: String, Sendable, Hashable, Codable { case gsm7 = "GSM-7", ucs2 = "UCS-2" }

    /// Longer bodies are refused before sending (carriers commonly cap concatenation at 10).
    public static let maximumSegments = 10

    public let encoding: Encoding
    /// Septets for GSM-7, UTF-16 code units for UCS-2.
    public let units: Int
    public let segments: Int

    public init(_ text: String) {
        var septets = 0
        var gsm = true
        for scalar in text.unicodeScalars {
            if Self.basic.contains(scalar) {
                septets += 1
            } else if Self.extended.contains(scalar) {
                septets += 2
            } else {
                gsm = false
                break
            }
        }
        if gsm {
            encoding = .gsm7
            units = septets
            segments = septets <= 160 ? 1 : (septets + 152) / 153
        } else {
            encoding = .ucs2
            units = text.utf16.count
            segments = units <= 70 ? 1 : (units + 66) / 67
        }
    }

    public var isTooLong: Bool { segments > Self.maximumSegments }

    /// The GSM 03.38 default alphabet.
    static let basic: Set<Unicode.Scalar> = Set(
        "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
            .unicodeScalars)
    /// The extension table: each costs an escape septet too.
    static let extended: Set<Unicode.Scalar> = Set("\u{000C}^{}\\[~]|€".unicodeScalars)
}
