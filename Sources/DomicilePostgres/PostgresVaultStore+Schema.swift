import DomicileCore
import Foundation
import PostgresNIO

/// The database was migrated by a newer Domicile than this one: starting would write rows the
/// newer schema does not expect, so nothing starts.
public struct DatabaseSchemaTooNew: Error, CustomStringConvertible {
    public let found: Int
    public let known: Int
    public var description: String {
        "the database's schema is at version \(found), newer than this Domicile knows (\(known)): run a Domicile at least as new as the one that migrated it"
    }
}

extension PostgresVaultStore {
    /// Versioned migrations, applied in order, each in the transaction that records it. Never edit
    /// one that has shipped: add the next.
    static let migrations: [(version: Int, name: String, statements: [String])] = [
        (1, "foundation", [
            """
            CREATE TABLE workspaces (
                id TEXT PRIMARY KEY,
                region TEXT NOT NULL,
                rate_limit_per_minute BIGINT NOT NULL,
                suspended BOOLEAN NOT NULL,
                allow_identifying_customer_ids BOOLEAN NOT NULL,
                retention_days BIGINT,
                refuse_erased_customer_ids BOOLEAN NOT NULL,
                events_url TEXT,
                events_secret BYTEA,
                created_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE workspace_keys (
                workspace_id TEXT NOT NULL REFERENCES workspaces (id),
                version BIGINT NOT NULL,
                wrapped_key BYTEA NOT NULL,
                created_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, version)
            )
            """,
            """
            CREATE TABLE api_keys (
                workspace_id TEXT NOT NULL REFERENCES workspaces (id),
                key_id TEXT NOT NULL,
                secret_hash BYTEA NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                revoked_at BIGINT,
                PRIMARY KEY (workspace_id, key_id)
            )
            """,
            """
            CREATE TABLE schema_attributes (
                workspace_id TEXT NOT NULL REFERENCES workspaces (id),
                name TEXT NOT NULL,
                type TEXT NOT NULL,
                pii BOOLEAN NOT NULL,
                indexed BOOLEAN NOT NULL,
                PRIMARY KEY (workspace_id, name)
            )
            """,
            """
            CREATE TABLE customers (
                workspace_id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                data_key BYTEA NOT NULL,
                attributes BYTEA NOT NULL,
                blind_index BYTEA NOT NULL,
                restricted BOOLEAN NOT NULL,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                revision BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, customer_id)
            )
            """,
            "CREATE INDEX customers_by_update ON customers (workspace_id, updated_at)",
            """
            CREATE TABLE blind_index (
                workspace_id TEXT NOT NULL,
                attribute TEXT NOT NULL,
                digest BYTEA NOT NULL,
                customer_id TEXT NOT NULL,
                PRIMARY KEY (workspace_id, attribute, digest, customer_id)
            )
            """,
            """
            CREATE TABLE tombstones (
                workspace_id TEXT NOT NULL,
                digest BYTEA NOT NULL,
                erased_at BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, digest)
            )
            """,
            """
            CREATE TABLE operators (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL REFERENCES workspaces (id),
                email_digest BYTEA NOT NULL,
                sealed_email BYTEA NOT NULL,
                role TEXT NOT NULL,
                view_pii BOOLEAN NOT NULL,
                password_hash TEXT NOT NULL,
                failed_attempts BIGINT NOT NULL,
                locked_until BIGINT,
                created_at BIGINT NOT NULL,
                UNIQUE (workspace_id, email_digest)
            )
            """,
            """
            CREATE TABLE sessions (
                token_hash BYTEA PRIMARY KEY,
                operator_id TEXT NOT NULL,
                workspace_id TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE subject_requests (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                type TEXT NOT NULL,
                status TEXT NOT NULL,
                submitted_at BIGINT,
                received_at BIGINT NOT NULL,
                completed_at BIGINT,
                identity_types TEXT NOT NULL,
                customer_ids TEXT NOT NULL,
                actor_type TEXT NOT NULL,
                actor_id TEXT NOT NULL
            )
            """,
            """
            CREATE TABLE audit_log (
                workspace_id TEXT NOT NULL,
                seq BIGINT NOT NULL,
                at BIGINT NOT NULL,
                actor_type TEXT NOT NULL,
                actor_id TEXT NOT NULL,
                action TEXT NOT NULL,
                customer_id TEXT,
                attributes TEXT NOT NULL,
                sealed_reason BYTEA,
                request_id TEXT,
                previous_hash BYTEA NOT NULL,
                hash BYTEA NOT NULL,
                format BIGINT NOT NULL,
                PRIMARY KEY (workspace_id, seq)
            )
            """,
            """
            CREATE TABLE audit_heads (
                workspace_id TEXT PRIMARY KEY,
                seq BIGINT NOT NULL,
                hash BYTEA NOT NULL
            )
            """,
            // Ids are time-ordered (version 7 UUIDs, in order within one node): they order a
            // workspace's events without a sequence, which every node would contend on.
            """
            CREATE TABLE outbound_events (
                id TEXT PRIMARY KEY,
                workspace_id TEXT NOT NULL,
                type TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                at BIGINT NOT NULL,
                message_id TEXT,
                campaign_id TEXT,
                channel TEXT,
                status TEXT,
                error_code TEXT,
                delivered_at BIGINT
            )
            """,
            "CREATE INDEX outbound_events_pending ON outbound_events (workspace_id, delivered_at, id)",
            """
            CREATE TABLE send_keys (
                workspace_id TEXT NOT NULL,
                key_id TEXT NOT NULL,
                sealed_secret BYTEA NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT,
                revoked_at BIGINT,
                PRIMARY KEY (workspace_id, key_id)
            )
            """,
            """
            CREATE TABLE providers (
                workspace_id TEXT NOT NULL,
                channel TEXT NOT NULL,
                kind TEXT NOT NULL,
                sealed_settings BYTEA NOT NULL,
                PRIMARY KEY (workspace_id, channel)
            )
            """,
            """
            CREATE TABLE messages (
                workspace_id TEXT NOT NULL,
                message_id TEXT NOT NULL,
                customer_id TEXT NOT NULL,
                campaign_id TEXT,
                channel TEXT NOT NULL,
                status TEXT NOT NULL,
                attempts BIGINT NOT NULL,
                next_attempt_at BIGINT NOT NULL,
                provider_message_id TEXT,
                error_code TEXT,
                segments BIGINT,
                encoding TEXT,
                created_at BIGINT NOT NULL,
                updated_at BIGINT NOT NULL,
                payload BYTEA,
                history TEXT NOT NULL,
                claimed_by TEXT,
                PRIMARY KEY (workspace_id, message_id)
            )
            """,
            "CREATE INDEX messages_due ON messages (status, next_attempt_at)",
            "CREATE INDEX messages_by_provider_id ON messages (workspace_id, provider_message_id)",
            "CREATE INDEX messages_by_customer ON messages (workspace_id, customer_id)",
            """
            CREATE TABLE job_leases (
                job TEXT PRIMARY KEY,
                holder TEXT NOT NULL,
                expires_at BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE window_counters (
                scope TEXT NOT NULL,
                key TEXT NOT NULL,
                window_start BIGINT NOT NULL,
                window_end BIGINT NOT NULL,
                count BIGINT NOT NULL,
                PRIMARY KEY (scope, key, window_start)
            )
            """,
        ]),
        (2, "egress-allowlist", [
            // The hosts a workspace's outbound connections may reach, one a line; NULL: the
            // providers' documented hosts.
            "ALTER TABLE workspaces ADD COLUMN egress_hosts TEXT",
        ]),
        (3, "blind-index-versions", [
            // Which workspace key version keys the blind index (BlindIndexState): NULL on every
            // row means the first version, as before.
            "ALTER TABLE workspace_keys ADD COLUMN index_role TEXT",
            "ALTER TABLE workspace_keys ADD COLUMN index_since BIGINT",
            "ALTER TABLE workspace_keys ADD COLUMN index_cursor TEXT",
        ]),
        (4, "workspace-secrets", [
            // The secrets key and the keys that outlive every version (WorkspaceSecretsRecord);
            // a reason's copy sealed with it (the chained original stays as written).
            """
            CREATE TABLE workspace_secrets (
                workspace_id TEXT PRIMARY KEY REFERENCES workspaces (id),
                wrapped_key BYTEA NOT NULL,
                sealed_derived_keys BYTEA NOT NULL
            )
            """,
            "ALTER TABLE audit_log ADD COLUMN resealed_reason BYTEA",
        ]),
        (5, "client-protection", [
            // A workspace's protection mode, and who may claim a message (OutboxRoute): the
            // nodes' dispatchers or one workspace's relay. Claims read one route's due messages.
            "ALTER TABLE workspaces ADD COLUMN protection TEXT NOT NULL DEFAULT 'vault'",
            "ALTER TABLE messages ADD COLUMN route TEXT NOT NULL DEFAULT 'provider'",
            "DROP INDEX messages_due",
            "CREATE INDEX messages_due ON messages (route, status, next_attempt_at)",
        ]),
    ]

