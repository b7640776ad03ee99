import Crypto
import Foundation
import Testing
@testable import DomicileCore
@testable import DomicileVault

@Suite("Envelope encryption")
struct EnvelopeTests {
    let workspace = WorkspaceID(trusted: "acme")
    let customer = CustomerID(trusted: "c-1")
    let email = AttributeName(trusted: "email")
    let dataKey = SymmetricKey(size: .bits256)

    @Test("every value type opens to what was sealed", arguments: [
        AttributeValue.string("jane@example.com"), .string(""), .string("نص عربي"), .integer(-42), .integer(.max),
        .double(3.25), .bool(true), .bool(false),
    ])
    func roundTrip(_ value: AttributeValue) throws {
        let sealed = try Envelope.seal(value, with: dataKey, workspace: workspace, customer: customer, attribute: email)
        #expect(try Envelope.open(sealed, with: dataKey, workspace: workspace, customer: customer, attribute: email) == value)
        #expect(try Envelope.kind(of: sealed) == .vault)
    }

    @Test func sealingTwiceGivesDifferentCiphertexts() throws {
        let a = try Envelope.seal(.string("x"), with: dataKey, workspace: workspace, customer: customer, attribute: email)
        let b = try Envelope.seal(.string("x"), with: dataKey, workspace: workspace, customer: customer, attribute: email)
        #expect(a != b)
    }

    @Test func plaintextIsNotInTheCiphertext() throws {
        let sealed = try Envelope.seal(.string("marker-4f1c2d@example.com"), with: dataKey, workspace: workspace, customer: customer, attribute: email)
        #expect(!Data(sealed).contains(Data("marker-4f1c2d".utf8)))
    }

