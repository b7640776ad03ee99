import Crypto
import DomicileCore
import DomicileHTTP
import DomicileSQLite
import DomicileTestSupport
import DomicileVault
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// An API over a fresh vault with one workspace, driven in-process: on SQLite, or on PostgreSQL
/// when `DOMICILE_TEST_STORE=postgres` (see `TestStore`).
struct APIFixture {
    let vault: Vault
    let store: any VaultStore
    let key: DataAPIKey
    let folder: URL

    /// The SQLite store, for the tests that look at its files; nil on PostgreSQL.
    var sqlite: SQLiteVaultStore? { store as? SQLiteVaultStore }

    static func make(rateLimit: Int = 1_000) async throws -> APIFixture {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-http-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store: any VaultStore = switch TestStore.selected {
        case .sqlite: try SQLiteVaultStore(path: folder.appendingPathComponent("domicile.sqlite").path)
        case .postgres: try await TestPostgres.freshStore()
        }
        let vault = Vault(store: store, root: LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)), region: "local",
                          cacheLifetime: .zero, operatorPolicy: fastOperators)
        let key = try await vault.createWorkspace(WorkspaceID(trusted: "acme"), rateLimitPerMinute: rateLimit)
        _ = try await vault.createWorkspace(WorkspaceID(trusted: "other"))
        return APIFixture(vault: vault, store: store, key: key, folder: folder)
    }

    var auth: String { Self.basic("acme", key.secret) }

    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    func test(limiter: RateLimiter = RateLimiter(), _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        let app = Application(router: HeadAsGet(DomicileAPI.router(vault: vault, limiter: limiter)))
        try await app.test(.router) { client in try await body(client) }
    }
}

extension TestClientProtocol {
    @discardableResult
    func send(_ method: HTTPRequest.Method, _ uri: String, auth: String? = nil, json: String? = nil,
              contentType: String? = "application/json") async throws -> TestResponse {
        var headers: HTTPFields = [:]
        if let auth { headers[.authorization] = auth }
        if json != nil, let contentType { headers[.contentType] = contentType }
        return try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }
}

extension TestResponse {
    var json: [String: Any] {
        (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] ?? [:]
    }
    var text: String { String(buffer: body) }
    var error: [String: Any] { json["error"] as? [String: Any] ?? [:] }
}

func customerJSON(_ id: String, _ attributes: String) -> String {
    #"{"type":"customer","customer_id":"\#(id)","attributes":\#(attributes)}"#
}

func transition(_ elements: String...) -> String {
    #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#
}
