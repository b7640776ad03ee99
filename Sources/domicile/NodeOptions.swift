import ArgumentParser
import DomicileCore
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

    @Option(help: "Root key file (created on first start, mode 0600). Env: DOMICILE_ROOT_KEY_FILE. Default: <data-dir>/root.key.")
    var rootKeyFile: String?

    @Option(help: "The region this node serves; workspaces created here are homed in it. Env: DOMICILE_REGION.")
    var region: String = ProcessInfo.processInfo.environment["DOMICILE_REGION"] ?? "local"

    /// How long read audit entries gather before one commit writes them (tests stretch it).
    @Option(help: .hidden) var readAuditWindowMs: Int = 20

    var databasePath: String { (dataDir as NSString).appendingPathComponent("domicile.sqlite") }

    /// The PostgreSQL URL from the option or the environment, if any.
    var databaseURL: String? {
        (database ?? ProcessInfo.processInfo.environment["DOMICILE_DATABASE_URL"]).flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Where the data is, for the start-up line: never a password.
    var storeDescription: String {
        guard let databaseURL, let components = URLComponents(string: databaseURL) else { return "data in \(dataDir)" }
        return "database postgres://\(components.user ?? "")@\(components.host ?? ""):\(components.port ?? 5432)\(components.path)"
    }

    /// Opens (creating on first use) the data folder, the root key and the store.
    func openVault(logger: Logger, operatorPolicy: OperatorPolicy = OperatorPolicy(),
                   directory: RegionDirectory = RegionDirectory()) async throws -> Vault {
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let keyPath = rootKeyFile ?? ProcessInfo.processInfo.environment["DOMICILE_ROOT_KEY_FILE"] ?? (dataDir as NSString).appendingPathComponent("root.key")
        let (root, created) = try LocalKeyFileRootKey.loadOrCreate(at: keyPath)
        if created { logger.notice("generated a new root key", metadata: ["path": "\(keyPath)"]) }
        let store: any VaultStore
        if let databaseURL {
            guard databasePoolSize > 0 else { throw ValidationError("--database-pool-size must be positive") }
            store = try await PostgresVaultStore.open(url: databaseURL, poolSize: databasePoolSize, logger: logger)
        } else {
            store = try SQLiteVaultStore(path: databasePath, waiterExecutor: { EventLoopTaskExecutor.current })
        }
        return Vault(store: store, root: root, region: region, operatorPolicy: operatorPolicy,
                     readAuditWindow: .milliseconds(readAuditWindowMs), directory: directory)
    }
}