    static var latestVersion: Int { migrations.last?.version ?? 0 }

    /// Brings the schema to `latestVersion`. Nodes starting together take turns: each locks the
    /// bookkeeping table's row 0 first, so one migrates and the others then find nothing to do.
    func migrate() async throws {
        for attempt in 1...3 {
            do {
                _ = try await rows("""
                    CREATE TABLE IF NOT EXISTS domicile_schema (
                        version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)
                    """)
                break
            } catch {
                // Two nodes creating the table at the same instant: the loser sees a duplicate.
                if attempt == 3 { throw error }
                try await Task.sleep(for: .milliseconds(100 * attempt))
            }
        }
        let logger = self.logger
        let applied = try await transaction { connection in
            _ = try await connection.rows("""
                INSERT INTO domicile_schema (version, name, applied_at) VALUES (0, 'lock', 0) ON CONFLICT (version) DO NOTHING
                """, logger)
            _ = try await connection.rows("SELECT version FROM domicile_schema WHERE version = 0 FOR UPDATE", logger)
            let current = try await connection.rows("SELECT max(version) FROM domicile_schema", logger)
                .first.flatMap { try $0[0].decode(Int64?.self) }.map(Int.init) ?? 0
            guard current <= Self.latestVersion else {
                throw DatabaseSchemaTooNew(found: current, known: Self.latestVersion)
            }
            var applied: [String] = []
            for migration in Self.migrations where migration.version > current {
                for statement in migration.statements {
                    _ = try await connection.rows(PostgresQuery(unsafeSQL: statement), logger)
                }
                _ = try await connection.rows("""
                    INSERT INTO domicile_schema (version, name, applied_at)
                    VALUES (\(migration.version), \(migration.name), \(Date().millis))
                    """, logger)
                applied.append("\(migration.version)-\(migration.name)")
            }
            return applied
        }
        if !applied.isEmpty {
            logger.notice("database schema migrated", metadata: ["migrations": "\(applied.joined(separator: ","))",
                                                                  "database": "\(displayAddress)"])
        }
    }

    /// The schema version the database is at (tests, `domicile` diagnostics).
    public func schemaVersion() async throws -> Int {
        try await rows("SELECT max(version) FROM domicile_schema").first.flatMap { try $0[0].decode(Int64?.self) }.map(Int.init) ?? 0
    }
}
