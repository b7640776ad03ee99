import Testing
@testable import DomicileCore

@Suite("Customer ids")
struct CustomerIDTests {
    @Test("placeholders are refused whatever their case", arguments: [
        "unknown", "Guest", "NULL", "none", "na", "N/A", "0", "1", "2", "-1", "-2", "true", "False",
        "id", "customer_id", "uid", "userid", "user_id", "empty", "undefined", "Customer_ID", "NaN", "Nil",
        // Kelvin sign: not ASCII, and lower-cases to "unknown".
        "UN\u{212A}NOWN",
    ])
    func placeholders(_ raw: String) {
        #expect(throws: Failure.self) { try CustomerID(validating: raw) }
        do { _ = try CustomerID(validating: raw) } catch {
            #expect(error.kind == .invalidCustomerID)
            #expect(error.message == "customer_id is a placeholder value; send the brand's real customer id")
        }
    }

    @Test("ids that identify a person are refused unless the workspace allows them", arguments: [
        "jane.doe@example.com", "+971501234567", "00971501234567", "+14155552671", "Jane.Doe@Example.COM",
    ])
    func identifying(_ raw: String) throws {
        #expect(throws: Failure.self) { try CustomerID(validating: raw) }
        #expect(try CustomerID(validating: raw, allowIdentifying: true).rawValue == raw)
    }

    @Test("ordinary ids are accepted", arguments: [
        "c-1", "3", "10023", "9715012345", "b2f5ff47-4361-4b9e-a4b5-1b1b3c5f7d9e", "user:42", "ÄÖÜ-42",
        "a b", "user@", "@handle", "nulls", "unknown-42", "customer_idx",
    ])
    func accepted(_ raw: String) throws {
        #expect(try CustomerID(validating: raw).rawValue == raw)
    }

    @Test("empty, padded, oversized and control-character ids are refused", arguments: [
        "", "   ", " c-1", "c-1 ", String(repeating: "x", count: 256), "c\u{0}1", "c\n1", "\tc-1", "c-1\u{7F}",
        "\u{A0}c-1", "c-1\u{2003}", String(repeating: "é", count: 256), "c\u{85}1",
    ])
    func malformed(_ raw: String) {
        #expect(throws: Failure.self) { try CustomerID(validating: raw) }
    }

    @Test func longestAllowed() throws {
        #expect(try CustomerID(validating: String(repeating: "x", count: 255)).rawValue.count == 255)
    }
}

@Suite("Attribute names")
struct AttributeNameTests {
    @Test("valid names", arguments: ["email", "first_name", "_plan", "Tier2", String(repeating: "a", count: 64),
                                     "moe", "moex", "mo_e", "ids", "idx", "_idx", "customer_ids", "customerid", "xmoe_"])
    func valid(_ raw: String) throws {
        #expect(try AttributeName(validating: raw).rawValue == raw)
    }

    @Test("reserved names", arguments: ["moe_user", "MOE_x", "Moe_", "moe_", "id", "_id", "ID", "Id", "customer_id", "Customer_ID", "_ID"])
    func reserved(_ raw: String) {
        #expect(throws: Failure.self) { try AttributeName(validating: raw) }
    }

    @Test("malformed names are refused without echoing them", arguments: [
        "", "1st", "first name", "a-b", "e.mail", "jane@example.com", String(repeating: "a", count: 65), "naïve",
    ])
    func malformed(_ raw: String) {
        do {
            _ = try AttributeName(validating: raw)
            Issue.record("accepted \(raw.debugDescription)")
        } catch {
            #expect(error.attribute == nil)
            #expect(raw.isEmpty || !error.message.contains(raw))
        }
    }
}

