import DomicileCore
import DomicileVault
import Foundation
import Hummingbird

/// The brand's relay of a client-mode workspace pulls its work here, signed with a relay key
/// (as the main data center signs with a send key; mutual TLS too when it is configured):
///
/// - `POST /v1/relay/{ws}/claim` `{"limit":100,"lease_seconds":120}` → `{"messages":[…]}`: due
///   messages, each claimed for the lease, with the brand's envelopes of the attributes its
///   templates name;
/// - `POST /v1/relay/{ws}/results` `{"results":[{"message_id":…,"outcome":"sent","provider_message_id":…}]}`:
///   what the provider said of each hand-over (`sent`, `transient`, `permanent`, `bounced`, with a `code`);
/// - `POST /v1/relay/{ws}/statuses` `{"statuses":[{"provider_message_id":…,"status":"delivered"}]}`:
///   the providers' later reports, from the relay's callbacks.
///
/// The relay pulls, so the brand's network needs no inbound connection from Domicile.
struct RelayController {
    let vault: Vault

    func addRoutes(to group: RouterGroup<DomicileRequestContext>) {
        group.post("relay/:workspace/claim", use: claim)
        group.post("relay/:workspace/results", use: results)
        group.post("relay/:workspace/statuses", use: statuses)
    }

    struct Recorded: Encodable {
        var recorded: Int
        var ignored: Int
    }

    @Sendable func claim(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let body = try await JSONBody.read(request)
        func integer(_ key: String, default value: Int64) throws(Failure) -> Int {
            switch body[key] {
            case nil, .null?: return Int(value)
            case .integer(let number)? where (0...100_000).contains(number): return Int(number)
            default: throw Failure(.attribute, attribute: key, "\(key) must be a whole number")
            }
        }
        let limit = try integer("limit", default: 100)
        let lease = try integer("lease_seconds", default: 120)
        let messages = try await vault.claimForRelay(workspace: workspace, actor: actor, limit: limit, lease: .seconds(lease))
        var writer = JSONWriter(capacity: 256 + 1024 * messages.count)
        writer.value(.object(["messages": .array(messages)]))
        return JSONResponse.make(writer.bytes)
    }

    /// The `field` of each element of `list` in `body`, at most 1,000.
    static func list(_ body: JSONValue, _ name: String) throws(Failure) -> [[String: JSONValue]] {
        guard case .array(let items)? = body[name] else { throw Failure(.missingAttribute, attribute: name, "\(name) must be an array") }
        guard items.count <= 1_000 else { throw Failure(.attribute, attribute: name, "at most 1,000 \(name) in one request") }
        return try items.map { item throws(Failure) in
            guard case .object(let fields) = item else { throw Failure(.attribute, attribute: name, "each of \(name) must be an object") }
            return fields
        }
    }

    static func string(_ fields: [String: JSONValue], _ key: String, required: Bool = true) throws(Failure) -> String? {
        switch fields[key] {
        case .string(let value)? where (1...256).contains(value.count): return value
        case nil, .null?:
            if required { throw Failure(.missingAttribute, attribute: key, "\(key) is required") }
            return nil
        default: throw Failure(.attribute, attribute: key, "\(key) must be a string of 1 to 256 characters")
        }
    }

    @Sendable func results(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let body = try await JSONBody.read(request, maximumSize: SendAuthMiddleware.maximumBody)
        // Every entry is checked before any is recorded: a bad report changes nothing.
        let reports = try Self.list(body, "results").map { fields throws(Failure) -> (messageID: String, outcome: RelayOutcome) in
            let messageID = try Self.string(fields, "message_id")!
            let code = try Self.string(fields, "code", required: false) ?? "relay"
            let outcome: RelayOutcome = switch try Self.string(fields, "outcome")! {
            case "sent": .sent(providerMessageID: try Self.string(fields, "provider_message_id")!)
            case "transient": .transient(code: code)
            case "permanent": .permanent(code: code)
            case "bounced": .bounced(code: code)
            default: throw Failure(.attribute, attribute: "outcome", "outcome must be sent, transient, permanent or bounced")
            }
            return (messageID, outcome)
        }
        let recorded = try await vault.recordRelayResults(reports, workspace: workspace, actor: actor)
        let count = recorded.count { $0 }
        return JSONResponse.make(Recorded(recorded: count, ignored: recorded.count - count))
    }

    @Sendable func statuses(_ request: Request, context: DomicileRequestContext) async throws -> Response {
        let (workspace, actor) = try context.caller()
        let body = try await JSONBody.read(request, maximumSize: SendAuthMiddleware.maximumBody)
        let reports = try Self.list(body, "statuses").map { fields throws(Failure) -> (Vault.ProviderReference, MessageStatus, String?) in
            let reference: Vault.ProviderReference
            if let providerID = try Self.string(fields, "provider_message_id", required: false) {
                reference = .providerMessageID(providerID)
            } else if let messageID = try Self.string(fields, "message_id", required: false) {
                reference = .messageID(messageID)
            } else {
                throw Failure(.missingAttribute, attribute: "provider_message_id", "each status names provider_message_id or message_id")
            }
            guard let status = MessageStatus(rawValue: try Self.string(fields, "status")!) else {
                throw Failure(.attribute, attribute: "status", "status must be sent, delivered, read, bounced or failed")
            }
            return (reference, status, try Self.string(fields, "code", required: false))
        }
        var recorded = 0
        for (reference, status, code) in reports {
            if try await vault.applyRelayStatus(reference, status: status, errorCode: code, workspace: workspace, actor: actor) { recorded += 1 }
        }
        return JSONResponse.make(Recorded(recorded: recorded, ignored: reports.count - recorded))
    }
}
