import DomicileCore
@testable import DomicileSQLite
import DomicileTestSupport
import GRDB
import HTTPTypes
import HummingbirdTesting
import Testing

/// A store that cannot grow: SQLite answers `SQLITE_FULL` past `max_page_count` as it does on a
/// full disk. (The real full disk, where the commit's WAL append fails, is FaultDrillTests'.)
@Suite("A full store", .enabled(if: TestStore.selected == .sqlite))
struct StorageFullTests {
    /// Caps the database at its current size, or lifts the cap (nil).
    static func cap(_ store: SQLiteVaultStore, lifted: Bool = false) async throws {
        try await store.pool.writeWithoutTransaction { db in
            let pages = lifted ? 1_073_741_823 : try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            try db.execute(sql: "PRAGMA max_page_count = \(pages)")
        }
    }

    static func customers(_ prefix: String, _ count: Int = 20) -> String {
        let elements = (0..<count).map { customerJSON("\(prefix)-\($0)", #"{"email":"\#(prefix)-\#($0)@example.com"}"#) }
        return #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#
    }

    @Test func aWriteRefusedForWantOfSpaceIs503AndLaterGroupsCommitOnceThereIsRoom() async throws {
        let f = try await APIFixture.make(rateLimit: 100_000)
        try await f.test { client in
            let before = try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: Self.customers("pre"))
            #expect(before.status == .ok)
            try await Self.cap(try #require(f.sqlite))
            var refusal: TestResponse?
            for number in 0..<50 where refusal == nil {
                let answer = try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: Self.customers("c\(number)"))
                if answer.status != .ok { refusal = answer }
            }
            let full = try #require(refusal, "the capped store kept accepting writes")
            #expect(full.status == .serviceUnavailable)
            #expect(full.headers[.retryAfter] == "30")
            #expect(full.json["status"] as? String == "fail")
            #expect(full.error["type"] as? String == "ServiceUnavailableError")
            #expect(full.error["message"] as? String == "the vault's storage is full; retry later")
            #expect((full.error["request_id"] as? String)?.isEmpty == false)

            // Concurrent writes share a group commit: all are refused while full, and the failed
            // groups leave nothing behind that stops the next ones.
            let statuses = { (prefix: String) async throws -> [HTTPResponse.Status] in
                try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                    for writer in 0..<8 {
                        group.addTask {
                            try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: Self.customers("\(prefix)\(writer)")).status
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            }
            #expect(try await statuses("full").allSatisfy { $0 == .serviceUnavailable })
            let read = try await client.send(.get, "/v1/workspaces/acme/customers/pre-0", auth: f.auth)
            #expect(read.status == .ok)
            try await Self.cap(try #require(f.sqlite), lifted: true)
            #expect(try await statuses("room").allSatisfy { $0 == .ok })
            let refused = try await client.send(.get, "/v1/workspaces/acme/customers/full0-0", auth: f.auth)
            #expect(refused.status == .notFound)
        }
    }
}
