import DomicileCore
import Foundation
import GRDB

extension SQLiteVaultStore {
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("1-foundation") { db in
            try db.execute(sql: """
                CREATE TABLE workspaces (
                    id TEXT PRIMARY KEY,
                    region TEXT NOT NULL,
                    rate_limit_per_minute INTEGER NOT NULL,
                    suspended INTEGER NOT NULL DEFAULT 0,
                    allow_identifying_customer_ids INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL
                );
                CREATE TABLE workspace_keys (
                    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
                    version INTEGER NOT NULL,
                    wrapped_key BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    PRIMARY KEY (workspace_id, version)
                ) WITHOUT ROWID;
                CREATE TABLE api_keys (
                    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
                    key_id TEXT NOT NULL,
                    secret_hash BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER,
                    PRIMARY KEY (workspace_id, key_id)
                ) WITHOUT ROWID;
                CREATE TABLE schema_attributes (
                    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
                    name TEXT NOT NULL,
                    type TEXT NOT NULL,
                    pii INTEGER NOT NULL,
                    indexed INTEGER NOT NULL,
                    PRIMARY KEY (workspace_id, name)
                ) WITHOUT ROWID;
                CREATE TABLE customers (
                    workspace_id TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    data_key BLOB NOT NULL,
                    attributes BLOB NOT NULL,
                    blind_index BLOB NOT NULL,
                    restricted INTEGER NOT NULL DEFAULT 0,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    revision INTEGER NOT NULL,
                    PRIMARY KEY (workspace_id, customer_id)
                ) WITHOUT ROWID;
                CREATE TABLE blind_index (
                    workspace_id TEXT NOT NULL,
                    attribute TEXT NOT NULL,
                    digest BLOB NOT NULL,
                    customer_id TEXT NOT NULL,
                    PRIMARY KEY (workspace_id, attribute, digest, customer_id)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("2-privacy") { db in
            try db.execute(sql: """
                ALTER TABLE workspaces ADD COLUMN retention_days INTEGER;
                ALTER TABLE workspaces ADD COLUMN refuse_erased_customer_ids INTEGER NOT NULL DEFAULT 0;
                CREATE INDEX customers_by_update ON customers (workspace_id, updated_at);
                CREATE TABLE operators (
                    id TEXT PRIMARY KEY,
                    workspace_id TEXT NOT NULL REFERENCES workspaces(id),
                    email_digest BLOB NOT NULL,
                    sealed_email BLOB NOT NULL,
                    role TEXT NOT NULL,
                    view_pii INTEGER NOT NULL,
                    password_hash TEXT NOT NULL,
                    failed_attempts INTEGER NOT NULL DEFAULT 0,
                    locked_until INTEGER,
                    created_at INTEGER NOT NULL,
                    UNIQUE (workspace_id, email_digest)
                );
                CREATE TABLE sessions (
                    token_hash BLOB PRIMARY KEY,
                    operator_id TEXT NOT NULL,
                    workspace_id TEXT NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE subject_requests (
                    id TEXT PRIMARY KEY,
                    workspace_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    status TEXT NOT NULL,
                    submitted_at INTEGER,
                    received_at INTEGER NOT NULL,
                    completed_at INTEGER,
                    identity_types TEXT NOT NULL,
                    customer_ids TEXT NOT NULL,
                    actor_type TEXT NOT NULL,
                    actor_id TEXT NOT NULL
                );
                CREATE TABLE tombstones (
                    workspace_id TEXT NOT NULL,
                    digest BLOB NOT NULL,
                    erased_at INTEGER NOT NULL,
                    PRIMARY KEY (workspace_id, digest)
                ) WITHOUT ROWID;
                CREATE TABLE audit_log (
                    workspace_id TEXT NOT NULL,
                    seq INTEGER NOT NULL,
                    at INTEGER NOT NULL,
                    actor_type TEXT NOT NULL,
                    actor_id TEXT NOT NULL,
                    action TEXT NOT NULL,
                    customer_id TEXT,
                    attributes TEXT NOT NULL,
                    sealed_reason BLOB,
                    request_id TEXT,
                    previous_hash BLOB NOT NULL,
                    hash BLOB NOT NULL,
                    PRIMARY KEY (workspace_id, seq)
                ) WITHOUT ROWID;
                CREATE TABLE audit_heads (
                    workspace_id TEXT PRIMARY KEY,
                    seq INTEGER NOT NULL,
                    hash BLOB NOT NULL
                ) WITHOUT ROWID;
                CREATE TABLE outbound_events (
                    id TEXT PRIMARY KEY,
                    workspace_id TEXT NOT NULL,
                    type TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    delivered_at INTEGER
                );
                CREATE INDEX outbound_events_pending ON outbound_events (delivered_at, at);
                """)
        }
        migrator.registerMigration("3-events") { db in
            try db.execute(sql: """
                ALTER TABLE workspaces ADD COLUMN events_url TEXT;
                ALTER TABLE workspaces ADD COLUMN events_secret BLOB;
                DROP INDEX outbound_events_pending;
                CREATE INDEX outbound_events_pending ON outbound_events (workspace_id, delivered_at, at);
                """)
        }
        migrator.registerMigration("4-sending") { db in
            try db.execute(sql: """
                ALTER TABLE outbound_events ADD COLUMN message_id TEXT;
                ALTER TABLE outbound_events ADD COLUMN campaign_id TEXT;
                ALTER TABLE outbound_events ADD COLUMN channel TEXT;
                ALTER TABLE outbound_events ADD COLUMN status TEXT;
                ALTER TABLE outbound_events ADD COLUMN error_code TEXT;
                CREATE TABLE send_keys (
                    workspace_id TEXT NOT NULL,
                    key_id TEXT NOT NULL,
                    sealed_secret BLOB NOT NULL,
                    created_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER,
                    PRIMARY KEY (workspace_id, key_id)
                ) WITHOUT ROWID;
                CREATE TABLE providers (
                    workspace_id TEXT NOT NULL,
                    channel TEXT NOT NULL,
                    kind TEXT NOT NULL,
                    sealed_settings BLOB NOT NULL,
                    PRIMARY KEY (workspace_id, channel)
                ) WITHOUT ROWID;
                CREATE TABLE messages (
                    workspace_id TEXT NOT NULL,
                    message_id TEXT NOT NULL,
                    customer_id TEXT NOT NULL,
                    campaign_id TEXT,
                    channel TEXT NOT NULL,
                    status TEXT NOT NULL,
                    attempts INTEGER NOT NULL,
                    next_attempt_at INTEGER NOT NULL,
                    provider_message_id TEXT,
                    error_code TEXT,
                    segments INTEGER,
                    encoding TEXT,
                    created_at INTEGER NOT NULL,
                    updated_at INTEGER NOT NULL,
                    payload BLOB,
                    PRIMARY KEY (workspace_id, message_id)
                );
                CREATE INDEX messages_due ON messages (status, next_attempt_at);
                CREATE INDEX messages_by_provider_id ON messages (workspace_id, provider_message_id);
                CREATE INDEX messages_by_customer ON messages (workspace_id, customer_id);
                CREATE TABLE message_history (
                    workspace_id TEXT NOT NULL,
                    message_id TEXT NOT NULL,
                    at INTEGER NOT NULL,
                    status TEXT NOT NULL,
                    error_code TEXT
                );
                CREATE INDEX message_history_by_message ON message_history (workspace_id, message_id, at);
                """)
        }
        // A message's status history moves into its row: one line per change, appended by the
        // same UPDATE that changes the status. A table of its own cost two more B-tree inserts
        // (the row and its index) for every status change, on the single writer.
        migrator.registerMigration("5-history-in-row") { db in
            try db.execute(sql: """
                ALTER TABLE messages ADD COLUMN history TEXT NOT NULL DEFAULT '';
                UPDATE messages SET history = COALESCE((
                    SELECT group_concat(line, '') FROM (
                        SELECT json_object('at', h.at, 'status', h.status, 'error_code', h.error_code) || char(10) AS line
                        FROM message_history h
                        WHERE h.workspace_id = messages.workspace_id AND h.message_id = messages.message_id
                        ORDER BY h.at, h.rowid)), '');
                DROP TABLE message_history;
                """)
        }
        migrator.registerMigration("6-blind-index-levels") { db in
            // New blind-index entries land here first; see `BlindIndexLevels`.
            try db.execute(sql: """
                CREATE TABLE blind_index_recent (
                    workspace_id TEXT NOT NULL,
                    attribute TEXT NOT NULL,
                    digest BLOB NOT NULL,
                    customer_id TEXT NOT NULL,
                    PRIMARY KEY (workspace_id, attribute, digest, customer_id)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("7-keyed-audit-chain") { db in
            // Entries already written keep their SHA-256 links and are marked unkeyed; new ones
            // are linked with the workspace's chain key (`AuditChainFormat`).
            try db.execute(sql: "ALTER TABLE audit_log ADD COLUMN format INTEGER NOT NULL DEFAULT 0")
        }
        migrator.registerMigration("8-claims-name-their-node") { db in
            // Which node claimed a message being sent: a node releases only its own claims (and
            // expired ones) at start. NULL: claimed by a version that did not record it.
            try db.execute(sql: "ALTER TABLE messages ADD COLUMN claimed_by TEXT")
        }
        migrator.registerMigration("9-coordination") { db in
            // Leases on the jobs that run once per region, and the counters limits are checked
            // against (see `CoordinationStore`).
            try db.execute(sql: """
                CREATE TABLE job_leases (
                    job TEXT PRIMARY KEY,
                    holder TEXT NOT NULL,
                    expires_at INTEGER NOT NULL
                );
                CREATE TABLE window_counters (
                    scope TEXT NOT NULL,
                    key TEXT NOT NULL,
                    window_start INTEGER NOT NULL,
                    window_end INTEGER NOT NULL,
                    count INTEGER NOT NULL,
                    PRIMARY KEY (scope, key, window_start)
                ) WITHOUT ROWID;
                """)
        }
        migrator.registerMigration("10-egress-allowlist") { db in
            // The hosts a workspace's outbound connections may reach, one a line; NULL: the
            // providers' documented hosts.
            try db.execute(sql: "ALTER TABLE workspaces ADD COLUMN egress_hosts TEXT")
        }
        migrator.registerMigration("11-blind-index-versions") { db in
            // Which workspace key version keys the blind index (BlindIndexState): NULL on every
            // row means the first version, as before.
            try db.execute(sql: """
                ALTER TABLE workspace_keys ADD COLUMN index_role TEXT;
                ALTER TABLE workspace_keys ADD COLUMN index_since INTEGER;
                ALTER TABLE workspace_keys ADD COLUMN index_cursor TEXT;
                """)
        }
        migrator.registerMigration("12-workspace-secrets") { db in
            // The secrets key and the keys that outlive every version (WorkspaceSecretsRecord);
            // a reason's copy sealed with it (the chained original stays as written).
            try db.execute(sql: """
                CREATE TABLE workspace_secrets (
                    workspace_id TEXT PRIMARY KEY REFERENCES workspaces(id),
                    wrapped_key BLOB NOT NULL,
                    sealed_derived_keys BLOB NOT NULL
                ) WITHOUT ROWID;
                ALTER TABLE audit_log ADD COLUMN resealed_reason BLOB;
                """)
        }
        migrator.registerMigration("13-client-protection") { db in
            // A workspace's protection mode, and who may claim a message (OutboxRoute): the
            // nodes' dispatchers or one workspace's relay. Claims read one route's due messages.
            try db.execute(sql: """
                ALTER TABLE workspaces ADD COLUMN protection TEXT NOT NULL DEFAULT 'vault';
                ALTER TABLE messages ADD COLUMN route TEXT NOT NULL DEFAULT 'provider';
                DROP INDEX messages_due;
                CREATE INDEX messages_due ON messages (route, status, next_attempt_at);
                """)
        }
        return migrator
    }
}
