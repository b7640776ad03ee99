import DomicileCore
import DomicileVault
import Foundation
import Testing

/// Every service of the vault checks its caller itself: an adapter that forgot to (a CLI
/// command, the console, a new route) still cannot act beyond the permission matrix.
@Suite("The vault's services check the caller")
struct AuthorizationTests {
    static let viewer = Actor.operator(id: "op-v", role: .viewer, viewPII: false)
    static let manager = Actor.operator(id: "op-m", role: .manager, viewPII: false)
    static let admin = Actor.operator(id: "op-a", role: .admin, viewPII: false)

    /// One service call, made by `actor`.
    struct Case: Sendable, CustomTestStringConvertible {
        let name: String
        let actor: Actor
        let call: @Sendable (VaultFixture, Actor) async throws -> Void
        var testDescription: String { "\(name) by \(actor.type) \(actor.id)" }
    }

    static let c1 = CustomerID(trusted: "c-1")

    static let refused: [Case] = [
        Case(name: "ingest", actor: admin) { f, actor in
            _ = try await f.vault.ingest([f.customer("c-2", ["email": .string("new@example.com")])], workspace: f.workspace, actor: actor)
        },
        Case(name: "ingest", actor: .mainDataCenter) { f, actor in
            _ = try await f.vault.ingest([f.customer("c-2", ["email": .string("new@example.com")])], workspace: f.workspace, actor: actor)
        },
        Case(name: "read", actor: .mainDataCenter) { f, actor in
            _ = try await f.vault.read(c1, workspace: f.workspace.id, actor: actor, requestID: nil)
        },
        Case(name: "lookup", actor: .system(job: "retention")) { f, actor in
            _ = try await f.vault.lookup(.email("jane@example.com"), workspace: f.workspace.id, actor: actor, requestID: nil)
        },
        Case(name: "schema", actor: .mainDataCenter) { f, actor in _ = try await f.vault.schema(f.workspace.id, actor: actor) },
        Case(name: "reveal", actor: admin) { f, actor in
            _ = try await f.vault.reveal(c1, attributes: ["email"], reason: "support ticket", workspace: f.workspace.id, actor: actor,
                                         requestID: nil)
        },
        Case(name: "reveal", actor: .commandLine) { f, actor in
            _ = try await f.vault.reveal(c1, attributes: ["email"], reason: "support ticket", workspace: f.workspace.id, actor: actor,
                                         requestID: nil)
        },
        Case(name: "change schema", actor: manager) { f, actor in
            try await f.vault.changeAttribute(AttributeDefinition(name: AttributeName(trusted: "plan"), type: .text, pii: true, indexed: true),
                                              workspace: f.workspace.id, actor: actor, requestID: nil)
        },
        Case(name: "erase", actor: manager) { f, actor in _ = try await f.vault.erase([c1], workspace: f.workspace.id, actor: actor, requestID: nil) },
        Case(name: "restrict", actor: viewer) { f, actor in
            _ = try await f.vault.setRestricted(true, [c1], workspace: f.workspace.id, actor: actor, requestID: nil)
        },
        Case(name: "access request", actor: viewer) { f, actor in
            _ = try await f.vault.submitSubjectRequest(.access, identities: [SubjectIdentity(kind: .id, value: "c-1")], submittedAt: nil,
                                                       workspace: f.workspace.id, actor: actor, requestID: nil)
        },
        Case(name: "audit log", actor: manager) { f, actor in
            _ = try await f.vault.auditLog(workspace: f.workspace.id, filter: AuditFilter(), actor: actor)
        },
        Case(name: "configure a provider", actor: manager) { f, actor in
            try await f.vault.setProvider(f.workspace.id, channel: .sms, kind: "private_ssp", settings: ["url": "https://ssp.example/sms"],
                                          actor: actor)
        },
        Case(name: "configure a provider", actor: .apiKey(id: "k")) { f, actor in
            try await f.vault.setProvider(f.workspace.id, channel: .sms, kind: "private_ssp", settings: ["url": "https://ssp.example/sms"],
                                          actor: actor)
        },
        Case(name: "change the egress allowlist", actor: manager) { f, actor in
            _ = try await f.vault.setEgressAllowlist(f.workspace.id, hosts: ["evil.example"], actor: actor)
        },
        Case(name: "read the egress allowlist", actor: .apiKey(id: "k")) { f, actor in
            _ = try await f.vault.egressAllowlist(f.workspace.id, actor: actor)
        },
        Case(name: "send", actor: .apiKey(id: "k")) { f, actor in
            _ = try await f.vault.acceptMessages([.object(["message_id": .string("m-1"), "customer_id": .string("c-1"),
                                                           "channel": .string("sms"), "content": .object(["text": .string("hi")])])],
                                                 workspace: f.workspace, actor: actor)
        },
        Case(name: "message history", actor: admin) { f, actor in
            _ = try await f.vault.messageHistory("m-1", workspace: f.workspace.id, actor: actor)
        },
    ]

