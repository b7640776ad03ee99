import Testing
@testable import DomicileCore

@Suite("Masking")
struct MaskingTests {
    @Test("each type masks as the product shows it", arguments: [
        (AttributeType.email, AttributeValue.string("john@example.com"), "j***@e******.com"),
        (.email, .string("a@mail.example.co.uk"), "a***@m***.e******.c*.uk"),
        (.phone, .string("+971501234567"), "+9715*****567"),
        (.phone, .string("+14155552671"), "+141*****671"),
        (.phone, .string("+97412345678"), "+974*****678"),
        (.name, .string("Jane"), "J***"),
        (.name, .string("J"), "J***"),
        (.date, .string("1990-04-17"), "1990-**-**"),
        (.date, .string("1990-04-17T10:00:00Z"), "1990-**-**"),
        (.address, .string("1 Sheikh Zayed Rd"), "********"),
        (.text, .string("gold"), "********"),
        (.number, .integer(123456), "********"),
        (.boolean, .bool(true), "********"),
    ])
    func byType(_ type: AttributeType, _ value: AttributeValue, _ masked: String) {
        #expect(Masking.mask(value, as: type) == masked)
    }

    /// The byte-level masks of ASCII e-mails and numbers give exactly what the character-level
    /// ones give, including for malformed values.
    @Test("ASCII fast paths agree with the character-level masks", arguments: [
        "john@example.com", "a@mail.example.co.uk", "@example.com", "x@", "x@y", "x@.com", "x@a..b", "plain", "",
        "first.last+tag@sub.domain.example", "a@b.c", "@", "a@@b.com",
    ])
    func emailFastPath(_ text: String) {
        #expect(Masking.email(text) == Masking.emailByCharacters(text))
    }

    @Test(arguments: ["+971501234567", "+14155552671", "+1 (202) 555-0123", "12345", "+123456", "", "+", "abc", "+97 1 5 0"])
    func phoneFastPath(_ text: String) {
        #expect(Masking.phone(text) == Masking.phoneByCharacters(text))
    }

    @Test("a masked phone hides at least five digits and shows at most seven", arguments: [
        "+12025550123", "+447911123456", "+9665012345678", "+96812345678", "+35312345", "+8613812345678",
    ])
    func phoneHidesHalf(_ number: String) {
        let masked = Masking.phone(number)
        let digits = number.count - 1
        #expect(masked.count == number.count)
        let hidden = masked.filter { $0 == "*" }.count
        #expect(hidden >= 5)
        #expect(digits - hidden <= 7)
        #expect(masked.hasPrefix("+"))
    }

    @Test("full masking does not reveal the length")
    func fullMaskHidesLength() {
        #expect(Masking.mask(.string("x"), as: .text) == Masking.mask(.string(String(repeating: "x", count: 500)), as: .text))
    }
}

@Suite("Ingest elements")
struct CustomerUpsertTests {
    let schema = PIISchema()

    func parse(_ element: JSONValue) throws(Failure) -> CustomerUpsert {
        try CustomerUpsert.parse(element, schema: schema, allowIdentifyingCustomerIDs: false).upsert
    }

    @Test func normalisesAndSplitsSetAndRemove() throws {
        let upsert = try parse(.object([
            "type": .string("customer"), "customer_id": .string("c-1"), "update_existing_only": .bool(true),
            "attributes": .object(["email": .string("A@B.co"), "mobile": .string("+971 50 123 4567"), "first_name": .null]),
        ]))
        #expect(upsert.customerID.rawValue == "c-1")
        #expect(upsert.updateExistingOnly)
        #expect(upsert.set[AttributeName(trusted: "email")] == .string("a@b.co"))
        #expect(upsert.set[AttributeName(trusted: "mobile")] == .string("+971501234567"))
        #expect(upsert.remove == [AttributeName(trusted: "first_name")])
    }

