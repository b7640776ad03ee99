import DomicileCore
import Foundation
import PostgresNIO

extension PostgresVaultStore {
    public func acquireLease(_ job: String, holder: String, now: Date, until: Date) async throws -> Bool {
        try await transaction { [logger] connection in
            try await !connection.rows("""
                INSERT INTO job_leases (job, holder, expires_at) VALUES (\(job), \(holder), \(until.millis))
                ON CONFLICT (job) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at
                    WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= \(now.millis)
                RETURNING holder
                """, logger).isEmpty
        }
    }

    public func addToCounters(scope: String, windowStart: Int64, windowEnd: Int64, increments: [String: Int],
                              now: Date) async throws -> [String: Int] {
        guard !increments.isEmpty else { return [:] }
        let keys = Array(increments.keys)
        let counts = keys.map { Int64(increments[$0]!) }
        return try await transaction { [logger] connection in
            // In key order, so that two nodes adding to the same counters lock them in the same order.
            let rows = try await connection.rows("""
                INSERT INTO window_counters (scope, key, window_start, window_end, count)
                SELECT \(scope), entry.key, \(windowStart), \(windowEnd), entry.count
                FROM unnest(\(keys)::TEXT[], \(counts)::BIGINT[]) AS entry (key, count) ORDER BY entry.key
                ON CONFLICT (scope, key, window_start) DO UPDATE SET count = window_counters.count + excluded.count
                RETURNING key, count
                """, logger)
            _ = try await connection.rows("DELETE FROM window_counters WHERE window_end < \(Int64(now.timeIntervalSince1970) - 60)", logger)
            var totals: [String: Int] = [:]
            for row in rows { totals[try row.text("key")] = Int(try row.int("count")) }
            return totals
        }
    }
}
