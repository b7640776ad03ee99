import Crypto
import DomicileClient
import DomicileCore
import Foundation
import Testing

/// The brand-side envelope against the specification's vectors (the Python reference encoder
/// checks the same file), and the envelope checks Domicile makes on ingest.
struct ClientEnvelopeTests {
    struct Vectors: Decodable {
        struct Vector: Decodable {
            var customer_id: String
            var attribute: String
            var value: JSONValue
            var plaintext_hex: String
            var aad_hex: String
            var envelope: JSONValue
        }
        var workspace: String
        var brand_key: String
        var index_key: String
        var key_id: String
        var vectors: [Vector]
    }

    static func vectors() throws -> Vectors {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("clients/test-vectors.json")
        return try JSONDecoder().decode(Vectors.self, from: Data(contentsOf: url))
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02x", $0) }.joined() }

    @Test func sealingWithTheVectorsNoncesGivesTheVectorsEnvelopes() throws {
        let vectors = try Self.vectors()
        let key = SymmetricKey(data: Data(base64Encoded: vectors.brand_key)!)
        let keys = try BrandKeys(encryption: [key], index: SymmetricKey(data: Data(base64Encoded: vectors.index_key)!))
        #expect(BrandKeys.keyID(of: key) == vectors.key_id)
        for vector in vectors.vectors {
            let value = try #require(AttributeValue(scalar: vector.value))
            #expect(Self.hex(BrandKeys.plaintext(value)) == vector.plaintext_hex, "\(vector.attribute)")
            #expect(Self.hex(BrandKeys.associatedData(workspace: vectors.workspace, customer: vector.customer_id, attribute: vector.attribute))
                    == vector.aad_hex)
            let expected = try ClientEnvelope.parse(vector.envelope, attribute: vector.attribute)
            let sealed = try keys.seal(value, workspace: vectors.workspace, customer: vector.customer_id, attribute: vector.attribute,
                                       masked: expected.masked, indexed: expected.index != nil, nonce: expected.nonce)
            #expect(sealed == expected, "\(vector.attribute)")
            #expect(try keys.open(expected, workspace: vectors.workspace, customer: vector.customer_id, attribute: vector.attribute) == value)
            // Bound to its slot: another customer or attribute does not open it.
            #expect(throws: ClientError.self) {
                try keys.open(expected, workspace: vectors.workspace, customer: vector.customer_id + "x", attribute: vector.attribute)
            }
            #expect(throws: ClientError.self) {
                try keys.open(expected, workspace: "other", customer: vector.customer_id, attribute: vector.attribute)
            }
        }
    }

    @Test func aPayloadIsValidatedNormalisedAndEncryptedThenAnExportDecrypts() throws {
        let keys = try BrandKeys(encryption: [SymmetricKey(size: .bits256)], index: SymmetricKey(size: .bits256))
        var schema = PIISchema()
        schema.set(AttributeDefinition(name: AttributeName(trusted: "plan"), type: .text, pii: false))
        let client = ClientPayload(keys: keys, workspace: WorkspaceID(trusted: "acme"), schema: schema)
        let payload = try JSONParser.parse(Array("""
            {"type":"transition","elements":[{"type":"customer","customer_id":"c-1",
             "attributes":{"email":"  Jane.Doe@Example.COM ","mobile":"+971 50 123 4567","first_name":"Jane","plan":"gold","city":null}}]}
            """.utf8))
        let encrypted = try client.encrypt(payload)
        guard case .array(let elements)? = encrypted["elements"], case .object(let attributes)? = elements.first?["attributes"] else {
            Issue.record("no elements")
            return
        }
        #expect(attributes["plan"] == .string("gold"))
        #expect(attributes["city"] == .null)
        let email = try ClientEnvelope.parse(try #require(attributes["email"]), attribute: "email")
        #expect(email.masked == "j***@e******.com")
        #expect(email.index == (try keys.digest(.string("jane.doe@example.com"), attribute: "email")))
        let mobile = try ClientEnvelope.parse(try #require(attributes["mobile"]), attribute: "mobile")
        #expect(mobile.index == (try keys.digest(.string("+971501234567"), attribute: "mobile")))
        #expect(try ClientEnvelope.parse(try #require(attributes["first_name"]), attribute: "first_name").index == nil)
        // An export carries the envelopes; decrypted on the brand's side it is in clear again.
        let export: JSONValue = .object(["export": .object(["customers": .array([.object([
            "customer_id": .string("c-1"), "attributes": .object(attributes.filter { $0.value != .null })])])])])
        let opened = try client.decryptExport(export)
        guard case .array(let customers)? = opened["export"]?["customers"] else { Issue.record("no customers"); return }
        #expect(customers.first?["attributes"]?["email"] == .string("jane.doe@example.com"))
        #expect(customers.first?["attributes"]?["mobile"] == .string("+971501234567"))
        #expect(customers.first?["attributes"]?["plan"] == .string("gold"))
        // Invalid values are refused before anything is encrypted, naming the element and the attribute only.
        let bad = try JSONParser.parse(Array(#"{"type":"transition","elements":[{"type":"customer","customer_id":"c-2","attributes":{"mobile":"050 123"}}]}"#.utf8))
        #expect { try client.encrypt(bad) } throws: { error in
            "\(error)".contains("element 0") && "\(error)".contains("mobile") && !"\(error)".contains("050 123")
        }
    }

    @Test func domicileRefusesMalformedEnvelopesNamingTheField() throws {
        func refusal(_ json: String) -> String? {
            do {
                _ = try ClientEnvelope.parse(try JSONParser.parse(Array(json.utf8)), attribute: "email")
                return nil
            } catch let failure as Failure {
                return failure.message
            } catch {
                return "\(error)"
            }
        }
        let nonce = Data(count: 12).base64EncodedString(), sealed = Data(count: 40).base64EncodedString()
        #expect(refusal(#"{"domicile_envelope":1,"key_id":"k1","nonce":"\#(nonce)","ciphertext":"\#(sealed)"}"#) == nil)
        #expect(refusal(#"{"domicile_envelope":2,"key_id":"k1","nonce":"\#(nonce)","ciphertext":"\#(sealed)"}"#)?.contains("domicile_envelope") == true)
        #expect(refusal(#"{"domicile_envelope":1,"key_id":"k 1","nonce":"\#(nonce)","ciphertext":"\#(sealed)"}"#)?.contains("key_id") == true)
        #expect(refusal(#"{"domicile_envelope":1,"key_id":"k1","nonce":"AAAA","ciphertext":"\#(sealed)"}"#)?.contains("nonce") == true)
        #expect(refusal(#"{"domicile_envelope":1,"key_id":"k1","nonce":"\#(nonce)","ciphertext":"AAAA"}"#)?.contains("ciphertext") == true)
        #expect(refusal(#"{"domicile_envelope":1,"key_id":"k1","nonce":"\#(nonce)","ciphertext":"\#(sealed)","index":"AAAA"}"#)?.contains("index") == true)
        #expect(refusal(#"{"domicile_envelope":1,"key_id":"k1","nonce":"\#(nonce)","ciphertext":"\#(sealed)","extra":1}"#)?.contains("unknown field") == true)
        #expect(refusal(#""jane@example.com""#)?.contains("envelope object") == true)
    }
}

extension AttributeValue {
    init?(scalar json: JSONValue) {
        switch json {
        case .string(let text): self = .string(text)
        case .integer(let number): self = .integer(number)
        case .double(let number): self = .double(number)
        case .bool(let flag): self = .bool(flag)
        default: return nil
        }
    }
}
