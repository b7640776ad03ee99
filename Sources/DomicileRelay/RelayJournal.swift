import Foundation
import GRDB

/// The relay's own durable memory, a SQLite file beside it: which messages it handed to a
/// provider and with what outcome, so that a message Domicile hands again (the report was lost,
/// the relay restarted) is reported again rather than sent twice; and the providers' status
/// reports not yet forwarded to Domicile. It holds message ids, provider ids and codes: no value.
final class RelayJournal: Sendable {
    let queue: DatabaseQueue

    /// What the journal knows of one message.
    enum Entry: Equatable {
        /// Handed to the provider, outcome unknown: the relay stopped mid-call.
        case sending
        case done(outcome: String, providerMessageID: String?, code: String?)
    }

    init(path: String) throws {
        var configuration = Configuration()
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL")
        }
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try queue.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS handovers (
                    message_id TEXT PRIMARY KEY,
                    state TEXT NOT NULL,
                    outcome TEXT,
                    provider_message_id TEXT,
                    code TEXT,
                    reported INTEGER NOT NULL DEFAULT 0,
                    at INTEGER NOT NULL
                );
                CREATE TABLE IF NOT EXISTS statuses (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    body TEXT NOT NULL
                );
                """)
        }
    }

    func entries(_ ids: [String]) throws -> [String: Entry] {
        try queue.read { db in
            var found: [String: Entry] = [:]
            for id in ids {
                guard let row = try Row.fetchOne(db, sql: "SELECT * FROM handovers WHERE message_id = ?", arguments: [id]) else { continue }
                found[id] = row["state"] == "sending" ? .sending
                    : .done(outcome: row["outcome"], providerMessageID: row["provider_message_id"], code: row["code"])
            }
            return found
        }
    }

    /// Before the provider calls: one commit for the batch.
    func markSending(_ ids: [String]) throws {
        try queue.write { db in
            for id in ids {
                try db.execute(sql: """
                    INSERT INTO handovers (message_id, state, at) VALUES (?, 'sending', ?)
                    ON CONFLICT (message_id) DO UPDATE SET state = 'sending', outcome = NULL, reported = 0, at = excluded.at
                    """, arguments: [id, Int64(Date().timeIntervalSince1970)])
            }
        }
    }

    /// After the provider calls: one commit for the batch.
    func markDone(_ outcomes: [(id: String, outcome: String, providerMessageID: String?, code: String?)]) throws {
        try queue.write { db in
            for entry in outcomes {
                try db.execute(sql: """
                    INSERT INTO handovers (message_id, state, outcome, provider_message_id, code, at) VALUES (?, 'done', ?, ?, ?, ?)
                    ON CONFLICT (message_id) DO UPDATE SET state = 'done', outcome = excluded.outcome,
                        provider_message_id = excluded.provider_message_id, code = excluded.code, reported = 0, at = excluded.at
                    """, arguments: [entry.id, entry.outcome, entry.providerMessageID, entry.code, Int64(Date().timeIntervalSince1970)])
            }
        }
    }

    /// Outcomes Domicile has not confirmed yet.
    func unreported(limit: Int) throws -> [(id: String, outcome: String, providerMessageID: String?, code: String?)] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM handovers WHERE state = 'done' AND reported = 0 LIMIT ?", arguments: [limit]).map {
                ($0["message_id"], $0["outcome"], $0["provider_message_id"], $0["code"])
            }
        }
    }

    /// Domicile has them. A transient outcome is forgotten (the next hand-over is a new attempt);
    /// the others are kept a week, in case the message is handed again.
    func markReported(_ ids: [String]) throws {
        try queue.write { db in
            for id in ids {
                try db.execute(sql: "DELETE FROM handovers WHERE message_id = ? AND outcome = 'transient'", arguments: [id])
                try db.execute(sql: "UPDATE handovers SET reported = 1 WHERE message_id = ?", arguments: [id])
            }
            try db.execute(sql: "DELETE FROM handovers WHERE reported = 1 AND at < ?",
                           arguments: [Int64(Date().timeIntervalSince1970) - 7 * 86_400])
        }
    }

    func addStatus(_ body: String) throws {
        try queue.write { db in try db.execute(sql: "INSERT INTO statuses (body) VALUES (?)", arguments: [body]) }
    }

    func pendingStatuses(limit: Int) throws -> [(id: Int64, body: String)] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT id, body FROM statuses ORDER BY id LIMIT ?", arguments: [limit]).map { ($0["id"], $0["body"]) }
        }
    }

    func removeStatuses(through id: Int64) throws {
        try queue.write { db in try db.execute(sql: "DELETE FROM statuses WHERE id <= ?", arguments: [id]) }
    }
}