    /// Several refused attributes: the one reported is the first by name, whatever the order in
    /// which the element's object is read.
    @Test func theFirstRefusedAttributeByNameIsReported() {
        for round in 0..<20 {
            var attributes: [String: JSONValue] = ["mobile": .string("12"), "first_name": .object([:]), "email": .string("not-an-e-mail")]
            for i in 0..<round { attributes["ok\(i)"] = .string("v") }
            do {
                _ = try parse(.object(["type": .string("customer"), "customer_id": .string("c-\(round)"), "attributes": .object(attributes)]))
                Issue.record("refused attributes were accepted")
            } catch {
                #expect(error.attribute == "email", "reported \(error.attribute ?? "nil") in round \(round)")
            }
        }
    }

    @Test("values are trimmed of white space at both ends, in any script", arguments: [
        ("plain", "plain"), (" padded ", "padded"), ("\tJane\n", "Jane"), ("\u{A0}Zoë\u{2003}", "Zoë"),
        ("   ", ""), ("", ""), ("a b", "a b"), ("x", "x"), ("e\u{301}", "e\u{301}"), ("\u{301}x ", "\u{301}x"),
    ])
    func trimming(input: String, trimmed: String) {
        #expect(input.trimmingWhitespace() == trimmed)
        #expect(input[...].trimmingWhitespace() == trimmed)
    }

    @Test func unknownAttributesAreInferredAsPII() throws {
        let result = try CustomerUpsert.parse(.object([
            "type": .string("customer"), "customer_id": .string("c-1"),
            "attributes": .object(["plan": .string("gold"), "age": .integer(40), "vip": .bool(true)]),
        ]), schema: schema, allowIdentifyingCustomerIDs: false)
        let inferred = Dictionary(uniqueKeysWithValues: result.newAttributes.map { ($0.name.rawValue, $0) })
        #expect(inferred["plan"]?.type == .text)
        #expect(inferred["age"]?.type == .number)
        #expect(inferred["vip"]?.type == .boolean)
        #expect(result.newAttributes.allSatisfy { $0.pii && !$0.indexed })
    }

    @Test("refusals name the field", arguments: [
        (JSONValue.string("x"), "elements"),
        (.object(["customer_id": .string("c")]), "type"),
        (.object(["type": .string("Customer"), "customer_id": .string("c")]), "type"),
        (.object(["type": .string("event"), "customer_id": .string("c")]), "type"),
        (.object(["type": .string("device"), "customer_id": .string("c")]), "type"),
        (.object(["type": .string("customer")]), "customer_id"),
        (.object(["type": .string("customer"), "customer_id": .integer(5)]), "customer_id"),
        (.object(["type": .string("customer"), "customer_id": .string("c"), "attributes": .array([])]), "attributes"),
        (.object(["type": .string("customer"), "customer_id": .string("c"), "email": .string("x@y.com")]), "email"),
        (.object(["type": .string("customer"), "customer_id": .string("c"), "update_existing_only": .string("yes")]), "update_existing_only"),
        (.object(["type": .string("customer"), "customer_id": .string("c"), "attributes": .object(["tags": .array([])])]), "tags"),
        (.object(["type": .string("customer"), "customer_id": .string("c"), "attributes": .object(["moe_x": .string("1")])]), "moe_x"),
    ])
    func refusals(_ element: JSONValue, _ attribute: String) {
        do {
            _ = try parse(element)
            Issue.record("accepted")
        } catch {
            #expect(error.attribute == attribute)
        }
    }

    @Test func atMostTwentyPIIAttributes() throws {
        func element(_ count: Int) -> JSONValue {
            var attributes: [String: JSONValue] = [:]
            for i in 0..<count { attributes["a\(i)"] = .string("v") }
            return .object(["type": .string("customer"), "customer_id": .string("c"), "attributes": .object(attributes)])
        }
        _ = try parse(element(20))
        do {
            _ = try parse(element(21))
            Issue.record("accepted 21 PII attributes")
        } catch {
            #expect(error.kind == .tooManyAttributes)
        }
    }

