import DomicileCore
import DomicileHTTP
import DomicileOutbound
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Testing

/// Outbound connections go only to hosts on the workspace's allowlist, encrypted unless on loopback:
/// refused when configured, and again before each connection.
@Suite("Egress allowlist", .serialized)
struct EgressTests {
    @Test func aNewWorkspaceAllowsTheProvidersDocumentedHosts() async throws {
        let f = try await SendFixture.make()
        let fresh = WorkspaceID(trusted: "fresh")
        _ = try await f.vault.createWorkspace(fresh)
        #expect(try await f.vault.egressAllowlist(fresh, actor: .commandLine).hosts == ["api.twilio.com", "graph.facebook.com"])
        try await f.vault.setProvider(fresh, channel: .sms, kind: "twilio",
                                      settings: ["account_sid": "AC1", "auth_token": "t", "from": "+15005550006"], actor: .commandLine)
    }

    @Test func unlistedOrUnencryptedEndpointsAreRefusedWhenConfigured() async throws {
        let f = try await SendFixture.make()
        func refusal(_ kind: String, _ settings: [String: String]) async -> Failure? {
            do {
                try await f.vault.setProvider(f.workspace, channel: kind == "smtp" ? .email : .sms, kind: kind, settings: settings,
                                              actor: .commandLine)
                return nil
            } catch { return error as? Failure }
        }
        let unlisted = await refusal("private_ssp", ["url": "https://sms.brand.example/send"])
        #expect(unlisted?.attribute == "url")
        #expect(unlisted?.message.contains("sms.brand.example is not on this workspace's egress allowlist") == true)
        let plain = await refusal("private_ssp", ["url": "http://sms.brand.example/send"])
        #expect(plain?.message.contains("must use TLS") == true)
        #expect(await refusal("smtp", ["host": "smtp.brand.example", "tls": "none", "from": "a@brand.example"])?.attribute == "host")
        #expect(await refusal("twilio", ["account_sid": "AC1", "auth_token": "t", "from": "+1", "base_url": "https://api.evil.example"])?
            .attribute == "base_url")
        await #expect(throws: Failure.self) { _ = try await f.vault.configureEvents(f.workspace, url: "https://collector.evil.example/events") }
        await #expect(throws: Failure.self) { _ = try await f.vault.configureEvents(f.workspace, url: "http://maindc.example/events") }

        // Listed, over TLS: accepted. Plain HTTP stays refused for a host that is not loopback.
        _ = try await f.vault.setEgressAllowlist(f.workspace, hosts: ["sms.brand.example", "smtp.brand.example", "127.0.0.1"],
                                                 actor: .commandLine)
        #expect(await refusal("private_ssp", ["url": "https://sms.brand.example/send"]) == nil)
        #expect(await refusal("smtp", ["host": "smtp.brand.example", "tls": "starttls", "from": "a@brand.example"]) == nil)
        #expect(await refusal("private_ssp", ["url": "http://sms.brand.example/send"]) != nil)
        #expect(await refusal("private_ssp", ["url": "http://127.0.0.1:9/send"]) == nil)
    }

    @Test func theAPIChangesTheListForAdministratorsOnly() async throws {
        let f = try await SendFixture.make()
        let (_, adminPassword) = try await f.vault.createOperator(workspace: f.workspace, email: "admin@brand.example", role: .admin, viewPII: false)
        let (_, managerPassword) = try await f.vault.createOperator(workspace: f.workspace, email: "manager@brand.example", role: .manager, viewPII: true)
        try await f.test { client in
            func login(_ email: String, _ password: String) async throws -> String {
                let answer = try await client.execute(uri: "/v1/operators/login", method: .post, headers: [.contentType: "application/json"],
                                                      body: ByteBuffer(string: #"{"workspace":"acme","email":"\#(email)","password":"\#(password)"}"#))
                return try #require((try JSONSerialization.jsonObject(with: Data(buffer: answer.body)) as? [String: Any])?["token"] as? String)
            }
            let adminToken = try await login("admin@brand.example", adminPassword)
            let managerToken = try await login("manager@brand.example", managerPassword)
            let put = #"{"hosts":["SMS.Brand.Example","api.twilio.com"]}"#
            let refused = try await client.execute(uri: "/v1/workspaces/acme/egress", method: .put,
                                                   headers: [.authorization: "Bearer \(managerToken)", .contentType: "application/json"],
                                                   body: ByteBuffer(string: put))
            #expect(refused.status == .forbidden)
            let changed = try await client.execute(uri: "/v1/workspaces/acme/egress", method: .put,
                                                   headers: [.authorization: "Bearer \(adminToken)", .contentType: "application/json"],
                                                   body: ByteBuffer(string: put))
            #expect(changed.status == .ok)
            #expect(String(buffer: changed.body) == #"{"hosts":["sms.brand.example","api.twilio.com"]}"#)
            let bad = try await client.execute(uri: "/v1/workspaces/acme/egress", method: .put,
                                               headers: [.authorization: "Bearer \(adminToken)", .contentType: "application/json"],
                                               body: ByteBuffer(string: #"{"hosts":["https://sms.brand.example/x"]}"#))
            #expect(bad.status == .badRequest)
            let read = try await client.execute(uri: "/v1/workspaces/acme/egress", method: .get, headers: [.authorization: "Bearer \(adminToken)"])
            #expect(String(buffer: read.body) == #"{"hosts":["sms.brand.example","api.twilio.com"]}"#)
        }
        let audit = try await f.store.auditEntries(workspace: f.workspace, filter: AuditFilter())
        #expect(audit.contains { $0.draft.action == .settingsChange && $0.draft.attributes == ["egress_allowlist"] })
    }

    @Test func aHostTakenOffTheListReceivesNothingMore() async throws {
        let f = try await SendFixture.make()
        let ssp = DoubleLog()
        try await withDouble({ ProviderDoubles.privateSSP(ssp, router: $0) }) { port in
            try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp",
                                          settings: ["url": "http://127.0.0.1:\(port)/sms", "from": "BRAND"], actor: .commandLine)
            _ = try await f.vault.setEgressAllowlist(f.workspace, hosts: ["api.twilio.com"], actor: .commandLine)
            try await f.test { client in
                let accepted = try await f.send(client, #"{"messages":[{"message_id":"m-1","customer_id":"c-1","channel":"sms","content":{"text":"Hi"}}]}"#)
                #expect(accepted.status == .accepted)
            }
            #expect(await f.dispatcher().dispatchOnce() == 1)
            #expect(ssp.requests.withLock { $0.isEmpty }, "a refused host was connected to")
            let message = try #require(try await f.store.message("m-1", workspace: f.workspace))
            #expect(message.status == .queued && message.errorCode == "egress_refused")
        }
    }
}