    @Test("a value moved to another slot does not open", arguments: [
        ("acme", "c-2", "email"), ("acme", "c-1", "mobile"), ("other", "c-1", "email"), ("acme", "c-1", "emai"),
    ])
    func aadBindsTheSlot(_ ws: String, _ id: String, _ attribute: String) throws {
        let sealed = try Envelope.seal(.string("jane@example.com"), with: dataKey, workspace: workspace, customer: customer, attribute: email)
        #expect(throws: KeyError.self) {
            try Envelope.open(sealed, with: dataKey, workspace: WorkspaceID(trusted: ws), customer: CustomerID(trusted: id),
                              attribute: AttributeName(trusted: attribute))
        }
    }

    @Test func anyFlippedBitIsDetected() throws {
        let sealed = try Envelope.seal(.string("jane@example.com"), with: dataKey, workspace: workspace, customer: customer, attribute: email)
        for byte in sealed.indices {
            for bit in [0, 3, 7] {
                var tampered = sealed
                tampered[byte] ^= UInt8(1 << bit)
                #expect(throws: KeyError.self) {
                    try Envelope.open(tampered, with: dataKey, workspace: workspace, customer: customer, attribute: email)
                }
            }
        }
    }

    @Test func anotherDataKeyDoesNotOpen() throws {
        let sealed = try Envelope.seal(.string("x"), with: dataKey, workspace: workspace, customer: customer, attribute: email)
        #expect(throws: KeyError.self) {
            try Envelope.open(sealed, with: SymmetricKey(size: .bits256), workspace: workspace, customer: customer, attribute: email)
        }
    }

    @Test func wrappedDataKeyIsBoundToItsCustomerAndVersioned() throws {
        let workspaceKey = SymmetricKey(size: .bits256)
        let wrapped = try Envelope.wrapDataKey(dataKey, with: workspaceKey, version: 7, workspace: workspace, customer: customer)
        #expect(try Envelope.workspaceKeyVersion(ofWrappedDataKey: wrapped) == 7)
        #expect(try Envelope.unwrapDataKey(wrapped, with: workspaceKey, workspace: workspace, customer: customer) == dataKey)
        #expect(throws: KeyError.self) {
            try Envelope.unwrapDataKey(wrapped, with: workspaceKey, workspace: workspace, customer: CustomerID(trusted: "c-2"))
        }
        #expect(throws: KeyError.self) {
            try Envelope.unwrapDataKey(wrapped, with: SymmetricKey(size: .bits256), workspace: workspace, customer: customer)
        }
        var tampered = wrapped
        tampered[tampered.count - 1] ^= 1
        #expect(throws: KeyError.self) {
            try Envelope.unwrapDataKey(tampered, with: workspaceKey, workspace: workspace, customer: customer)
        }
    }

    // Every format-1 value, whichever implementation sealed it, is `prefix | SealedBox.combined`:
    // databases written before the cipher went back to swift-crypto must still open.
    @Test func valuesAreSwiftCryptoCombinedBoxesBothWays() throws {
        let aad = Envelope.associatedData("value", [workspace.rawValue, customer.rawValue, email.rawValue])
        let value = AttributeValue.string("jane@example.com")
        let sealed = try Envelope.seal(value, with: dataKey, workspace: workspace, customer: customer, attribute: email)
        #expect(Array(sealed.prefix(2)) == [1, Envelope.ValueKind.vault.rawValue])
        let box = try AES.GCM.SealedBox(combined: sealed.dropFirst(2))
        #expect(try Array(AES.GCM.open(box, using: dataKey, authenticating: aad)) == value.plaintext)

        let earlier = try AES.GCM.seal(value.plaintext, using: dataKey, authenticating: aad)
        let stored = [1, Envelope.ValueKind.vault.rawValue] + Array(earlier.combined!)
        #expect(try Envelope.open(stored, with: dataKey, workspace: workspace, customer: customer, attribute: email) == value)
    }

    @Test func wrappedDataKeysAreSwiftCryptoCombinedBoxesBothWays() throws {
        let workspaceKey = SymmetricKey(size: .bits256)
        let aad = Envelope.associatedData("datakey", [workspace.rawValue, customer.rawValue])
        let wrapped = try Envelope.wrapDataKey(dataKey, with: workspaceKey, version: 3, workspace: workspace, customer: customer)
        let box = try AES.GCM.SealedBox(combined: wrapped.dropFirst(5))
        #expect(SymmetricKey(data: try AES.GCM.open(box, using: workspaceKey, authenticating: aad)) == dataKey)

        let earlier = try dataKey.withUnsafeBytes { try AES.GCM.seal(Data($0), using: workspaceKey, authenticating: aad) }
        let stored = [1, 0, 0, 0, 3] + Array(earlier.combined!)
        #expect(try Envelope.unwrapDataKey(stored, with: workspaceKey, workspace: workspace, customer: customer) == dataKey)
    }

    @Test func oneCustomerCipherSealsAndOpensManyValuesInAnyOrder() throws {
        let cipher = try Envelope.CustomerCipher(dataKey: dataKey, workspace: workspace, customer: customer)
        let values: [(AttributeName, AttributeValue)] = (0..<12).map { n in
            (AttributeName(trusted: "attribute_\(n)"), n % 3 == 0 ? .integer(Int64(n)) : .string(String(repeating: "v", count: n * 7)))
        }
        let sealed = try values.map { try cipher.seal($0.1, attribute: $0.0) }
        // A failed open (wrong attribute) leaves the cipher usable for the next value.
        #expect(throws: KeyError.self) { try cipher.open(sealed[0], attribute: values[1].0) }
        for index in sealed.indices.reversed() {
            #expect(try cipher.open(sealed[index], attribute: values[index].0) == values[index].1)
            #expect(try Envelope.open(sealed[index], with: dataKey, workspace: workspace, customer: customer,
                                      attribute: values[index].0) == values[index].1)
        }
    }

    @Test func truncatedCiphertextIsRefused() throws {
        let sealed = try Envelope.seal(.string("x"), with: dataKey, workspace: workspace, customer: customer, attribute: email)
        for length in [0, 1, 2, 13, 2 + 12 + 15, sealed.count - 1] {
            #expect(throws: KeyError.self) {
                try Envelope.open(Array(sealed.prefix(length)), with: dataKey, workspace: workspace, customer: customer, attribute: email)
            }
        }
    }

    @Test func aBrandEnvelopeIsSealedAgainUnderTheDataKeyAndBoundToItsSlot() throws {
        let envelope = ClientEnvelope(keyID: "k1", nonce: Array(repeating: 7, count: 12), ciphertext: Array(repeating: 9, count: 40),
                                      masked: "j***@e******.com", index: Array(repeating: 1, count: 32))
        let cipher = try Envelope.CustomerCipher(dataKey: dataKey, workspace: workspace, customer: customer)
        let sealed = try cipher.seal(envelope, attribute: email)
        #expect(try Envelope.kind(of: sealed) == .client)
        #expect(try cipher.openEnvelope(sealed, attribute: email) == envelope)
        // Not a vault value, and not another attribute's or customer's.
        #expect(throws: KeyError.self) { try cipher.open(sealed, attribute: email) }
        #expect(throws: KeyError.self) { try cipher.openEnvelope(sealed, attribute: AttributeName(trusted: "mobile")) }
        let other = try Envelope.CustomerCipher(dataKey: dataKey, workspace: workspace, customer: CustomerID(trusted: "c-other"))
        #expect(throws: KeyError.self) { try other.openEnvelope(sealed, attribute: email) }
        // The brand's ciphertext is not readable in Domicile's sealed bytes either.
        #expect(!(0...(sealed.count - 8)).contains { Array(sealed[$0..<$0 + 8]) == [UInt8](repeating: 9, count: 8) })
    }
}

@Suite("Blind index")
struct BlindIndexTests {
    let key = SymmetricKey(size: .bits256)
    let workspace = WorkspaceID(trusted: "acme")

