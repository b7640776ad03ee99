import Crypto
import DomicileCore
import DomicileHTTP
import DomicileSQLite
import DomicileVault
import Foundation
import Hummingbird
import HummingbirdTesting
import Testing

/// A node of region `ae` with a directory naming `sa`: every route family refuses a workspace
/// homed in `sa` with 421 and `sa`'s endpoint, before credentials or body are looked at.
@Suite("Residency routing")
struct ResidencyTests {
    static let directory = RegionDirectory(regions: ["ae": "https://pii.ae.example.com", "sa": "https://pii.sa.example.com"],
                                           workspaces: ["brand-ksa": "sa"])

    static func vault(region: String, folder: URL) throws -> Vault {
        let store = try SQLiteVaultStore(path: folder.appendingPathComponent("domicile.sqlite").path)
        return Vault(store: store, root: LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)), region: region, cacheLifetime: .zero,
                     directory: directory)
    }

    static func folder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-residency-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        return folder
    }

    /// One request of each route family, for workspace `ws`.
    static func requests(_ ws: String) -> [(HTTPRequest.Method, String, String?)] {
        [
            (.post, "/v1/customer/\(ws)", customerJSON("c-1", #"{"email":"a@b.example"}"#)),
            (.post, "/v1/transition/\(ws)", transition(customerJSON("c-1", "{}"))),
            (.get, "/v1/workspaces/\(ws)/customers/c-1", nil),
            (.get, "/v1/workspaces/\(ws)/customers", nil),
            (.post, "/v1/workspaces/\(ws)/customers/c-1/reveal", #"{"attributes":["email"],"reason":"x"}"#),
            (.get, "/v1/workspaces/\(ws)/schema", nil),
            (.put, "/v1/workspaces/\(ws)/schema/email", #"{"pii":true}"#),
            (.post, "/v1/opengdpr_requests/\(ws)", "{}"),
            (.get, "/v1/opengdpr_requests/\(ws)/r-1", nil),
            (.get, "/v1/workspaces/\(ws)/audit", nil),
            (.post, "/v1/workspaces/\(ws)/messages", "[]"),
            (.get, "/v1/workspaces/\(ws)/messages/m-1", nil),
            (.post, "/v1/callbacks/twilio/\(ws)", "MessageSid=SM1&MessageStatus=delivered"),
            (.get, "/v1/callbacks/whatsapp/\(ws)", nil),
            (.put, "/v1/workspaces/\(ws)/providers/sms", #"{"kind":"twilio","settings":{}}"#),
            (.get, "/v1/workspaces/\(ws)/egress", nil),
            (.post, "/v1/operators/login", #"{"workspace":"\#(ws)","email":"a@b.example","password":"x"}"#),
        ]
    }

    func expectMisdirected(_ vault: Vault, workspace: String) async throws {
        let app = Application(router: DomicileAPI.router(vault: vault))
        try await app.test(.router) { client in
            for (method, uri, body) in Self.requests(workspace) {
                // No credentials at all: the region is decided first.
                let response = try await client.send(method, uri, json: body)
                #expect(response.status == .misdirectedRequest, "\(method) \(uri)")
                #expect(response.error["type"] as? String == "RegionError", "\(method) \(uri)")
                #expect(response.error["home_region"] as? String == "sa", "\(method) \(uri)")
                #expect(response.error["endpoint"] as? String == "https://pii.sa.example.com", "\(method) \(uri)")
            }
        }
    }

    @Test func aWorkspaceTheDirectoryHomesElsewhereIs421OnEveryRouteFamily() async throws {
        let vault = try Self.vault(region: "ae", folder: try Self.folder())
        try await expectMisdirected(vault, workspace: "brand-ksa")
    }

    @Test func aWorkspaceWhoseRecordIsHomedElsewhereIs421Too() async throws {
        // The same database opened by a node of another region (a restored copy, a misrouted node).
        let folder = try Self.folder()
        _ = try await Self.vault(region: "sa", folder: folder).createWorkspace(WorkspaceID(trusted: "acme-sa"))
        try await expectMisdirected(try Self.vault(region: "ae", folder: folder), workspace: "acme-sa")
    }

    @Test func aWorkspaceOfThisRegionIsServedAndAnUnknownOneIsNotRouted() async throws {
        let vault = try Self.vault(region: "ae", folder: try Self.folder())
        let key = try await vault.createWorkspace(WorkspaceID(trusted: "acme"))
        let app = Application(router: DomicileAPI.router(vault: vault))
        try await app.test(.router) { client in
            let served = try await client.send(.get, "/v1/workspaces/acme/schema", auth: APIFixture.basic("acme", key.secret))
            #expect(served.status == .ok)
            // Neither here nor in the directory: an ordinary 401, no endpoint to give.
            let unknown = try await client.send(.get, "/v1/workspaces/nobody/schema")
            #expect(unknown.status == .unauthorized)
        }
    }

    @Test func aDirectoryFileIsCheckedWhenRead() throws {
        let folder = try Self.folder()
        let good = folder.appendingPathComponent("regions.json")
        try Data(#"{"regions":{"sa":"https://pii.sa.example.com"},"workspaces":{"brand-ksa":"sa"}}"#.utf8).write(to: good)
        #expect(try RegionDirectory.load(path: good.path) == RegionDirectory(regions: ["sa": "https://pii.sa.example.com"],
                                                                            workspaces: ["brand-ksa": "sa"]))
        let dangling = folder.appendingPathComponent("dangling.json")
        try Data(#"{"regions":{},"workspaces":{"brand-ksa":"qa"}}"#.utf8).write(to: dangling)
        #expect(throws: RegionDirectory.Invalid.self) { try RegionDirectory.load(path: dangling.path) }
    }
}
