import Testing
@testable import DomicileCore

@Suite("SMS encoding and segments")
struct SMSBodyTests {
    @Test("encoding, units and segments", arguments: [
        ("Hello Jane, your code is 1234", SMSBody.Encoding.gsm7, 29, 1),
        (String(repeating: "a", count: 160), .gsm7, 160, 1),
        (String(repeating: "a", count: 161), .gsm7, 161, 2),
        (String(repeating: "a", count: 306), .gsm7, 306, 2),
        (String(repeating: "a", count: 307), .gsm7, 307, 3),
        ("Price: 5€ [promo]", .gsm7, 20, 1),
        (String(repeating: "€", count: 80), .gsm7, 160, 1),
        (String(repeating: "€", count: 81), .gsm7, 162, 2),
        ("مرحبا جين", .ucs2, 9, 1),
        (String(repeating: "ب", count: 70), .ucs2, 70, 1),
        (String(repeating: "ب", count: 71), .ucs2, 71, 2),
        ("Hi 👋", .ucs2, 5, 1),
        ("Straße ça", .ucs2, 9, 1),
        ("", .gsm7, 0, 1),
    ])
    func segments(_ text: String, _ encoding: SMSBody.Encoding, _ units: Int, _ segments: Int) {
        let body = SMSBody(text)
        #expect(body.encoding == encoding)
        #expect(body.units == units)
        #expect(body.segments == segments)
    }

    @Test func tooLongBeyondTenSegments() {
        #expect(!SMSBody(String(repeating: "a", count: 1530)).isTooLong)
        #expect(SMSBody(String(repeating: "a", count: 1531)).isTooLong)
        #expect(SMSBody(String(repeating: "ب", count: 671)).isTooLong)
    }
}