    @Test func digestsAreDeterministicPerKeyAndAttribute() {
        let index = BlindIndex(workspaceKey: key, workspace: workspace)
        let email = AttributeName(trusted: "email")
        let value = AttributeValue.string("jane@example.com")
        #expect(index.digest(value, attribute: email) == index.digest(value, attribute: email))
        #expect(index.digest(value, attribute: email).count == 32)
        #expect(index.digest(value, attribute: email) != index.digest(value, attribute: AttributeName(trusted: "work_email")))
        #expect(index.digest(value, attribute: email) != index.digest(.string("jane@example.org"), attribute: email))
        let otherWorkspace = BlindIndex(workspaceKey: key, workspace: WorkspaceID(trusted: "other"))
        #expect(index.digest(value, attribute: email) != otherWorkspace.digest(value, attribute: email))
        let otherKey = BlindIndex(workspaceKey: SymmetricKey(size: .bits256), workspace: workspace)
        #expect(index.digest(value, attribute: email) != otherKey.digest(value, attribute: email))
    }

    /// RFC 4231, test cases 1, 2 and 4 (keys no longer than a block).
    @Test("HMAC-SHA256 test vectors", arguments: [
        (Array(repeating: UInt8(0x0b), count: 20), Array("Hi There".utf8),
         "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
        (Array("Jefe".utf8), Array("what do ya want for nothing?".utf8),
         "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
        (Array(UInt8(1)...UInt8(25)), Array(repeating: UInt8(0xcd), count: 50),
         "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    ])
    func hmacVectors(_ key: [UInt8], _ data: [UInt8], _ expected: String) {
        let mac = HMACSHA256(key: SymmetricKey(data: key))
        // Twice, and with the data fed in two parts: the keyed states are copied, not consumed.
        for split in [data.count, data.count / 2] {
            let code = mac.authenticationCode { update in
                data[..<split].withUnsafeBytes { update($0) }
                data[split...].withUnsafeBytes { update($0) }
            }
            #expect(code.hexEncoded == expected)
        }
    }

    /// One index serves every thread of the server at once.
    @Test func concurrentDigestsAgree() async throws {
        let index = BlindIndex(workspaceKey: key, workspace: workspace)
        let email = AttributeName(trusted: "email")
        let expected = (0..<200).map { index.digest(.string("user\($0)@example.com"), attribute: email) }
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<8 {
                group.addTask { (0..<200).allSatisfy { index.digest(.string("user\($0)@example.com"), attribute: email) == expected[$0] } }
            }
            for try await agreed in group { #expect(agreed) }
        }
    }

    // Digests are continued from a keyed HMAC state now; stored indexes must still match.
    @Test func digestIsHMACOfNameZeroAndValue() {
        let index = BlindIndex(workspaceKey: key, workspace: workspace)
        let derived = HKDF<SHA256>.deriveKey(inputKeyMaterial: key, salt: Array("domicile.blind-index.v1".utf8),
                                             info: Array(workspace.rawValue.utf8), outputByteCount: 32)
        for (name, value) in [("email", AttributeValue.string("jane@example.com")), ("mobile", .string("+971501234567")),
                              ("loyalty_no", .integer(42)), ("vip", .bool(true))] {
            let expected = HMAC<SHA256>.authenticationCode(for: Array(name.utf8) + [0] + value.plaintext, using: derived)
            #expect(index.digest(value, attribute: AttributeName(trusted: name)) == Array(expected))
            // Twice: the keyed state is copied, not consumed.
            #expect(index.digest(value, attribute: AttributeName(trusted: name)) == Array(expected))
        }
    }
}

@Suite("Local root key file")
struct LocalRootKeyTests {
    func temporaryPath() -> String {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-key-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder.appendingPathComponent("root.key").path
    }

    @Test func createdOwnerOnlyAndReloadedIdentically() async throws {
        let path = temporaryPath()
        let (first, created) = try LocalKeyFileRootKey.loadOrCreate(at: path)
        #expect(created)
        let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? NSNumber
        #expect(mode?.intValue == 0o600)
        let key = SymmetricKey(size: .bits256)
        let wrapped = try await first.wrap(key, context: "workspace/acme/v1")
        let (second, createdAgain) = try LocalKeyFileRootKey.loadOrCreate(at: path)
        #expect(!createdAgain)
        #expect(try await second.unwrap(wrapped, context: "workspace/acme/v1") == key)
        await #expect(throws: KeyError.self) { try await second.unwrap(wrapped, context: "workspace/acme/v2") }
        await #expect(throws: KeyError.self) {
            try await LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)).unwrap(wrapped, context: "workspace/acme/v1")
        }
    }

    @Test func aKeyFileOthersCanReadIsRefused() throws {
        let path = temporaryPath()
        _ = try LocalKeyFileRootKey.loadOrCreate(at: path)
        chmod(path, 0o644)
        #expect(throws: KeyError.self) { try LocalKeyFileRootKey.loadOrCreate(at: path) }
    }

    @Test func aCorruptKeyFileIsRefused() throws {
        let path = temporaryPath()
        FileManager.default.createFile(atPath: path, contents: Data("not a key".utf8), attributes: [.posixPermissions: 0o600])
        #expect(throws: KeyError.self) { try LocalKeyFileRootKey.loadOrCreate(at: path) }
    }
}
