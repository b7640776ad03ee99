import Crypto
import DomicileCore
import DomicileHTTP
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Client mode over HTTP, in-process (on SQLite, and on PostgreSQL in scripts/test's second run):
/// envelopes in, values in clear refused, lookups by the brand's digest, and the relay's routes.
/// The whole path with the real relay and providers is ClientModeTests (system tests).
@Suite("Client mode and the relay's routes")
struct RelayAPITests {
    struct Fixture {
        let api: APIFixture
        let dataKey: DataAPIKey
        let relayKey: (keyID: String, secret: String)
        let sendKey: (keyID: String, secret: String)
        var auth: String { APIFixture.basic("brand", dataKey.secret) }
    }

    static func make() async throws -> Fixture {
        let api = try await APIFixture.make()
        let id = WorkspaceID(trusted: "brand")
        let dataKey = try await api.vault.createWorkspace(id, protection: .client)
        return Fixture(api: api, dataKey: dataKey, relayKey: try await api.vault.issueSendKey(id, relay: true),
                       sendKey: try await api.vault.issueSendKey(id))
    }

    /// An envelope Domicile cannot open (random bytes: it never tries).
    static func envelope(index: [UInt8]? = nil, masked: String? = nil) -> String {
        var writer = JSONWriter()
        writer.value(ClientEnvelope(keyID: "k1", nonce: (0..<12).map { _ in .random(in: 0...255) },
                                    ciphertext: (0..<40).map { _ in .random(in: 0...255) }, masked: masked, index: index).json)
        return String(decoding: writer.bytes, as: UTF8.self)
    }

    static let emailDigest = [UInt8](repeating: 0xAB, count: 32)

    static func signed(_ key: (keyID: String, secret: String), path: String, body: String) -> HTTPFields {
        let timestamp = String(Int(Date().timeIntervalSince1970))
        return [HTTPField.Name("X-Domicile-Key")!: key.keyID, HTTPField.Name("X-Domicile-Timestamp")!: timestamp,
                HTTPField.Name("X-Domicile-Signature")!: "v1=" + Vault.sendSignature(secret: key.secret, timestamp: timestamp, method: "POST",
                                                                                    path: path, body: Array(body.utf8)),
                .contentType: "application/json"]
    }

    static func post(_ client: any TestClientProtocol, _ path: String, _ body: String, key: (keyID: String, secret: String)) async throws
        -> TestResponse
    {
        try await client.execute(uri: path, method: .post, headers: signed(key, path: path, body: body), body: ByteBuffer(string: body))
    }

    @Test func envelopesAreStoredValuesInClearRefusedAndLookupsGoByTheBrandsDigest() async throws {
        let f = try await Self.make()
        try await f.api.test { client in
            let element = customerJSON("c-1", #"{"email":\#(Self.envelope(index: Self.emailDigest, masked: "j***@e******.com")),"first_name":\#(Self.envelope())}"#)
            let ingest = try await client.send(.post, "/v1/transition/brand", auth: f.auth, json: transition(element))
            #expect(ingest.status == .ok, "\(ingest.text)")
            // A PII value in clear, an indexed attribute without its digest, a malformed envelope: refused, naming the attribute.
            for (attributes, attribute) in [(#"{"email":"jane@example.com"}"#, "email"),
                                            (#"{"mobile":\#(Self.envelope())}"#, "mobile"),
                                            (#"{"first_name":{"domicile_envelope":1,"key_id":"k1","nonce":"AA==","ciphertext":"AA=="}}"#, "first_name")] {
                let refused = try await client.send(.post, "/v1/customer/brand", auth: f.auth, json: customerJSON("c-2", attributes))
                #expect(refused.status == .badRequest, "\(attributes)")
                #expect(refused.error["attribute"] as? String == attribute)
                #expect(!refused.text.contains("jane@example.com"))
            }
            #expect(try await client.send(.get, "/v1/workspaces/brand/customers/c-2", auth: f.auth).status == .notFound)
            // A vault-mode workspace refuses envelopes, saying why.
            let vaultMode = try await client.send(.post, "/v1/customer/acme", auth: f.api.auth, json: customerJSON("c-1", #"{"email":\#(Self.envelope())}"#))
            #expect(vaultMode.status == .badRequest && vaultMode.text.contains("--protection client"))

            let read = try await client.send(.get, "/v1/workspaces/brand/customers/c-1", auth: f.auth)
            let attributes = read.json["attributes"] as? [String: Any]
            #expect(attributes?["email"] as? String == "j***@e******.com")
            #expect(attributes?["first_name"] as? String == "********")
            let digest = Data(Self.emailDigest).base64EncodedString().addingPercentEncoding(withAllowedCharacters: .alphanumerics)!
            let found = try await client.send(.get, "/v1/workspaces/brand/customers?attribute=email&digest=\(digest)", auth: f.auth)
            #expect((found.json["customers"] as? [[String: Any]])?.map { $0["customer_id"] as? String } == ["c-1"])
            #expect(try await client.send(.get, "/v1/workspaces/brand/customers?email=jane%40example.com", auth: f.auth).status == .badRequest)
            #expect(try await client.send(.get, "/v1/workspaces/acme/customers?attribute=email&digest=\(digest)", auth: f.api.auth).status == .badRequest)
            // The export (the data API key sees values in clear) carries the envelopes.
            let access = try await client.send(.post, "/v1/opengdpr_requests/brand", auth: f.auth, json:
                #"{"request_type":"access","identities":[{"identity_type":"email_digest","identity_value":"\#(Data(Self.emailDigest).base64EncodedString())"}]}"#)
            let requestID = try #require(access.json["request_id"] as? String)
            let export = try await client.send(.get, "/v1/opengdpr_requests/brand/\(requestID)", auth: f.auth)
            #expect(export.text.contains("domicile_envelope") && export.text.contains("\"c-1\""))
        }
        // Domicile cannot rebuild the brand's index.
        await #expect(throws: Failure.self) { try await f.api.vault.rotateWorkspaceKey(WorkspaceID(trusted: "brand"), rebuildingBlindIndex: true) }
    }

    @Test func theRelayRoutesTakeARelayKeyOfAClientModeWorkspaceOnly() async throws {
        let f = try await Self.make()
        await #expect(throws: Failure.self) { try await f.api.vault.issueSendKey(WorkspaceID(trusted: "acme"), relay: true) }
        try await f.api.test { client in
            let claim = #"{"limit":10}"#
            #expect(try await Self.post(client, "/v1/relay/brand/claim", claim, key: f.relayKey).status == .ok)
            #expect(try await Self.post(client, "/v1/relay/brand/claim", claim, key: f.sendKey).status == .unauthorized)
            let message = #"{"message_id":"m-1","customer_id":"c-1","channel":"sms","content":{"text":"hi"}}"#
            #expect(try await Self.post(client, "/v1/workspaces/brand/messages", message, key: f.relayKey).status == .unauthorized)
            let unsigned = try await client.send(.post, "/v1/relay/brand/claim", json: claim)
            #expect(unsigned.status == .unauthorized)
            #expect(try await Self.post(client, "/v1/relay/brand/claim", #"{"limit":0}"#, key: f.relayKey).status == .badRequest)
        }
    }

    @Test func aMessageIsHandedOnceReportedOnceAndItsStatusesReachTheMainDataCenter() async throws {
        let f = try await Self.make()
        let workspace = WorkspaceID(trusted: "brand")
        try await f.api.test { client in
            let element = customerJSON("c-1", #"{"mobile":\#(Self.envelope(index: Self.emailDigest)),"first_name":\#(Self.envelope()),"sms_opt_out":\#(Self.envelope())}"#)
            #expect(try await client.send(.post, "/v1/transition/brand", auth: f.auth, json: transition(element)).status == .ok)
            let send = #"{"messages":[{"message_id":"m-1","customer_id":"c-1","channel":"sms","content":{"text":"Hi {{first_name}}"}},{"message_id":"m-2","customer_id":"c-1","channel":"sms","content":{"text":"Again"}},{"message_id":"m-3","customer_id":"c-1","channel":"email","content":{"subject":"s","text":"t"}}]}"#
            let accepted = try await Self.post(client, "/v1/workspaces/brand/messages", send, key: f.sendKey)
            #expect(accepted.status == .accepted)
            // No e-mail address: refused at once, as in vault mode.
            #expect(accepted.text.contains("no_contact_for_channel"))
            // The nodes' dispatcher never takes them.
            #expect(try await f.api.store.claimDueMessages(node: "n", route: .providers, now: Date(), leaseUntil: Date() + 60, limit: 10).isEmpty)

            let claimed = try await Self.post(client, "/v1/relay/brand/claim", #"{"limit":10,"lease_seconds":60}"#, key: f.relayKey)
            let messages = try #require(claimed.json["messages"] as? [[String: Any]])
            #expect(messages.compactMap { $0["message_id"] as? String }.sorted() == ["m-1", "m-2"])
            let first = try #require(messages.first { $0["message_id"] as? String == "m-1" })
            let handed = try #require(first["attributes"] as? [String: Any])
            // The contact, the opt-out and what the template names; nothing else.
            #expect(Set(handed.keys) == ["mobile", "sms_opt_out", "first_name"])
            #expect((handed["mobile"] as? [String: Any])?["domicile_envelope"] as? Int == 1)
            #expect(first["attempt"] as? Int == 1 && (first["content"] as? [String: Any])?["text"] as? String == "Hi {{first_name}}")
            // Claimed: not handed again within the lease.
            #expect((try await Self.post(client, "/v1/relay/brand/claim", #"{}"#, key: f.relayKey).json["messages"] as? [Any])?.isEmpty == true)

            // A malformed report changes nothing.
            let bad = #"{"results":[{"message_id":"m-1","outcome":"sent","provider_message_id":"P-1"},{"message_id":"m-2","outcome":"lost"}]}"#
            #expect(try await Self.post(client, "/v1/relay/brand/results", bad, key: f.relayKey).status == .badRequest)
            #expect(try await f.api.store.message("m-1", workspace: workspace)?.status == .sending)

            let reportedAt = Date()
            let results = #"{"results":[{"message_id":"m-1","outcome":"sent","provider_message_id":"P-1"},{"message_id":"m-2","outcome":"transient","code":"http_503"}]}"#
            let reported = try await Self.post(client, "/v1/relay/brand/results", results, key: f.relayKey)
            #expect(reported.json["recorded"] as? Int == 2)
            // Reported again (a lost answer): ignored.
            #expect(try await Self.post(client, "/v1/relay/brand/results", results, key: f.relayKey).json["ignored"] as? Int == 2)
            let sent = try #require(try await f.api.store.message("m-1", workspace: workspace))
            #expect(sent.status == .sent && sent.providerMessageID == "P-1" && sent.sealedPayload == nil)
            let retried = try #require(try await f.api.store.message("m-2", workspace: workspace))
            #expect(retried.status == .queued && retried.attempts == 1 && retried.errorCode == "http_503")
            // The first retry waits 1 to 2 s (the dispatcher's backoff, with jitter).
            #expect(retried.nextAttemptAt >= reportedAt.addingTimeInterval(0.99) && retried.nextAttemptAt <= Date().addingTimeInterval(2.01))

            let statuses = #"{"statuses":[{"provider_message_id":"P-1","status":"delivered"},{"provider_message_id":"P-unknown","status":"delivered"}]}"#
            let applied = try await Self.post(client, "/v1/relay/brand/statuses", statuses, key: f.relayKey)
            #expect(applied.json["recorded"] as? Int == 1 && applied.json["ignored"] as? Int == 1)
            #expect(try await f.api.store.message("m-1", workspace: workspace)?.status == .delivered)
            let events = try await f.api.store.pendingEvents(workspace: workspace, limit: 100)
            #expect(events.contains { $0.messageID == "m-1" && $0.status == .delivered })
        }
    }
}
