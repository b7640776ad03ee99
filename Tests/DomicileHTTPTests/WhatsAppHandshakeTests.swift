import DomicileCore
import DomicileHTTP
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// Meta's webhook verification: `GET <callback URL>?hub.mode=subscribe&hub.verify_token=…&hub.challenge=…`.
@Suite("WhatsApp subscription handshake")
struct WhatsAppHandshakeTests {
    static let token = "vt-Zq81 &=/token"
    static let encodedToken = "vt-Zq81%20%26%3D%2Ftoken"

    /// A workspace whose administrator set the WhatsApp provider, verify token included, through the API.
    static func configured() async throws -> APIFixture {
        let f = try await APIFixture.make()
        _ = try await f.vault.createOperator(workspace: WorkspaceID(trusted: "acme"), email: "admin@brand.example", role: .admin,
                                             viewPII: false, password: "correct horse battery")
        let session = try await f.vault.login(workspace: "acme", email: "admin@brand.example", password: "correct horse battery", client: nil)
        let settings = #"{"phone_number_id":"1065","access_token":"EAAG","app_secret":"app-secret","verify_token":"\#(token)"}"#
        try await f.test { client in
            let set = try await client.send(.put, "/v1/workspaces/acme/providers/whatsapp", auth: "Bearer " + session.token,
                                            json: #"{"kind":"whatsapp_cloud","settings":\#(settings)}"#)
            #expect(set.status == .ok, "\(set.text)")
            #expect(!set.text.contains(token))
        }
        return f
    }

    static func handshake(workspace: String = "acme", mode: String? = "subscribe", token: String? = encodedToken,
                          challenge: String? = "1158201444", provider: String = "whatsapp") -> String {
        let query = [("hub.mode", mode), ("hub.verify_token", token), ("hub.challenge", challenge)]
            .compactMap { name, value in value.map { "\(name)=\($0)" } }.joined(separator: "&")
        return "/v1/callbacks/\(provider)/\(workspace)?\(query)"
    }

    @Test func theChallengeComesBackAsPlainTextForTheConfiguredToken() async throws {
        let f = try await Self.configured()
        try await f.test { client in
            let answer = try await client.send(.get, Self.handshake())
            #expect(answer.status == .ok)
            #expect(answer.text == "1158201444")
            #expect(answer.headers[.contentType] == "text/plain; charset=utf-8")
            let dashed = try await client.send(.get, Self.handshake(challenge: "a_B-9"))
            #expect(dashed.status == .ok && dashed.text == "a_B-9")
        }
    }

    @Test("anything but the configured token is a 403, alike", arguments: [
        handshake(token: "vt-Zq81"), handshake(token: encodedToken + "x"), handshake(token: ""), handshake(token: nil),
        handshake(workspace: "other"), handshake(workspace: "nobody"), handshake(workspace: "bad%20id"),
    ])
    func wrongTokensAreForbidden(uri: String) async throws {
        let f = try await Self.configured()
        try await f.test { client in
            let answer = try await client.send(.get, uri)
            #expect(answer.status == .forbidden)
            #expect(answer.error["type"] as? String == "ForbiddenError")
            #expect(answer.error["attribute"] as? String == "hub.verify_token")
            #expect(!answer.text.contains("1158201444"), "the challenge was echoed")
        }
    }

    @Test func aWorkspaceWithoutAVerifyTokenAnswers403() async throws {
        let f = try await APIFixture.make()
        let acme = WorkspaceID(trusted: "acme")
        try await f.vault.setProvider(acme, channel: .whatsapp, kind: "whatsapp_cloud",
                                      settings: ["phone_number_id": "1065", "access_token": "EAAG", "app_secret": "app-secret"], actor: .commandLine)
        // Another kind's setting of the same name does not count.
        try await f.vault.setProvider(acme, channel: .sms, kind: "twilio", settings: ["verify_token": Self.token], actor: .commandLine)
        try await f.test { client in
            let answer = try await client.send(.get, Self.handshake())
            #expect(answer.status == .forbidden)
        }
        try await f.vault.setProvider(acme, channel: .whatsapp, kind: "whatsapp_cloud",
                                      settings: ["phone_number_id": "1065", "access_token": "EAAG", "verify_token": ""], actor: .commandLine)
        try await f.test { client in
            let answer = try await client.send(.get, Self.handshake(token: ""))
            #expect(answer.status == .forbidden)
        }
    }

    @Test("a challenge that is not short and plain is a 400, never echoed", arguments: [
        (handshake(challenge: "%3Cscript%3Ealert(1)%3C%2Fscript%3E"), "hub.challenge", "AttributeError"),
        (handshake(challenge: String(repeating: "7", count: 129)), "hub.challenge", "AttributeError"),
        (handshake(challenge: "12%2034"), "hub.challenge", "AttributeError"),
        (handshake(challenge: ""), "hub.challenge", "AttributeError"),
        (handshake(challenge: nil), "hub.challenge", "MissingAttributeError"),
        (handshake(mode: "unsubscribe"), "hub.mode", "AttributeError"),
        (handshake(mode: nil), "hub.mode", "MissingAttributeError"),
    ])
    func malformedHandshakesAre400(uri: String, attribute: String, type: String) async throws {
        let f = try await Self.configured()
        try await f.test { client in
            let answer = try await client.send(.get, uri)
            #expect(answer.status == .badRequest)
            #expect(answer.error["attribute"] as? String == attribute)
            #expect(answer.error["type"] as? String == type)
            // The whole answer but its random request id, which may hold any digits.
            let text = answer.text.replacingOccurrences(of: answer.error["request_id"] as? String ?? "-", with: "")
            #expect(!text.contains("script") && !text.contains("777"))
        }
    }

    @Test func theLongestPlainChallengeIsEchoed() async throws {
        let f = try await Self.configured()
        let challenge = String(repeating: "7", count: 128)
        try await f.test { client in
            let answer = try await client.send(.get, Self.handshake(challenge: challenge))
            #expect(answer.status == .ok && answer.text == challenge)
        }
    }

    @Test func onlyWhatsAppHasAHandshakeAndItsCallbacksStillArrive() async throws {
        let f = try await Self.configured()
        try await f.test { client in
            let twilio = try await client.send(.get, Self.handshake(provider: "twilio"))
            #expect(twilio.status == .notFound && twilio.error["attribute"] as? String == "provider")
            // The GET route shares the path with the status callbacks' POST, which still answers.
            let unsigned = try await client.send(.post, "/v1/callbacks/whatsapp/acme", json: #"{"entry":[]}"#)
            #expect(unsigned.status == .unauthorized)
        }
    }
}
