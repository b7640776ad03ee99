import DomicileCore
import Foundation
import GRDB

extension SQLiteVaultStore {
    public func acquireLease(_ job: String, holder: String, now: Date, until: Date) async throws -> Bool {
        try await groupCommit { db in
            try Row.fetchOne(db, sql: """
                INSERT INTO job_leases (job, holder, expires_at) VALUES (?1, ?2, ?3)
                ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                    WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= ?4
                RETURNING holder
                """, arguments: [job, holder, until.millis, now.millis]) != nil
        }
    }

    public func addToCounters(scope: String, windowStart: Int64, windowEnd: Int64, increments: [String: Int],
                              now: Date) async throws -> [String: Int] {
        guard !increments.isEmpty else { return [:] }
        return try await groupCommit { db in
            var totals: [String: Int] = [:]
            for (key, increment) in increments {
                totals[key] = try Int.fetchOne(db, sql: """
                    INSERT INTO window_counters (scope, key, window_start, window_end, count) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (scope, key, window_start) DO UPDATE SET count = count + excluded.count
                    RETURNING count
                    """, arguments: [scope, key, windowStart, windowEnd, increment])
            }
            try db.execute(sql: "DELETE FROM window_counters WHERE window_end < ?", arguments: [Int64(now.timeIntervalSince1970) - 60])
            return totals
        }
    }
}
