import ArgumentParser
import DomicileCore
import DomicileKMS
import DomicileOutbound
import DomicilePostgres
import DomicileSQLite
import DomicileVault
import Foundation
import Logging

/// Where this node keeps its state; shared by every command.
struct NodeOptions: ParsableArguments {
    @Option(help: "Data folder: the SQLite database (unless --database names a PostgreSQL one) and, by default, the root key. Env: DOMICILE_DATA_DIR.")
    var dataDir: String = ProcessInfo.processInfo.environment["DOMICILE_DATA_DIR"] ?? "./data"

    @Option(help: ArgumentHelp(
        "PostgreSQL instead of the embedded SQLite: postgres://user:password@host:port/database[?sslmode=disable|require&sslrootcert=FILE]. Every node sharing it needs the same root key. Env: DOMICILE_DATABASE_URL.",
        valueName: "url"))
    var database: String?

    @Option(help: "Connections this node opens to PostgreSQL at most. Env: DOMICILE_DATABASE_POOL_SIZE.")
    var databasePoolSize: Int = Int(ProcessInfo.processInfo.environment["DOMICILE_DATABASE_POOL_SIZE"] ?? "") ?? 16

    @Option(help: "SQLite: the writer's page cache, MiB (default 64). Env: DOMICILE_SQLITE_CACHE_MIB.")
    var sqliteCacheMib: Int?

    @Option(help: "SQLite: each read connection's page cache, MiB (default 8). Env: DOMICILE_SQLITE_READ_CACHE_MIB.")
    var sqliteReadCacheMib: Int?

    @Option(help: "SQLite: write-ahead log pages between checkpoints (default 8000). Env: DOMICILE_SQLITE_CHECKPOINT_PAGES.")
    var sqliteCheckpointPages: Int?

    /// The embedded store's settings: each from its option, else the environment, else the default.
    func sqliteTuning() throws -> SQLiteTuning {
        var tuning = SQLiteTuning()
        let environment = ProcessInfo.processInfo.environment
        func setting(_ option: Int?, _ variable: String, _ name: String, minimum: Int) throws -> Int? {
            guard let value = option ?? environment[variable].flatMap({ Int($0) }) else { return nil }
            guard value >= minimum else { throw ValidationError("--\(name) must be at least \(minimum)") }
            return value
        }
        if let mib = try setting(sqliteCacheMib, "DOMICILE_SQLITE_CACHE_MIB", "sqlite-cache-mib", minimum: 2) {
            tuning.writerCacheBytes = mib << 20
        }
        if let mib = try setting(sqliteReadCacheMib, "DOMICILE_SQLITE_READ_CACHE_MIB", "sqlite-read-cache-mib", minimum: 1) {
            tuning.readerCacheBytes = mib << 20
        }
        if let pages = try setting(sqliteCheckpointPages, "DOMICILE_SQLITE_CHECKPOINT_PAGES", "sqlite-checkpoint-pages", minimum: 100) {
            tuning.checkpointPages = pages
        }
        return tuning
    }

    @Option(help: "Root key file (created on first start, mode 0600). Env: DOMICILE_ROOT_KEY_FILE. Default: <data-dir>/root.key.")
    var rootKeyFile: String?

    @Option(help: "The region this node serves; workspaces created here are homed in it. Env: DOMICILE_REGION.")
    var region: String = ProcessInfo.processInfo.environment["DOMICILE_REGION"] ?? "local"

    /// How long read audit entries gather before one commit writes them (tests stretch it).
    @Option(help: .hidden) var readAuditWindowMs: Int = 20

    @Option(help: "Root of trust: local-file (a key file, the default) or openbao (OpenBao's transit engine). Env: DOMICILE_KMS.")
    var kms: String = ProcessInfo.processInfo.environment["DOMICILE_KMS"] ?? "local-file"

    @Option(help: ArgumentHelp("OpenBao's address, https://host:8200. Env: DOMICILE_KMS_ADDRESS.", valueName: "url"))
    var kmsAddress: String? = ProcessInfo.processInfo.environment["DOMICILE_KMS_ADDRESS"]

    @Option(help: ArgumentHelp("The transit key that wraps workspace keys. Env: DOMICILE_KMS_KEY.", valueName: "name"))
    var kmsKey: String = ProcessInfo.processInfo.environment["DOMICILE_KMS_KEY"] ?? "domicile"

    @Option(help: ArgumentHelp("Where the transit engine is mounted. Env: DOMICILE_KMS_MOUNT.", valueName: "path"))
    var kmsMount: String = ProcessInfo.processInfo.environment["DOMICILE_KMS_MOUNT"] ?? "transit"

    @Option(help: ArgumentHelp("PEM CA of OpenBao's certificate (default: the system's trust store). Env: DOMICILE_KMS_CA_CERT.", valueName: "file"))
    var kmsCACert: String? = ProcessInfo.processInfo.environment["DOMICILE_KMS_CA_CERT"]