@Suite("E-mail addresses")
struct EmailAddressTests {
    @Test("valid addresses are trimmed and lower-cased", arguments: [
        ("jane@example.com", "jane@example.com"),
        ("  Jane.Doe@Example.COM ", "jane.doe@example.com"),
        ("a+tag@mail.example.co.uk", "a+tag@mail.example.co.uk"),
        ("o'brien@example.ie", "o'brien@example.ie"),
        ("x@xn--80ak6aa92e.com", "x@xn--80ak6aa92e.com"),
        ("user@example.xn--p1ai", "user@example.xn--p1ai"),
    ])
    func valid(_ raw: String, _ normalized: String) throws {
        #expect(try EmailAddress(validating: raw).normalized == normalized)
    }

    @Test("malformed addresses are refused", arguments: [
        "", "jane", "jane@", "@example.com", "jane@example", "jane@@example.com", "jane@exa mple.com",
        ".jane@example.com", "jane.@example.com", "ja..ne@example.com", "jane@-example.com", "jane@example-.com",
        "jane@example.c", "jane@example.123", "\"jane\"@example.com", "jané@example.com",
        String(repeating: "a", count: 65) + "@example.com", "a@" + String(repeating: "b", count: 250) + ".com",
    ])
    func malformed(_ raw: String) {
        #expect(throws: Failure.self) { try EmailAddress(validating: raw) }
    }

    @Test func descriptionIsMasked() throws {
        let email = try EmailAddress(validating: "jane@example.com")
        #expect("\(email)" == "j***@e******.com")
        #expect(String(reflecting: email) == "j***@e******.com")
    }
}

@Suite("Attribute values by type")
struct AttributeValidationTests {
    func definition(_ type: AttributeType) -> AttributeDefinition {
        AttributeDefinition(name: AttributeName(trusted: "field"), type: type)
    }

    @Test("accepted values and their stored form", arguments: [
        (AttributeType.email, AttributeValue.string(" Jane@Example.com"), AttributeValue.string("jane@example.com")),
        (.phone, .string("+971 50 123 4567"), .string("+971501234567")),
        (.name, .string("  Jane "), .string("Jane")),
        (.date, .string("1990-02-28"), .string("1990-02-28")),
        (.date, .string("2024-02-29"), .string("2024-02-29")),
        (.date, .string("2026-11-25T10:00:00Z"), .string("2026-11-25T10:00:00Z")),
        (.date, .string("2026-11-25T10:00:00.123+04:00"), .string("2026-11-25T10:00:00.123+04:00")),
        (.number, .integer(42), .integer(42)),
        (.number, .double(4.5), .double(4.5)),
        (.boolean, .bool(true), .bool(true)),
        (.text, .string(""), .string("")),
        (.address, .string("1 Sheikh Zayed Rd, Dubai"), .string("1 Sheikh Zayed Rd, Dubai")),
    ])
    func accepted(_ type: AttributeType, _ value: AttributeValue, _ stored: AttributeValue) throws {
        #expect(try definition(type).normalize(value) == stored)
    }

    @Test("refused values name the attribute and never echo the value", arguments: [
        (AttributeType.email, AttributeValue.string("not-an-email")),
        (.email, .integer(5)),
        (.phone, .string("0501234567")),
        (.phone, .string("+2812345678")),
        (.name, .string("   ")),
        (.name, .bool(true)),
        (.name, .string(String(repeating: "n", count: 257))),
        (.date, .string("1990-02-29")),
        (.date, .string("1990-13-01")),
        (.date, .string("25/11/2026")),
        (.date, .string("2026-11-25T25:00:00Z")),
        (.number, .string("42")),
        (.boolean, .string("yes")),
        (.text, .string(String(repeating: "t", count: 4097))),
    ])
    func refused(_ type: AttributeType, _ value: AttributeValue) {
        do {
            _ = try definition(type).normalize(value)
            Issue.record("accepted \(value) as \(type)")
        } catch {
            #expect(error.attribute == "field")
            if case .string(let text) = value, !text.trimmingWhitespace().isEmpty {
                #expect(!error.message.contains(text))
            }
        }
    }
}