    @Test(arguments: refused)
    func aCallerWithoutThePermissionIsRefusedAndNothingChanges(_ refusal: Case) async throws {
        let f = try await VaultFixture.make()
        try await f.ingest(f.customer("c-1", ["email": .string("jane@example.com"), "plan": .string("gold")]))
        await f.vault.flushReadAudit()
        let auditBefore = try await f.vault.store.auditEntries(workspace: f.workspace.id, filter: AuditFilter(limit: 1_000)).count
        let rowBefore = try await f.vault.store.customer(Self.c1, workspace: f.workspace.id)

        let error = await #expect(throws: Failure.self) { try await refusal.call(f, refusal.actor) }
        #expect(error?.kind == .forbidden)

        await f.vault.flushReadAudit()
        #expect(try await f.vault.store.auditEntries(workspace: f.workspace.id, filter: AuditFilter(limit: 1_000)).count == auditBefore)
        #expect(try await f.vault.store.customer(Self.c1, workspace: f.workspace.id) == rowBefore)
        #expect(try await f.vault.store.customer(CustomerID(trusted: "c-2"), workspace: f.workspace.id) == nil)
        #expect(try await f.vault.store.provider(workspace: f.workspace.id, channel: .sms) == nil)
        #expect(try await f.vault.schema(f.workspace.id)[AttributeName(trusted: "plan")]?.indexed == false)
    }

    @Test func theSameServicesServeACallerWithThePermission() async throws {
        let f = try await VaultFixture.make()
        let report = try await f.vault.ingest([f.customer("c-1", ["email": .string("jane@example.com")])], workspace: f.workspace,
                                              actor: .apiKey(id: "k"))
        #expect(report.refused.isEmpty)
        #expect(try await f.vault.read(Self.c1, workspace: f.workspace.id, actor: Self.viewer, requestID: nil)?.attributes["email"]
            == .string("j***@e******.com"))
        #expect(try await f.vault.lookup(.email("jane@example.com"), workspace: f.workspace.id, actor: Self.viewer, requestID: nil)
            .map(\.customerID) == [Self.c1])
        _ = try await f.vault.setEgressAllowlist(f.workspace.id, hosts: ["ssp.example"], actor: Self.admin, requestID: "req-0")
        try await f.vault.setProvider(f.workspace.id, channel: .sms, kind: "private_ssp", settings: ["url": "https://ssp.example/sms"],
                                      actor: Self.admin, requestID: "req-1")
        await f.vault.flushReadAudit()
        let entries = try await f.vault.store.auditEntries(workspace: f.workspace.id, filter: AuditFilter(limit: 1_000))
        // The read, the lookup, the allowlist and the provider change are each audited once, under their caller.
        #expect(entries.filter { $0.draft.action == .readMasked && $0.draft.actorID == "op-v" }.count == 1)
        #expect(entries.filter { $0.draft.action == .lookup && $0.draft.actorID == "op-v" }.count == 1)
        #expect(entries.filter { $0.draft.action == .keyChange && $0.draft.attributes == ["provider:sms"] }.map(\.draft.actorID) == ["op-a"])
        #expect(entries.filter { $0.draft.action == .settingsChange }.map(\.draft.actorID) == ["op-a"])
    }
}