    @Option(help: ArgumentHelp("File holding the OpenBao token (else DOMICILE_KMS_TOKEN). Env: DOMICILE_KMS_TOKEN_FILE.", valueName: "file"))
    var kmsTokenFile: String? = ProcessInfo.processInfo.environment["DOMICILE_KMS_TOKEN_FILE"]

    @Option(help: "Seconds an unwrapped workspace key stays in memory before the KMS is asked again (a key revoked in the KMS stops working within this time). Env: DOMICILE_KEY_CACHE_SECONDS.")
    var keyCacheSeconds: Int = Int(ProcessInfo.processInfo.environment["DOMICILE_KEY_CACHE_SECONDS"] ?? "") ?? 1800

    @Option(help: ArgumentHelp(
        "Append-only record of erasures (no one named: digests), replayed by `domicile restore`; keep it apart from the database and its backups. Env: DOMICILE_ERASURE_JOURNAL. Default: <data-dir>/erasures.jsonl.",
        valueName: "file"))
    var erasureJournal: String?

    var erasureJournalPath: String {
        erasureJournal ?? ProcessInfo.processInfo.environment["DOMICILE_ERASURE_JOURNAL"]
            ?? (dataDir as NSString).appendingPathComponent("erasures.jsonl")
    }

    /// The root key service: the local key file, or OpenBao's transit engine.
    func rootKeyService(logger: Logger) throws -> any RootKeyService {
        switch kms {
        case "local-file":
            let keyPath = rootKeyFile ?? ProcessInfo.processInfo.environment["DOMICILE_ROOT_KEY_FILE"]
                ?? (dataDir as NSString).appendingPathComponent("root.key")
            let (root, created) = try LocalKeyFileRootKey.loadOrCreate(at: keyPath)
            if created { logger.notice("generated a new root key", metadata: ["path": "\(keyPath)"]) }
            return root
        case "openbao":
            guard let kmsAddress else { throw ValidationError("--kms openbao needs --kms-address") }
            let token: String
            if let kmsTokenFile {
                guard let text = FileManager.default.contents(atPath: kmsTokenFile) else {
                    throw ValidationError("cannot read the token file \(kmsTokenFile)")
                }
                token = String(decoding: text, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            } else {
                token = ProcessInfo.processInfo.environment["DOMICILE_KMS_TOKEN"] ?? ""
            }
            do {
                return try OpenBaoTransit(address: kmsAddress, keyName: kmsKey, token: token, mount: kmsMount, caCertificatePath: kmsCACert)
            } catch {
                throw ValidationError("\(error)")
            }
        default:
            throw ValidationError("--kms must be local-file or openbao")
        }
    }

    var databasePath: String { (dataDir as NSString).appendingPathComponent("domicile.sqlite") }

    /// The PostgreSQL URL from the option or the environment, if any.
    var databaseURL: String? {
        (database ?? ProcessInfo.processInfo.environment["DOMICILE_DATABASE_URL"]).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Where the data is, for the start-up line: never a password.
    var storeDescription: String {
        guard let databaseURL, let components = URLComponents(string: databaseURL) else {
            return "data in \(dataDir), SQLite " + ((try? sqliteTuning()).map(String.init(describing:)) ?? "")
        }
        return "database postgres://\(components.user ?? "")@\(components.host ?? ""):\(components.port ?? 5432)\(components.path)"
    }

    /// Opens (creating on first use) the data folder, the root key and the store.
    func openVault(logger: Logger, operatorPolicy: OperatorPolicy = OperatorPolicy(),
                   directory: RegionDirectory = RegionDirectory()) async throws -> Vault {
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        guard keyCacheSeconds > 0 else { throw ValidationError("--key-cache-seconds must be positive") }
        _ = try sqliteTuning()  // a bad setting is refused before a root key file is made
        let root = try rootKeyService(logger: logger)
        let store = try await openStore(logger: logger)
        return Vault(store: store, root: root, region: region, operatorPolicy: operatorPolicy,
                     readAuditWindow: .milliseconds(readAuditWindowMs), directory: directory, keyLifetime: .seconds(keyCacheSeconds),
                     erasureJournal: ErasureJournal(path: erasureJournalPath))
    }

    /// The store alone (the data folder is created first): SQLite in the data folder, or PostgreSQL.
    func openStore(logger: Logger) async throws -> any VaultStore {
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        if let databaseURL {
            guard databasePoolSize > 0 else { throw ValidationError("--database-pool-size must be positive") }
            return try await PostgresVaultStore.open(url: databaseURL, poolSize: databasePoolSize, logger: logger)
        }
        return try SQLiteVaultStore(path: databasePath, tuning: try sqliteTuning(), waiterExecutor: { EventLoopTaskExecutor.current })
    }
}
