@testable import DomicileCore
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

    /// Many in one millisecond, and a clock stepping back a little, still sort in the order made.
    @Test func sortsInTheOrderMade() {
        let generator = TimeOrderedUUIDs()
        let now = Date(timeIntervalSince1970: 1_800_000_000.0005)
        var ids = (0..<1_000).map { _ in generator.next(now: now) }
        ids += (0..<10).map { generator.next(now: now.addingTimeInterval(-Double($0) / 100)) }
        #expect(ids.sorted() == ids)
        // A clock far in the past starts again from there.
        #expect(generator.next(now: now.addingTimeInterval(-10)) < ids[0])
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
