import DomicileCore
import Testing

@Suite("application/x-www-form-urlencoded bodies")
struct FormURLEncodedTests {
    static func fields(_ body: String) -> [[String]] { FormURLEncoded.fields(Array(body.utf8)).map { [$0.0, $0.1] } }

    @Test("a Twilio status callback reads as its fields, in order", arguments: [
        ("MessageSid=SM1&MessageStatus=undelivered&To=whatsapp%3A%2B15005550006&ErrorCode=30003",
         [["MessageSid", "SM1"], ["MessageStatus", "undelivered"], ["To", "whatsapp:+15005550006"], ["ErrorCode", "30003"]]),
        ("a=1&a=2", [["a", "1"], ["a", "2"]]),
    ])
    func readsFieldsInOrder(body: String, expected: [[String]]) {
        #expect(Self.fields(body) == expected)
    }

    @Test("'+' is a space and %XX a UTF-8 byte, in names and values alike")
    func decodesPlusAndPercentEscapes() {
        #expect(Self.fields("first+name=J%C3%A9r%C3%B4me+%2B+co%26") == [["first name", "Jérôme + co&"]])
    }

    @Test("empty pairs are skipped, a pair without '=' has an empty value, a value may hold '='")
    func readsIrregularPairs() {
        #expect(Self.fields("&a&&b=&=c&d=e=f&") == [["a", ""], ["b", ""], ["", "c"], ["d", "e=f"]])
        #expect(Self.fields("").isEmpty)
    }

    @Test("a part whose escapes do not decode to UTF-8 is kept as sent, '+' included", arguments: ["%zz+1", "%E9", "100%", "%4"])
    func keepsUndecodablePartsAsSent(value: String) {
        #expect(Self.fields("x=" + value) == [["x", value]])
    }
}
