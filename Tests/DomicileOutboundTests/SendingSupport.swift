import Crypto
import DomicileCore
import DomicileHTTP
import DomicileOutbound
import DomicileSQLite
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Synchronization
import Testing

/// Records what a provider double received and answers from a script of replies.
final class DoubleLog: Sendable {
    let requests = Mutex<[(path: String, headers: HTTPFields, body: [UInt8])]>([])
    let replies: Mutex<[(HTTPResponse.Status, String)]>

    init(replies: [(HTTPResponse.Status, String)] = []) { self.replies = Mutex(replies) }

    func record(_ request: Request, body: [UInt8]) { requests.withLock { $0.append((request.uri.path, request.headers, body)) } }
    func nextReply(default fallback: (HTTPResponse.Status, String)) -> (HTTPResponse.Status, String) {
        replies.withLock { $0.isEmpty ? fallback : $0.removeFirst() }
    }
    var bodies: [String] { requests.withLock { $0.map { String(decoding: $0.body, as: UTF8.self) } } }
}

func json(_ status: HTTPResponse.Status, _ text: String) -> Response {
    Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: text)))
}

/// Test doubles that follow the providers' public contracts (paths, auth, bodies, answers, errors).
enum ProviderDoubles {
    /// Twilio Messaging: `POST /2010-04-01/Accounts/{sid}/Messages.json`, Basic sid:token, form fields.
    static func twilio(_ log: DoubleLog, accountSID: String, authToken: String, router: Router<BasicRequestContext>) {
        router.post("2010-04-01/Accounts/:sid/Messages.json") { request, context -> Response in
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            log.record(request, body: body)
            let expected = "Basic " + Data("\(accountSID):\(authToken)".utf8).base64EncodedString()
            guard request.headers[.authorization] == expected, context.parameters.get("sid") == accountSID else {
                return json(.unauthorized, #"{"code":20003,"message":"Authenticate","more_info":"https://www.twilio.com/docs/errors/20003","status":401}"#)
            }
            let (status, text) = log.nextReply(default: (.created, ""))
            if status != .created { return json(status, text) }
            let sid = "SM" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased()
            return json(.created, #"{"sid":"\#(sid)","status":"queued","account_sid":"\#(accountSID)","error_code":null}"#)
        }
    }

    /// WhatsApp Cloud API: `POST /{phone_number_id}/messages`, Bearer token, JSON.
    static func whatsapp(_ log: DoubleLog, token: String, router: Router<BasicRequestContext>) {
        router.post(":phone/messages") { request, _ -> Response in
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            log.record(request, body: body)
            guard request.headers[.authorization] == "Bearer \(token)" else {
                return json(.unauthorized, #"{"error":{"message":"Invalid OAuth access token.","type":"OAuthException","code":190,"fbtrace_id":"A1"}}"#)
            }
            let (status, text) = log.nextReply(default: (.ok, ""))
            if status != .ok { return json(status, text) }
            let to = (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["to"] as? String ?? ""
            return json(.ok, #"{"messaging_product":"whatsapp","contacts":[{"input":"\#(to)","wa_id":"\#(to)"}],"messages":[{"id":"wamid.\#(UUID().uuidString)"}]}"#)
        }
    }

    /// The private SSP contract: `{"version":"1.0","smsData":{…},"metadata":{…}}` → `{"status":"sms_accepted"}`.
    static func privateSSP(_ log: DoubleLog, router: Router<BasicRequestContext>) {
        router.post("sms") { request, _ -> Response in
            let body = Array(buffer: try await request.body.collect(upTo: 1 << 20))
            log.record(request, body: body)
            let (status, text) = log.nextReply(default: (.ok, #"{"status":"sms_accepted"}"#))
            return json(status, text)
        }
    }

    /// The main data center's events receiver.
    static func mainDataCenter(_ log: DoubleLog, router: Router<BasicRequestContext>) {
        router.post("events") { request, _ -> Response in
            log.record(request, body: Array(buffer: try await request.body.collect(upTo: 1 << 20)))
            return json(.ok, "{}")
        }
    }
}

/// A vault with one customer, a send key and the API, for the sending tests.
struct SendFixture {
    let vault: Vault
    let store: SQLiteVaultStore
    let folder: URL
    let keyID: String
    let secret: String
    let workspace = WorkspaceID(trusted: "acme")
    let markers: [String]

    static func make() async throws -> SendFixture {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("domicile-send-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let store = try SQLiteVaultStore(path: folder.appendingPathComponent("domicile.sqlite").path)
        let vault = Vault(store: store, root: LocalKeyFileRootKey(key: SymmetricKey(size: .bits256)), region: "local", cacheLifetime: .zero)
        let workspace = WorkspaceID(trusted: "acme")
        _ = try await vault.createWorkspace(workspace)
        // The providers of these tests listen on loopback, in plain HTTP and SMTP.
        _ = try await vault.setEgressAllowlist(workspace, hosts: EgressAllowlist.defaults.hosts + ["127.0.0.1", "localhost"],
                                               actor: .commandLine)
        let token = UUID().uuidString.prefix(6).lowercased()
        let digits = String(abs(token.hashValue) % 1_000_000).padding(toLength: 6, withPad: "0", startingAt: 0)
        let markers = ["mk\(token)@inbox.example", "+97150\(digits)1", "Zq\(token)name"]
        _ = try await vault.ingest([.object(["type": .string("customer"), "customer_id": .string("c-1"), "attributes": .object([
            "email": .string(markers[0]), "mobile": .string(markers[1]), "first_name": .string(markers[2]),
        ])])], workspace: try await vault.workspace(workspace)!, actor: .apiKey(id: "test"))
        let (keyID, secret) = try await vault.issueSendKey(workspace)
        return SendFixture(vault: vault, store: store, folder: folder, keyID: keyID, secret: secret, markers: markers)
    }

    func signedHeaders(_ method: String, _ path: String, _ body: String, timestamp: Int = Int(Date().timeIntervalSince1970),
                       secret: String? = nil) -> HTTPFields {
        [
            HTTPField.Name("X-Domicile-Key")!: keyID,
            HTTPField.Name("X-Domicile-Timestamp")!: String(timestamp),
            HTTPField.Name("X-Domicile-Signature")!: "v1=" + Vault.sendSignature(secret: secret ?? self.secret, timestamp: String(timestamp),
                                                                                  method: method, path: path, body: Array(body.utf8)),
            .contentType: "application/json",
        ]
    }

    func send(_ client: any TestClientProtocol, _ body: String) async throws -> TestResponse {
        let path = "/v1/workspaces/acme/messages"
        return try await client.execute(uri: path, method: .post, headers: signedHeaders("POST", path, body), body: ByteBuffer(string: body))
    }

    func dispatcher(maximumAttempts: Int = 8) -> MessageDispatcher {
        MessageDispatcher(vault: vault, logger: Logger(label: "test"), factory: Providers.factory(), maximumAttempts: maximumAttempts,
                          baseBackoff: .milliseconds(1), maximumBackoff: .milliseconds(5))
    }

    func test(_ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        try await Application(router: DomicileAPI.router(vault: vault)).test(.router) { client in try await body(client) }
    }

    /// Every file of the database, after a checkpoint, must be free of the customer's values.
    func assertNoMarkersAtRest() async throws {
        try await store.checkpoint()
        for name in try FileManager.default.contentsOfDirectory(atPath: folder.path) {
            let data = try Data(contentsOf: folder.appendingPathComponent(name))
            for marker in markers { #expect(data.range(of: Data(marker.utf8)) == nil, "\(marker) at rest in \(name)") }
        }
    }
}

extension SendFixture {
    /// Runs `body` with a Twilio double (account AC123, token "tok") as the workspace's SMS
    /// provider and a main data center double as its events receiver.
    func withTwilio(_ body: @escaping @Sendable (_ twilio: DoubleLog, _ events: DoubleLog) async throws -> Void) async throws {
        let twilio = DoubleLog(), events = DoubleLog()
        try await withDouble({
            ProviderDoubles.twilio(twilio, accountSID: "AC123", authToken: "tok", router: $0)
            ProviderDoubles.mainDataCenter(events, router: $0)
        }) { port in
            try await vault.setProvider(workspace, channel: .sms, kind: "twilio", settings: [
                "base_url": "http://127.0.0.1:\(port)", "account_sid": "AC123", "auth_token": "tok", "from": "+15005550006",
                "status_callback": twilioCallbackURL,
            ], actor: .commandLine)
            _ = try await vault.configureEvents(workspace, url: "http://127.0.0.1:\(port)/events")
            try await body(twilio, events)
        }
    }

    /// Runs `body` with a WhatsApp Cloud API double (app secret "app-secret") as the workspace's
    /// WhatsApp provider and a main data center double as its events receiver.
    func withWhatsAppCloud(_ body: @escaping @Sendable (_ meta: DoubleLog, _ events: DoubleLog) async throws -> Void) async throws {
        let meta = DoubleLog(), events = DoubleLog()
        try await withDouble({ ProviderDoubles.whatsapp(meta, token: "EAAG", router: $0); ProviderDoubles.mainDataCenter(events, router: $0) }) { port in
            try await vault.setProvider(workspace, channel: .whatsapp, kind: "whatsapp_cloud", settings: [
                "base_url": "http://127.0.0.1:\(port)", "phone_number_id": "1065", "access_token": "EAAG", "app_secret": "app-secret",
            ], actor: .commandLine)
            _ = try await vault.configureEvents(workspace, url: "http://127.0.0.1:\(port)/events")
            try await body(meta, events)
        }
    }

    /// A Cloud API status webhook about message `id`, carrying the customer's number as Meta's do,
    /// and its signature with the app secret; `errors` is JSON appended to the status object.
    func whatsappStatusWebhook(id: String, status: String, errors: String = "") -> (body: String, signature: String) {
        let body = #"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages","value":{"messaging_product":"whatsapp","statuses":[{"id":"\#(id)","status":"\#(status)","timestamp":"1700000000","recipient_id":"\#(markers[1].dropFirst())"\#(errors)}]}}]}]}"#
        let mac = HMAC<SHA256>.authenticationCode(for: Array(body.utf8), using: SymmetricKey(data: Array("app-secret".utf8)))
        return (body, "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
    }
}

/// Posts a WhatsApp Cloud API webhook to workspace acme with this `X-Hub-Signature-256`.
func postWhatsAppWebhook(_ client: any TestClientProtocol, body: String, signature: String) async throws -> TestResponse {
    try await client.execute(uri: "/v1/callbacks/whatsapp/acme", method: .post,
                             headers: [.contentType: "application/json", HTTPField.Name("X-Hub-Signature-256")!: signature],
                             body: ByteBuffer(string: body))
}
let twilioCallbackURL = "https://vault.example/v1/callbacks/twilio/acme"

/// Posts a Twilio status callback for `sid` to workspace acme, signed with `token` for `twilioCallbackURL`.
func twilioCallback(_ client: any TestClientProtocol, sid: String, status: String, errorCode: String = "", token: String,
                    to: String) async throws -> TestResponse {
    let fields = [("MessageSid", sid), ("MessageStatus", status), ("To", to), ("ErrorCode", errorCode)]
    let body = fields.map { "\($0.0)=\($0.1.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }.joined(separator: "&")
    return try await client.execute(uri: "/v1/callbacks/twilio/acme", method: .post,
                                    headers: [.contentType: "application/x-www-form-urlencoded",
                                              HTTPField.Name("X-Twilio-Signature")!: CallbackSignature.twilio(url: twilioCallbackURL, fields: fields,
                                                                                                              token: token)],
                                    body: ByteBuffer(string: body))
}

/// One message of a send request for customer c-1.
func messageRequest(_ id: String, channel: String, content: [String: JSONValue] = ["text": .string("hi")]) -> JSONValue {
    .object(["message_id": .string(id), "customer_id": .string("c-1"), "channel": .string(channel), "content": .object(content)])
}

/// Runs a router on a free loopback port for the duration of `body`.
func withDouble(_ build: (Router<BasicRequestContext>) -> Void, _ body: @Sendable (Int) async throws -> Void) async throws {
    let router = Router()
    build(router)
    try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
        try await body(try #require(client.port))
    }
}

/// aiosmtpd on a free loopback port (scripts/smtp-sink.py), plain SMTP, recording what it accepts;
/// `arguments` are the sink's options (`--rcpt-reply "550 5.1.1 …"` refuses every recipient).
final class SMTPServer: Sendable {
    let port: Int
    let file: URL
    let process: Process

    init(arguments: [String] = []) async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/smtp-sink.py")
        file = FileManager.default.temporaryDirectory.appendingPathComponent("smtp-\(UUID().uuidString).jsonl")
        process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script.path, file.path] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let line = output.fileHandleForReading.availableData
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any], let port = object["port"] as? Int else {
            process.terminate()
            throw SMTPServerMissing(description: "the SMTP sink did not start; run scripts/install-deps (aiosmtpd)")
        }
        self.port = port
    }

    struct SMTPServerMissing: Error, CustomStringConvertible { let description: String }

    var messages: [[String: Any]] {
        guard let data = FileManager.default.contents(atPath: file.path) else { return [] }
        return String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    func stop() {
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
