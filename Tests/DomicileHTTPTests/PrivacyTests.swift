import DomicileCore
@testable import DomicileHTTP
import DomicileSQLite
import DomicileTestSupport
import DomicileVault
import Foundation
import GRDB
import HTTPTypes
import HummingbirdTesting
import Testing

/// The callers of the permission matrix.
enum Caller: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case apiKey = "api key"
    case admin, manager, viewer
    case viewerWithPII = "viewer with view_pii"
    var testDescription: String { rawValue }
}

/// The actions of the permission matrix, each as one HTTP request.
enum Action: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case ingest, read, lookup, reveal, export, erase, restrict, schemaChange = "schema change", audit
    var testDescription: String { rawValue }

    func allowed(for caller: Caller) -> Bool {
        switch (self, caller) {
        case (.ingest, .apiKey): true
        case (.ingest, _): false
        case (.read, _), (.lookup, _): true
        case (.reveal, .viewerWithPII): true
        case (.reveal, _): false
        case (.export, .apiKey), (.export, .admin), (.export, .manager): true
        case (.export, _): false
        case (.erase, .apiKey), (.erase, .admin): true
        case (.erase, _): false
        case (.restrict, .apiKey), (.restrict, .admin), (.restrict, .manager): true
        case (.restrict, _): false
        case (.schemaChange, .admin), (.audit, .admin): true
        case (.schemaChange, _), (.audit, _): false
        }
    }

    func request(_ client: any TestClientProtocol, auth: String) async throws -> TestResponse {
        switch self {
        case .ingest:
            try await client.send(.post, "/v1/customer/acme", auth: auth, json: customerJSON("c-new", #"{"first_name":"N"}"#))
        case .read:
            try await client.send(.get, "/v1/workspaces/acme/customers/c-1", auth: auth)
        case .lookup:
            try await client.send(.get, "/v1/workspaces/acme/customers?email=jane%40example.com", auth: auth)
        case .reveal:
            try await client.send(.post, "/v1/workspaces/acme/customers/c-1/reveal", auth: auth,
                                  json: #"{"reason":"ticket 4411: customer asked","attributes":["email"]}"#)
        case .export:
            try await client.send(.post, "/v1/opengdpr_requests/acme", auth: auth,
                                  json: #"{"request_type":"access","identities":[{"identity_type":"id","identity_value":"c-1"}],"api_version":"1.0"}"#)
        case .erase:
            try await client.send(.post, "/v1/opengdpr_requests/acme", auth: auth,
                                  json: #"{"request_type":"erasure","identities":[{"identity_type":"id","identity_value":"c-2"}]}"#)
        case .restrict:
            try await client.send(.post, "/v1/opengdpr_requests/acme", auth: auth,
                                  json: #"{"request_type":"restriction","identities":[{"identity_type":"id","identity_value":"c-3"}]}"#)
        case .schemaChange:
            try await client.send(.put, "/v1/workspaces/acme/schema/loyalty", auth: auth, json: #"{"type":"text","pii":true,"indexed":true}"#)
        case .audit:
            try await client.send(.get, "/v1/workspaces/acme/audit", auth: auth)
        }
    }
}

/// A workspace with three customers and one operator per role.
struct PrivacyFixture {
    let api: APIFixture
    let tokens: [Caller: String]

    static func make() async throws -> PrivacyFixture {
        let api = try await APIFixture.make()
        try await api.vault.defineAttribute(AttributeDefinition(name: AttributeName(trusted: "birthday"), type: .date),
                                            workspace: WorkspaceID(trusted: "acme"))
        _ = try await api.vault.ingest([
            .object(["type": .string("customer"), "customer_id": .string("c-1"),
                     "attributes": .object(["email": .string("jane@example.com"), "mobile": .string("+971501234567"),
                                            "first_name": .string("Jane"), "birthday": .string("1990-04-17")])]),
            .object(["type": .string("customer"), "customer_id": .string("c-2"), "attributes": .object(["email": .string("jane@example.com")])]),
            .object(["type": .string("customer"), "customer_id": .string("c-3"), "attributes": .object(["mobile": .string("+97412345678")])]),
        ], workspace: try await api.vault.workspace(WorkspaceID(trusted: "acme"))!, actor: .apiKey(id: "test"))
        var tokens: [Caller: String] = [.apiKey: api.auth]
        for (caller, role, viewPII) in [(Caller.admin, Role.admin, false), (.manager, .manager, false), (.viewer, .viewer, false),
                                        (.viewerWithPII, .viewer, true)] {
            let email = "\(caller.rawValue.replacingOccurrences(of: " ", with: "-"))@brand.example"
            _ = try await api.vault.createOperator(workspace: WorkspaceID(trusted: "acme"), email: email, role: role, viewPII: viewPII,
                                                   password: "correct horse battery")
            let session = try await api.vault.login(workspace: "acme", email: email, password: "correct horse battery", client: nil)
            tokens[caller] = "Bearer " + session.token
        }
        return PrivacyFixture(api: api, tokens: tokens)
    }
}

extension APIFixture {
    static var fastOperators: OperatorPolicy {
        var policy = OperatorPolicy()
        policy.bcryptCost = 4
        return policy
    }
}

@Suite("Privacy operations")
struct PrivacyTests {
    @Test("permission matrix", arguments: Caller.allCases, Action.allCases)
    func permissionMatrix(_ caller: Caller, _ action: Action) async throws {
        let f = try await PrivacyFixture.make()
        let auth = try #require(f.tokens[caller])
        try await f.api.test { client in
            let response = try await action.request(client, auth: auth)
            if action.allowed(for: caller) {
                #expect((200..<300).contains(Int(response.status.code)), "\(caller) \(action): \(response.status) \(response.text)")
            } else {
                #expect(response.status == .forbidden, "\(caller) \(action): \(response.status)")
                #expect(response.error["type"] as? String == "ForbiddenError")
            }
        }
    }

    @Test func revealNeedsAReasonAndIsAudited() async throws {
        let f = try await PrivacyFixture.make()
        let auth = try #require(f.tokens[.viewerWithPII])
        try await f.api.test { client in
            let missing = try await client.send(.post, "/v1/workspaces/acme/customers/c-1/reveal", auth: auth, json: #"{"attributes":["email"]}"#)
            #expect(missing.status == .badRequest && missing.error["attribute"] as? String == "reason")
            let blank = try await client.send(.post, "/v1/workspaces/acme/customers/c-1/reveal", auth: auth,
                                              json: #"{"reason":"  ","attributes":["email"]}"#)
            #expect(blank.status == .badRequest)
            let revealed = try await client.send(.post, "/v1/workspaces/acme/customers/c-1/reveal", auth: auth,
                                                 json: #"{"reason":"ticket 4411","attributes":["email","mobile"]}"#)
            #expect(revealed.status == .ok)
            #expect((revealed.json["attributes"] as? [String: Any])?["email"] as? String == "jane@example.com")
            #expect((revealed.json["attributes"] as? [String: Any])?["first_name"] == nil)
            let audit = try await client.send(.get, "/v1/workspaces/acme/audit?action=reveal", auth: try #require(f.tokens[.admin]))
            let entries = try #require(audit.json["entries"] as? [[String: Any]])
            #expect(entries.count == 1)
            #expect(entries.first?["reason"] as? String == "ticket 4411")
            #expect(entries.first?["attributes"] as? [String] == ["email", "mobile"])
            #expect(entries.first?["customer_id"] as? String == "c-1")
            #expect(!audit.text.contains("jane@example.com"))
        }
    }

    @Test func operatorsSeeMaskedValuesEverywhere() async throws {
        let f = try await PrivacyFixture.make()
        let manager = try #require(f.tokens[.manager])
        try await f.api.test { client in
            let read = try await client.send(.get, "/v1/workspaces/acme/customers/c-1", auth: manager)
            #expect((read.json["attributes"] as? [String: Any])?["email"] as? String == "j***@e******.com")
            #expect((read.json["attributes"] as? [String: Any])?["birthday"] as? String == "1990-**-**")
            for type in ["access", "portability"] {
                let submitted = try await client.send(.post, "/v1/opengdpr_requests/acme", auth: manager, json:
                    #"{"request_type":"\#(type)","identities":[{"identity_type":"email","identity_value":"jane@example.com"}]}"#)
                let id = try #require(submitted.json["request_id"] as? String)
                let export = try await client.send(.get, "/v1/opengdpr_requests/acme/\(id)", auth: manager)
                #expect(export.status == .ok)
                #expect(!export.text.contains("jane@example.com") && !export.text.contains("501234567") && !export.text.contains("Jane"))
                #expect(export.text.contains("j***@e******.com"))
                if type == "portability" {
                    let csv = try await client.send(.get, "/v1/opengdpr_requests/acme/\(id)?format=csv", auth: manager)
                    #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
                    #expect(!csv.text.contains("jane@example.com") && csv.text.contains("j***@e******.com"))
                }
            }
        }
    }

    @Test("each request type by each identity type", arguments: ["access", "portability", "erasure", "restriction", "unrestriction"],
          ["id", "email", "mobile"])
    func subjectRequests(_ type: String, _ identityType: String) async throws {
        let f = try await PrivacyFixture.make()
        let value = ["id": "c-1", "email": "jane@example.com", "mobile": "+971501234567"][identityType]!
        let expected = identityType == "email" ? ["c-1", "c-2"] : ["c-1"]
        try await f.api.test { client in
            let submitted = try await client.send(.post, "/v1/opengdpr_requests/acme", auth: f.api.auth, json:
                #"{"request_type":"\#(type)","submitted_time":"2026-11-01T10:00:00Z","identities":[{"identity_type":"\#(identityType)","identity_value":"\#(value)"}],"api_version":"1.0"}"#)
            #expect(submitted.status == .ok, "\(submitted.text)")
            #expect(submitted.json["status"] as? String == "success")
            let id = try #require(submitted.json["request_id"] as? String)
            let status = try await client.send(.get, "/v1/opengdpr_requests/acme/\(id)", auth: f.api.auth)
            #expect(status.json["status"] as? String == "completed")
            // The request keeps which kinds of identity it was asked with, never their values.
            #expect(status.json["identity_types"] as? [String] == [identityType])
            if type != "access" && type != "portability" { #expect(!status.text.contains(value) || identityType == "id") }
            let found = try await f.api.vault.store.customers(expected.map(CustomerID.init(trusted:)), workspace: WorkspaceID(trusted: "acme"))
            switch type {
            case "access", "portability":
                #expect(status.json["customers_affected"] as? Int == expected.count)
                let customers = try #require((status.json["export"] as? [String: Any])?["customers"] as? [[String: Any]])
                #expect(customers.map { $0["customer_id"] as? String } == expected)
                // The brand's backend is the controller: its exports are in clear.
                #expect((customers.first?["attributes"] as? [String: Any])?["email"] as? String == "jane@example.com")
            case "erasure":
                #expect(found.isEmpty)
            case "restriction":
                #expect(found.values.allSatisfy(\.restricted) && found.count == expected.count)
            default:
                #expect(found.values.allSatisfy { !$0.restricted } && found.count == expected.count)
            }
        }
    }

    @Test func malformedSubjectRequestsAre400() async throws {
        let f = try await PrivacyFixture.make()
        try await f.api.test { client in
            for (body, attribute) in [
                (#"{"request_type":"delete","identities":[{"identity_type":"id","identity_value":"c-1"}]}"#, "request_type"),
                (#"{"request_type":"access","identities":[]}"#, "identities"),
                (#"{"request_type":"access"}"#, "identities"),
                (#"{"request_type":"access","identities":[{"identity_type":"phone","identity_value":"x"}]}"#, "identity_type"),
                (#"{"request_type":"access","identities":[{"identity_type":"email","identity_value":"marker-bad"}]}"#, "identity_value"),
                (#"{"request_type":"access","submitted_time":"yesterday","identities":[{"identity_type":"id","identity_value":"c-1"}]}"#, "submitted_time"),
                (#"{"request_type":"access","api_version":"2.0","identities":[{"identity_type":"id","identity_value":"c-1"}]}"#, "api_version"),
            ] {
                let response = try await client.send(.post, "/v1/opengdpr_requests/acme", auth: f.api.auth, json: body)
                #expect(response.status == .badRequest, "\(body)")
                #expect(response.error["attribute"] as? String == attribute, "\(body): \(response.text)")
                #expect(!response.text.contains("marker-bad"))
            }
            #expect(try await client.send(.get, "/v1/opengdpr_requests/acme/nope", auth: f.api.auth).status == .notFound)
        }
    }

    @Test func restrictionRefusesNewDataAndKeepsTheOld() async throws {
        let f = try await PrivacyFixture.make()
        try await f.api.test { client in
            try await client.send(.post, "/v1/opengdpr_requests/acme", auth: f.api.auth,
                                  json: #"{"request_type":"restriction","identities":[{"identity_type":"id","identity_value":"c-1"}]}"#)
            let refused = try await client.send(.post, "/v1/customer/acme", auth: f.api.auth, json: customerJSON("c-1", #"{"first_name":"X"}"#))
            #expect(refused.status == .forbidden)
            #expect((refused.error["message"] as? String)?.contains("restricted") == true)
            let read = try await client.send(.get, "/v1/workspaces/acme/customers/c-1", auth: f.api.auth)
            #expect(read.status == .ok && read.json["restricted"] as? Bool == true)
            try await client.send(.post, "/v1/opengdpr_requests/acme", auth: f.api.auth,
                                  json: #"{"request_type":"unrestriction","identities":[{"identity_type":"id","identity_value":"c-1"}]}"#)
            #expect(try await client.send(.post, "/v1/customer/acme", auth: f.api.auth,
                                          json: customerJSON("c-1", #"{"first_name":"X"}"#)).status == .ok)
        }
    }

    @Test func erasureShredsTheCustomer() async throws {
        let f = try await PrivacyFixture.make()
        let workspace = WorkspaceID(trusted: "acme")
        let marker = "erase-\(UUID().uuidString.prefix(8))@marker.example"
        _ = try await f.api.vault.ingest([.object(["type": .string("customer"), "customer_id": .string("c-9"),
                                                   "attributes": .object(["email": .string(marker), "first_name": .string("Eraseme")])])],
                                         workspace: try await f.api.vault.workspace(workspace)!, actor: .apiKey(id: "test"))
        let before = try #require(try await f.api.store.customer(CustomerID(trusted: "c-9"), workspace: workspace))
        let sealed = try #require(before.attributes["email"])
        try await f.api.test { client in
            let erased = try await client.send(.post, "/v1/opengdpr_requests/acme", auth: f.api.auth,
                                               json: #"{"request_type":"erasure","identities":[{"identity_type":"email","identity_value":"\#(marker)"}]}"#)
            #expect(erased.json["customers_affected"] as? Int == 1)
            #expect(try await client.send(.get, "/v1/workspaces/acme/customers/c-9", auth: f.api.auth).status == .notFound)
            let lookup = try await client.send(.get, "/v1/workspaces/acme/customers?email=\(marker.replacingOccurrences(of: "@", with: "%40"))",
                                               auth: f.api.auth)
            #expect((lookup.json["customers"] as? [Any])?.isEmpty == true)
        }
        // The row, its wrapped data key and its ciphertexts are gone from every file of the database
        // (SQLite's: PostgreSQL's files are the server's).
        if let sqlite = f.api.sqlite {
            try await sqlite.checkpoint()
            for name in try FileManager.default.contentsOfDirectory(atPath: f.api.folder.path) {
                let data = try Data(contentsOf: f.api.folder.appendingPathComponent(name))
                #expect(data.range(of: Data(sealed)) == nil, "ciphertext survives in \(name)")
                #expect(data.range(of: Data(before.dataKey)) == nil, "wrapped data key survives in \(name)")
                #expect(data.range(of: Data(marker.utf8)) == nil)
            }
        }
        // A copy kept elsewhere cannot be opened: the data key it needs no longer exists anywhere.
        var forged = before
        forged.revision = 99
        #expect(throws: (any Error).self) {
            try Envelope.open(sealed, with: SymmetricKeyProbe.random(), workspace: workspace, customer: CustomerID(trusted: "c-9"),
                              attribute: AttributeName(trusted: "email"))
        }
        let events = try await f.api.store.pendingEvents(workspace: workspace, limit: 10)
        #expect(events.map(\.type) == ["erased"] && events.map(\.customerID) == ["c-9"])
        let audit = try await f.api.store.auditEntries(workspace: workspace, filter: AuditFilter(action: .erase))
        #expect(audit.map(\.draft.customerID) == ["c-9"])
    }

    @Test func erasedIDsCanBeRefusedOnReingest() async throws {
        let f = try await PrivacyFixture.make()
        let workspace = WorkspaceID(trusted: "acme")
        try await f.api.vault.erase([CustomerID(trusted: "c-2")], workspace: workspace, actor: .apiKey(id: "k"), requestID: nil)
        // By default an erased id is a new customer when it comes back.
        try await f.api.test { client in
            let back = try await client.send(.post, "/v1/customer/acme", auth: f.api.auth, json: customerJSON("c-2", #"{"first_name":"B"}"#))
            #expect(back.status == .ok)
        }
        _ = try await f.api.vault.updateWorkspace(workspace) { $0.refuseErasedCustomerIDs = true }
        try await f.api.vault.erase([CustomerID(trusted: "c-3")], workspace: workspace, actor: .apiKey(id: "k"), requestID: nil)
        try await f.api.test { client in
            let refused = try await client.send(.post, "/v1/customer/acme", auth: f.api.auth, json: customerJSON("c-3", #"{"first_name":"C"}"#))
            #expect(refused.status == .badRequest && refused.error["type"] as? String == "CustomerIdError")
        }
    }

    @Test func retentionErasesStaleCustomersAsTheSystem() async throws {
        let f = try await PrivacyFixture.make()
        let workspace = WorkspaceID(trusted: "acme")
        _ = try await f.api.vault.updateWorkspace(workspace) { $0.retentionDays = 30 }
        #expect(try await f.api.vault.runRetention() == 0)
        #expect(try await f.api.vault.runRetention(now: Date().addingTimeInterval(31 * 86_400)) == 3)
        #expect(try await f.api.store.customerIDs(workspace: workspace, after: nil, limit: 10).isEmpty)
        let audit = try await f.api.store.auditEntries(workspace: workspace, filter: AuditFilter(action: .erase))
        #expect(audit.count == 3 && audit.allSatisfy { $0.draft.actorType == "system" && $0.draft.actorID == "retention" })
    }

    @Test func oneClientAddressIsThrottledAcrossAccountsBeforeAnyPasswordCheck() async throws {
        let f = try await PrivacyFixture.make()
        let limit = f.api.vault.operatorPolicy.loginAttemptsPerClient
        // Guesses spread over many accounts (none of them real) from one address.
        for attempt in 0..<limit {
            await #expect(throws: Failure.self) {
                try await f.api.vault.login(workspace: "acme", email: "guess\(attempt)@brand.example", password: "whatever-long",
                                            client: "203.0.113.7")
            }
        }
        // Past the limit even the right password is refused, with 429, and no account is locked by it.
        let throttled = await #expect(throws: Failure.self) {
            try await f.api.vault.login(workspace: "acme", email: "admin@brand.example", password: "correct horse battery",
                                        client: "203.0.113.7")
        }
        #expect(throttled?.kind == .rateLimited)
        // Another address is not affected.
        let session = try await f.api.vault.login(workspace: "acme", email: "admin@brand.example", password: "correct horse battery",
                                                  client: "198.51.100.20")
        #expect(session.operatorRecord.role == .admin)
    }

    @Test func lockoutAfterRepeatedFailures() async throws {
        let f = try await PrivacyFixture.make()
        try await f.api.test { client in
            func login(_ password: String) async throws -> TestResponse {
                try await client.send(.post, "/v1/operators/login",
                                      json: #"{"workspace":"acme","email":"admin@brand.example","password":"\#(password)"}"#)
            }
            let unknown = try await client.send(.post, "/v1/operators/login",
                                                json: #"{"workspace":"acme","email":"ghost@brand.example","password":"whatever-long"}"#)
            #expect(unknown.status == .unauthorized)
            for _ in 0..<5 { #expect(try await login("wrong password!").status == .unauthorized) }
            let locked = try await login("correct horse battery")
            #expect(locked.status == .unauthorized)
            #expect(locked.error["message"] as? String == unknown.error["message"] as? String)
        }
        let record = try #require(try await f.api.store.operators(workspace: WorkspaceID(trusted: "acme")).first { $0.role == .admin })
        #expect(record.lockedUntil != nil)
        try await f.api.vault.unlockOperator(id: record.id)
        try await f.api.test { client in
            let ok = try await client.send(.post, "/v1/operators/login",
                                           json: #"{"workspace":"acme","email":"admin@brand.example","password":"correct horse battery"}"#)
            #expect(ok.status == .ok && (ok.json["token"] as? String)?.hasPrefix("ds_") == true)
            let token = try #require(ok.json["token"] as? String)
            #expect(try await client.send(.post, "/v1/operators/logout", auth: "Bearer \(token)").status == .ok)
            #expect(try await client.send(.get, "/v1/workspaces/acme/customers/c-1", auth: "Bearer \(token)").status == .unauthorized)
        }
    }

    /// A burst of parallel guesses is counted guess by guess, so it locks the account too.
    @Test func parallelFailedLoginsLockTheAccount() async throws {
        let f = try await PrivacyFixture.make()
        try await f.api.test { client in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        try await client.send(.post, "/v1/operators/login",
                                              json: #"{"workspace":"acme","email":"admin@brand.example","password":"wrong password!"}"#).status.code
                    }
                }
                for try await status in group { #expect(status == 401) }
            }
            let correct = try await client.send(.post, "/v1/operators/login",
                                                json: #"{"workspace":"acme","email":"admin@brand.example","password":"correct horse battery"}"#)
            #expect(correct.status == .unauthorized)
        }
        let record = try #require(try await f.api.store.operators(workspace: WorkspaceID(trusted: "acme")).first { $0.role == .admin })
        #expect(record.lockedUntil != nil)
    }

    /// These two tamper with the SQLite file directly; the chain's checks are the same on every
    /// backend (the "Audit chain" suite, `auditCheckpointsTravelWithTheEventsAndAnchorTheChain`).
    @Test(.enabled(if: TestStore.selected == .sqlite))
    func auditVerificationFindsAlteredAndRemovedEntries() async throws {
        let f = try await PrivacyFixture.make()
        let workspace = WorkspaceID(trusted: "acme")
        try await f.api.vault.setRestricted(true, [CustomerID(trusted: "c-1")], workspace: workspace, actor: .apiKey(id: "k"), requestID: "r1")
        try await f.api.vault.setRestricted(false, [CustomerID(trusted: "c-1")], workspace: workspace, actor: .apiKey(id: "k"), requestID: "r2")
        guard case .intact(let count, _, _) = try await f.api.vault.verifyAudit(workspace: workspace) else {
            Issue.record("a fresh chain does not verify")
            return
        }
        #expect(count >= 6)
        let database = try DatabaseQueue(path: f.api.folder.appendingPathComponent("domicile.sqlite").path)
        // Altered: an entry's customer changed.
        try await database.write { db in
            try db.execute(sql: "UPDATE audit_log SET customer_id = 'c-2' WHERE workspace_id = 'acme' AND seq = 3")
        }
        #expect(try await f.api.vault.verifyAudit(workspace: workspace) == .broken(atSeq: 3, reason: "its content does not match its hash (altered)"))
        try await database.write { db in
            try db.execute(sql: "UPDATE audit_log SET customer_id = NULL WHERE workspace_id = 'acme' AND seq = 3")
        }
        // Removed from the middle.
        try await database.write { db in try db.execute(sql: "DELETE FROM audit_log WHERE workspace_id = 'acme' AND seq = 2") }
        #expect(try await f.api.vault.verifyAudit(workspace: workspace) == .broken(atSeq: 2, reason: "entry 2 is missing"))
    }

    @Test(.enabled(if: TestStore.selected == .sqlite))
    func auditTailRemovalIsDetected() async throws {
        let f = try await PrivacyFixture.make()
        let workspace = WorkspaceID(trusted: "acme")
        let last = try #require(try await f.api.store.auditHead(workspace: workspace)).seq
        let database = try DatabaseQueue(path: f.api.folder.appendingPathComponent("domicile.sqlite").path)
        try await database.write { db in try db.execute(sql: "DELETE FROM audit_log WHERE workspace_id = 'acme' AND seq = ?", arguments: [last]) }
        guard case .broken(let seq, _) = try await f.api.vault.verifyAudit(workspace: workspace) else {
            Issue.record("removing the last entry went unnoticed")
            return
        }
        #expect(seq == last)
    }

    @Test func schemaChangesIndexExistingValues() async throws {
        let f = try await PrivacyFixture.make()
        let admin = try #require(f.tokens[.admin])
        try await f.api.test { client in
            #expect(try await client.send(.post, "/v1/customer/acme", auth: f.api.auth,
                                          json: customerJSON("c-7", #"{"loyalty":"L-77"}"#)).status == .ok)
            let before = try await client.send(.get, "/v1/workspaces/acme/customers?attribute=loyalty&value=L-77", auth: f.api.auth)
            #expect(before.status == .badRequest)
            // Unmarking PII shows values in clear to everyone: an admin without view_pii may not.
            let unmark = try await client.send(.put, "/v1/workspaces/acme/schema/loyalty", auth: admin, json: #"{"type":"text","pii":false,"indexed":true}"#)
            #expect(unmark.status == .forbidden)
            let changed = try await client.send(.put, "/v1/workspaces/acme/schema/loyalty", auth: admin, json: #"{"type":"text","pii":true,"indexed":true}"#)
            #expect(changed.status == .ok)
            let after = try await client.send(.get, "/v1/workspaces/acme/customers?attribute=loyalty&value=L-77", auth: f.api.auth)
            #expect((after.json["customers"] as? [[String: Any]])?.map { $0["customer_id"] as? String } == ["c-7"])
            #expect(((after.json["customers"] as? [[String: Any]])?.first?["attributes"] as? [String: Any])?["loyalty"] as? String == "********")
            let schema = try await client.send(.get, "/v1/workspaces/acme/schema", auth: admin)
            #expect(schema.text.contains("\"loyalty\""))
        }
        let audit = try await f.api.store.auditEntries(workspace: WorkspaceID(trusted: "acme"), filter: AuditFilter(action: .schemaChange))
        #expect(audit.map(\.draft.attributes) == [["loyalty"]])
    }
}

import Crypto
enum SymmetricKeyProbe {
    static func random() -> SymmetricKey { SymmetricKey(size: .bits256) }
}

@Suite("CSV export")
struct CSVExportTests {
    @Test("cells a spreadsheet would run as formulas are shown as text", arguments: [
        ("=HYPERLINK(\"http://evil.example\",\"x\")", "\"'=HYPERLINK(\"\"http://evil.example\"\",\"\"x\"\")\""),
        ("=1+2", "'=1+2"), ("+1+2", "'+1+2"), ("-2+3", "'-2+3"), ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tcmd", "'\tcmd"), ("\r=1", "\"'\r=1\""), ("-", "'-"), ("+", "'+"), ("+971 50", "'+971 50"), ("1.", "1."),
    ])
    func formulas(_ value: String, _ cell: String) {
        #expect(CSVExport.field(value) == cell)
    }

    @Test("plain numbers and ordinary text are kept as they are", arguments: [
        "+971501234567", "-42", "-3.5", "+0.25", "42", "Jane", "j***@e******.com", "a=b", "x-1", "", "'quoted",
    ])
    func kept(_ value: String) {
        #expect(CSVExport.field(value) == value)
    }
}
