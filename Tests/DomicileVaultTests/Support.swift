import Crypto
import DomicileCore
import DomicileTestSupport
import DomicileSQLite
import DomicileVault
import Foundation
import Testing

/// A folder under the system's temporary directory, one per test.
func temporaryFolder() -> URL {
    let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-test-\(UUID().uuidString)")
    try? FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    return folder
}

/// The storage backends every conformance case runs against: SQLite always, PostgreSQL when
/// `DOMICILE_TEST_DATABASE_URL` names a server (`scripts/test` starts one and sets it).
enum StoreBackend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite
    case postgres

    static var allCases: [StoreBackend] { TestPostgres.serverURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    var testDescription: String { rawValue }

    func makeStore() async throws -> any VaultStore {
        switch self {
        case .sqlite:
            try SQLiteVaultStore(path: temporaryFolder().appendingPathComponent("domicile.sqlite").path)
        case .postgres:
            try await TestPostgres.freshStore()
        }
    }
}

/// A vault on a fresh store with a throw-away root key, and one workspace in it.
struct VaultFixture {
    let vault: Vault
    let workspace: WorkspaceRecord
    let apiKey: DataAPIKey

    static func make(_ backend: StoreBackend = .sqlite, id: String = "acme") async throws -> VaultFixture {
        let vault = Vault(store: try await backend.makeStore(), root: LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)),
                          region: "local", cacheLifetime: .zero)
        let workspaceID = WorkspaceID(trusted: id)
        let key = try await vault.createWorkspace(workspaceID)
        return VaultFixture(vault: vault, workspace: try await vault.workspace(workspaceID)!, apiKey: key)
    }

    func customer(_ id: String, _ attributes: [String: JSONValue], updateExistingOnly: Bool = false) -> JSONValue {
        var element: [String: JSONValue] = ["type": .string("customer"), "customer_id": .string(id), "attributes": .object(attributes)]
        if updateExistingOnly { element["update_existing_only"] = .bool(true) }
        return .object(element)
    }

    @discardableResult
    func ingest(_ elements: JSONValue...) async throws -> IngestReport {
        try await vault.ingest(elements, workspace: workspace, actor: .apiKey(id: "test"))
    }

    func read(_ id: String, reveal: Bool = true) async throws -> [String: JSONValue]? {
        try await vault.customerView(CustomerID(trusted: id), workspace: workspace.id, reveal: reveal)?.attributes
    }
}
