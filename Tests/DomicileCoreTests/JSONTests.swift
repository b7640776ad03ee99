import Foundation
import Testing
@testable import DomicileCore

@Suite("JSON parser and writer")
struct JSONTests {
    static func parse(_ text: String) throws -> JSONValue { try JSONParser.parse(Array(text.utf8)) }

    @Test("values parse to the JSON type they are written as")
    func values() throws {
        #expect(try Self.parse(#"{"a":"x","b":12,"c":-1.5,"d":true,"e":false,"f":null,"g":[1,"two",[]],"h":{}}"#) == .object([
            "a": .string("x"), "b": .integer(12), "c": .double(-1.5), "d": .bool(true), "e": .bool(false), "f": .null,
            "g": .array([.integer(1), .string("two"), .array([])]), "h": .object([:]),
        ]))
        #expect(try Self.parse(" \n\t\r\"x\"  ") == .string("x"))
        #expect(try Self.parse("0") == .integer(0))
        #expect(try Self.parse("-0") == .integer(0))
        #expect(try Self.parse("9223372036854775807") == .integer(.max))
        #expect(try Self.parse("-9223372036854775808") == .integer(.min))
        #expect(try Self.parse("5.0") == .integer(5))
        #expect(try Self.parse("1e3") == .integer(1000))
        #expect(try Self.parse("1.25e-2") == .double(0.0125))
        #expect(try Self.parse("18446744073709551616") == .double(18446744073709551616))
    }

    @Test("escapes decode, surrogate pairs included")
    func escapes() throws {
        #expect(try Self.parse(#""a\"b\\c\/d\b\f\n\r\t""#) == .string("a\"b\\c/d\u{8}\u{c}\n\r\t"))
        #expect(try Self.parse(#""\u00e9\u0041""#) == .string("éA"))
        #expect(try Self.parse(#""\ud83d\ude00 ok""#) == .string("😀 ok"))
        #expect(try Self.parse("\"مرحبا 😀\"") == .string("مرحبا 😀"))
    }

    @Test("malformed texts are refused with a reason and an offset, never the content", arguments: [
        "", " ", "{", "}", "[1,]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}", "01", "-", "1.", "1e", ".5", "+1", "NaN", "Infinity",
        "tru", "nul", "\"abc", "\"a\\x\"", "\"\\u12\"", "\"\\ud800\"", "\"\\udc00\"", "\"\\ud800\\u0041\"", "1 2", "[1 2]",
        "{\"a\":1 \"b\":2}", "\"tab\there\"", "{\"a\":1,\"a\":2}", "1e999", "/* c */ 1",
    ])
    func malformed(_ text: String) {
        #expect(throws: JSONParser.Error.self) { try Self.parse(text) }
    }

    @Test("strings in ASCII, in other scripts and with escapes read back as sent", arguments: [
        "plain", "", "jane.doe@example.com", "جين", "Zoë", "日本", "🇦🇪", "a\u{0}b", "tab\there", "quote\"", "back\\slash",
    ])
    func strings(text: String) throws {
        var escaped = ""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": escaped += "\\\""
            case "\\": escaped += "\\\\"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                escaped += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: escaped.unicodeScalars.append(scalar)
            }
        }
        #expect(try Self.parse("\"" + escaped + "\"") == .string(text))
        #expect(try Self.parse(#"{"k":""# + escaped + #""}"#) == .object(["k": .string(text)]))
    }

    @Test("invalid UTF-8 inside a string is refused")
    func invalidUTF8() {
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0x5C, 0x6E, 0xFF, 0x22]) }
        // A lone continuation byte, an overlong encoding, a surrogate, after ASCII.
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0x61, 0x80, 0x22]) }
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0x61, 0xC0, 0xAF, 0x22]) }
        #expect(throws: JSONParser.Error.self) { try JSONParser.parse([0x22, 0xED, 0xA0, 0x80, 0x22]) }
    }

    @Test("nesting deeper than the limit is refused, at the limit accepted")
    func depth() throws {
        let limit = JSONParser.maximumDepth
        _ = try Self.parse(String(repeating: "[", count: limit) + String(repeating: "]", count: limit))
        #expect(throws: JSONParser.Error.self) {
            try Self.parse(String(repeating: "[", count: limit + 1) + String(repeating: "]", count: limit + 1))
        }
        #expect(throws: JSONParser.Error.self) { try Self.parse(String(repeating: "{\"a\":", count: 100_000)) }
    }

    @Test("a refusal's description holds no part of the text")
    func refusalHasNoContent() {
        do {
            _ = try JSONParser.parse(Array(#"{"email":"secret-marker@example.com",}"#.utf8))
            Issue.record("expected a refusal")
        } catch {
            #expect(!error.description.contains("secret-marker"))
            #expect(error.offset == 37)
        }
    }

    @Test("the writer's output parses back to the same value, with Foundation too")
    func roundTrip() throws {
        let value: JSONValue = .object([
            "text": .string("quote \" backslash \\ slash / newline \n tab \t nul \u{0} bell \u{7} é 😀"),
            "int": .integer(-42), "big": .integer(.max), "double": .double(0.1), "exp": .double(1e300),
            "yes": .bool(true), "nothing": .null, "list": .array([.integer(1), .object(["k": .string("v")])]),
        ])
        var writer = JSONWriter()
        writer.value(value)
        #expect(try JSONParser.parse(writer.bytes) == value)
        let foundation = try JSONSerialization.jsonObject(with: Data(writer.bytes)) as? [String: Any]
        #expect(foundation?["text"] as? String == "quote \" backslash \\ slash / newline \n tab \t nul \u{0} bell \u{7} é 😀")
        #expect((foundation?["int"] as? NSNumber)?.intValue == -42)
    }

    @Test("the writer sorts object keys and separates members with commas")
    func writerLayout() {
        var writer = JSONWriter()
        writer.beginObject()
        writer.key("b")
        writer.value(.object(["z": .integer(1), "a": .array([.bool(false), .null])]))
        writer.key("a")
        writer.double(.nan)
        writer.endObject()
        #expect(String(decoding: writer.bytes, as: UTF8.self) == #"{"b":{"a":[false,null],"z":1},"a":null}"#)
    }
}
