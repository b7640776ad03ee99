import DomicileCore
import Foundation
import Testing

@Suite("Random identifiers")
struct RandomIdentifierTests {
    @Test func isAVersion7UUIDInLowerCase() throws {
        let id = RandomIdentifier.uuid()
        let parsed = try #require(UUID(uuidString: id))
        #expect(parsed.uuidString.lowercased() == id)
        let bytes = Array(id.utf8)
        #expect(bytes[14] == UInt8(ascii: "7"))
        #expect("89ab".utf8.contains(bytes[19]))
    }

    /// The first 48 bits are the time in milliseconds: identifiers of different milliseconds sort in creation order.
    @Test func sortsByTime() {
        let start = Date(timeIntervalSince1970: 1_790_000_000)
        let ids = (0..<100).map { RandomIdentifier.uuid(now: start.addingTimeInterval(Double($0) / 100)) }
        #expect(ids.sorted() == ids)
        #expect(ids[0].hasPrefix(String(UInt64(1_790_000_000_000), radix: 16).leftPadded(to: 12).prefix(8)))
    }

    @Test func doesNotRepeat() {
        let now = Date()
        let ids = (0..<10_000).map { _ in RandomIdentifier.uuid(now: now) }
        #expect(Set(ids).count == ids.count)
    }
}

private extension String {
    func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}
