import Crypto
import DomicileCore
import DomicileHTTP
import DomicileOutbound
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Provider callbacks", .serialized)
struct CallbackTests {
    @Test func twilioCallbacksVerifyAgainstTheAccountThatSentEachChannel() async throws {
        let f = try await SendFixture.make()
        let smsAccount = DoubleLog(), whatsappAccount = DoubleLog()
        try await withDouble({ ProviderDoubles.twilio(smsAccount, accountSID: "ACsms", authToken: "token-a", router: $0) }) { smsPort in
            try await withDouble({ ProviderDoubles.twilio(whatsappAccount, accountSID: "ACwa", authToken: "token-b", router: $0) }) { whatsappPort in
                for (channel, port, account, token) in [(DomicileCore.Channel.sms, smsPort, "ACsms", "token-a"), (.whatsapp, whatsappPort, "ACwa", "token-b")] {
                    try await f.vault.setProvider(f.workspace, channel: channel, kind: "twilio", settings: [
                        "base_url": "http://127.0.0.1:\(port)", "account_sid": account, "auth_token": token, "from": "+15005550006",
                        "status_callback": twilioCallbackURL,
                    ], actor: .commandLine)
                }
                _ = try await f.vault.acceptMessages([messageRequest("m-sms", channel: "sms"), messageRequest("m-wa", channel: "whatsapp")],
                                                     workspace: try await f.vault.workspace(f.workspace)!, actor: .mainDataCenter)
                #expect(await f.dispatcher().dispatchOnce() == 2)
                #expect(smsAccount.requests.withLock { $0.count } == 1 && whatsappAccount.requests.withLock { $0.count } == 1)
                let smsSID = try #require(try await f.store.message("m-sms", workspace: f.workspace)?.providerMessageID)
                let whatsappSID = try #require(try await f.store.message("m-wa", workspace: f.workspace)?.providerMessageID)
                try await f.test { client in
                    // Account B (the second channel's) signs its own message's callback: before the fix
                    // only the first channel's token was tried, and this was a 401.
                    let forged = try await twilioCallback(client, sid: whatsappSID, status: "delivered", token: "token-c", to: f.markers[1])
                    #expect(forged.status == .unauthorized)
                    let whatsapp = try await twilioCallback(client, sid: whatsappSID, status: "delivered", token: "token-b", to: f.markers[1])
                    #expect(whatsapp.status == .ok)
                    #expect(try await f.store.message("m-wa", workspace: f.workspace)?.status == .delivered)
                    #expect(try await f.store.message("m-sms", workspace: f.workspace)?.status == .sent, "the report moved another message")
                    let sms = try await twilioCallback(client, sid: smsSID, status: "read", token: "token-a", to: f.markers[1])
                    #expect(sms.status == .ok)
                    #expect(try await f.store.message("m-sms", workspace: f.workspace)?.status == .read)
                    #expect(try await f.store.message("m-wa", workspace: f.workspace)?.status == .delivered)
                }
            }
        }
    }

    @Test func anEmptySecretVerifiesNothing() async throws {
        let f = try await SendFixture.make()
        try await f.vault.setProvider(f.workspace, channel: .sms, kind: "private_ssp", settings: ["url": "http://127.0.0.1:9/sms", "callback_secret": ""], actor: .commandLine)
        try await f.vault.setProvider(f.workspace, channel: .whatsapp, kind: "whatsapp_cloud", settings: [
            "phone_number_id": "1065", "access_token": "EAAG", "app_secret": "",
        ], actor: .commandLine)
        let ssp = #"{"version":"1.0","messageId":"m-1","status":"sms_sent","statusCode":0}"#
        let whatsapp = #"{"object":"whatsapp_business_account","entry":[]}"#
        let emptyKey = { @Sendable (body: String) in
            HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: [UInt8]())).map { String(format: "%02x", $0) }.joined()
        }
        try await f.test { client in
            let signedSSP = try await client.execute(uri: "/v1/callbacks/private_ssp/acme", method: .post,
                                                     headers: [.contentType: "application/json", HTTPField.Name("X-Signature")!: emptyKey(ssp)],
                                                     body: ByteBuffer(string: ssp))
            #expect(signedSSP.status == .unauthorized)
            let signedWhatsApp = try await client.execute(uri: "/v1/callbacks/whatsapp/acme", method: .post,
                                                          headers: [.contentType: "application/json",
                                                                    HTTPField.Name("X-Hub-Signature-256")!: "sha256=" + emptyKey(whatsapp)],
                                                          body: ByteBuffer(string: whatsapp))
            #expect(signedWhatsApp.status == .unauthorized)
        }
    }
}