    @Test func nonPIIAttributesDoNotCount() throws {
        var schema = PIISchema()
        var attributes: [String: JSONValue] = [:]
        for i in 0..<25 {
            schema.set(AttributeDefinition(name: AttributeName(trusted: "a\(i)"), type: .text, pii: i >= 20 ? false : true))
            attributes["a\(i)"] = .string("v")
        }
        let upsert = try CustomerUpsert.parse(
            .object(["type": .string("customer"), "customer_id": .string("c"), "attributes": .object(attributes)]),
            schema: schema, allowIdentifyingCustomerIDs: false).upsert
        #expect(upsert.set.count == 25)
        #expect(throws: Failure.self) {
            try upsert.checkPIILimit(keeping: ["extra"], schema: schema)
        }
    }

    /// The count after a merge is (existing − removed) ∪ set, PII only; unknown names count.
    @Test func mergedCountKeepsReplacesAndRemoves() throws {
        var schema = PIISchema()
        for i in 0..<30 { schema.set(AttributeDefinition(name: AttributeName(trusted: "p\(i)"), type: .text)) }
        schema.set(AttributeDefinition(name: AttributeName(trusted: "plan"), type: .text, pii: false))
        func upsert(set: [String], remove: [String] = []) -> CustomerUpsert {
            CustomerUpsert(customerID: CustomerID(trusted: "c"), updateExistingOnly: false,
                           set: Dictionary(uniqueKeysWithValues: set.map { (AttributeName(trusted: $0), AttributeValue.string("v")) }),
                           remove: Set(remove.map(AttributeName.init(trusted:))))
        }
        let existing = (0..<15).map { "p\($0)" } + ["plan"]
        // 15 + 5 new = 20: allowed; 15 + 6 new = 21: refused.
        try upsert(set: (15..<20).map { "p\($0)" }).checkPIILimit(keeping: existing, schema: schema)
        #expect(throws: Failure.self) { try upsert(set: (15..<21).map { "p\($0)" }).checkPIILimit(keeping: existing, schema: schema) }
        // Replacing existing attributes does not count them twice.
        try upsert(set: (0..<15).map { "p\($0)" } + (15..<20).map { "p\($0)" }).checkPIILimit(keeping: existing, schema: schema)
        // Two removed make room for two more.
        try upsert(set: (15..<22).map { "p\($0)" }, remove: ["p0", "p1"]).checkPIILimit(keeping: existing, schema: schema)
        #expect(throws: Failure.self) {
            try upsert(set: (15..<22).map { "p\($0)" }, remove: ["p0"]).checkPIILimit(keeping: existing, schema: schema)
        }
        // A name the schema does not know yet counts as PII; a non-PII one does not count.
        #expect(throws: Failure.self) {
            try upsert(set: (15..<20).map { "p\($0)" } + ["brand_new"]).checkPIILimit(keeping: existing, schema: schema)
        }
        try upsert(set: (15..<20).map { "p\($0)" } + ["plan"]).checkPIILimit(keeping: existing, schema: schema)
    }
}

@Suite("Sealed map codec")
struct SealedMapCodecTests {
    @Test func roundTrip() throws {
        let map: [String: [UInt8]] = ["email": [1, 2, 3], "mobile": Array(repeating: 7, count: 300), "x": []]
        #expect(try SealedMapCodec.decode(SealedMapCodec.encode(map)) == map)
        #expect(try SealedMapCodec.decode(SealedMapCodec.encode([:])) == [:])
    }

    @Test func truncatedInputIsRefused() {
        let bytes = SealedMapCodec.encode(["email": [1, 2, 3]])
        for cut in 0..<bytes.count {
            #expect(throws: StoreError.self) { try SealedMapCodec.decode(Array(bytes[..<cut])) }
        }
    }

    @Test("types said not to depend on the value mask every value to the same stars (reads skip decrypting them)",
          arguments: AttributeType.allCases)
    func valueIndependentMasks(_ type: AttributeType) {
        let samples: [AttributeValue] = [.string("jane@example.com"), .string("+971501234567"), .string("Jane"), .string("1990-04-17"),
                                         .string(""), .integer(42), .double(1.5), .bool(true)]
        let masks = Set(samples.map { Masking.mask($0, as: type) })
        if !Masking.dependsOnValue(type) { #expect(masks == [Masking.fully]) } else { #expect(masks.count > 1) }
    }
}
