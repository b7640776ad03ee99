import DomicileCore
import Foundation
import Synchronization

/// The record of erasures that outlives a restore: one JSON line per erased customer,
/// `{"workspace_id","tombstone","erased_at"}`, appended and fsynced before the erasure commits.
///
/// It names no one: `tombstone` is the customer id's HMAC-SHA256 under the workspace's
/// blind-index key (the digest the store's tombstones hold), which only the workspace key can
/// recompute. It is kept apart from the database (by default beside it; in production on another
/// volume, or shipped off the node), so that a restored backup can be brought up to date: every
/// restored customer whose digest it lists, and whose data is older than the erasure, is erased
/// again. Written before the commit, a crash between the two leaves a line for an erasure that
/// did not happen: its replay erases a customer who asked to be erased, the safe side.
public final class ErasureJournal: Sendable {
    public let path: String
    private let lock = Mutex(())

    public struct Entry: Sendable, Hashable, Codable {
        public var workspaceID: String
        public var tombstone: String
        public var erasedAt: Date

        public init(workspaceID: String, tombstone: String, erasedAt: Date) {
            self.workspaceID = workspaceID
            self.tombstone = tombstone
            self.erasedAt = erasedAt
        }

        enum CodingKeys: String, CodingKey { case workspaceID = "workspace_id", tombstone, erasedAt = "erased_at" }
    }

    public struct Unusable: Error, CustomStringConvertible {
        public let description: String
    }

    public init(path: String) {
        self.path = path
    }

    /// Appends entries and fsyncs the file; an erasure does not proceed unless this succeeds.
    public func append(_ entries: [Entry]) throws {
        guard !entries.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .millisecondsSince1970
        encoder.outputFormatting = .sortedKeys
        var bytes = Data()
        for entry in entries {
            bytes.append(try encoder.encode(entry))
            bytes.append(0x0A)
        }
        try lock.withLock { _ in
            let descriptor = open(path, O_WRONLY | O_CREAT | O_APPEND, 0o600)
            guard descriptor >= 0 else { throw Unusable(description: "cannot open the erasure journal \(path)") }
            defer { close(descriptor) }
            let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written == bytes.count, fsync(descriptor) == 0 else { throw Unusable(description: "cannot write the erasure journal \(path)") }
        }
    }

    /// Every entry of a journal file; a line cut short by a crash at the end is skipped.
    public static func read(path: String) throws -> [Entry] {
        guard let data = FileManager.default.contents(atPath: path) else { throw Unusable(description: "cannot read the erasure journal \(path)") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .millisecondsSince1970
        return data.split(separator: 0x0A).compactMap { try? decoder.decode(Entry.self, from: Data($0)) }
    }
}

extension Vault {
    /// Erases again, after a restore, the customers the journal says were erased after their
    /// restored data was written: for each workspace with entries, every restored customer's id
    /// digest is computed and matched. Audited and reported to the main data center as any erasure.
    /// - Returns: how many customers were erased.
    public func replayErasures(_ entries: [ErasureJournal.Entry]) async throws -> Int {
        var erased = 0
        for (workspace, journal) in Dictionary(grouping: entries, by: \.workspaceID) {
            guard let id = try? WorkspaceID(validating: workspace), try await store.workspace(id) != nil else { continue }
            var latest: [String: Date] = [:]
            for entry in journal { latest[entry.tombstone] = max(latest[entry.tombstone] ?? .distantPast, entry.erasedAt) }
            let keys = try await keyring.keys(for: id)
            var after: CustomerID?
            var due: [CustomerID] = []
            while true {
                let page = try await store.customerIDs(workspace: id, after: after, limit: 1_000)
                guard let last = page.last else { break }
                after = last
                // Each customer's digest once: the erasure time it is listed with, if any.
                var listed: [CustomerID: Date] = [:]
                for customer in page {
                    if let erasedAt = latest[tombstone(customer, keys: keys).hexEncoded] { listed[customer] = erasedAt }
                }
                guard !listed.isEmpty else { continue }
                for (customer, record) in try await store.customers(Array(listed.keys), workspace: id)
                where record.updatedAt <= listed[customer]! {
                    due.append(customer)
                }
            }
            for start in stride(from: 0, to: due.count, by: 500) {
                erased += try await erase(Array(due[start..<min(start + 500, due.count)]), workspace: id,
                                          actor: .system(job: "restore"), requestID: nil).count
            }
        }
        return erased
    }
}
