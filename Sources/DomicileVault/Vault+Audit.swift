import DomicileCore
import Foundation
import Logging
import Synchronization

/// An audit entry as an administrator reads it, with the reason opened.
public struct AuditRecordView: Sendable {
    public var entry: AuditEntry
    public var reason: String?
}

extension Vault {
    /// Appends entries durably, in their own transaction.
    public func audit(_ drafts: [AuditDraft], workspace: WorkspaceID) async throws {
        let key = try await keyring.keys(for: workspace).auditChain
        _ = try await store.commit(CommitBatch(workspaceID: workspace, mutations: [], audit: AuditAppend(drafts, key: key)))
    }

    /// Appends an entry for a read without making the read wait for the disk: entries are
    /// buffered and written together every few milliseconds, one transaction per workspace.
    /// A failure is logged, never shown to the reader.
    func auditInBackground(_ draft: AuditDraft, workspace: WorkspaceID) {
        readAudit.append(draft, workspace: workspace, vault: self, logger: logger)
    }

    /// Waits until every read entry buffered so far is written: at a graceful stop, and in tests.
    public func flushReadAudit() async {
        await readAudit.drain()
    }

    static let reasonAttribute = AttributeName(trusted: "reason")

    /// A reason's copy names its entry, so that a copy moved onto another entry does not open.
    static func reasonCopyContext(_ seq: Int64) -> String { "audit:\(seq)" }

    func sealReason(_ reason: String, workspace: WorkspaceID) async throws -> [UInt8] {
        let keys = try await keyring.keys(for: workspace)
        return try keys.sealSecret(reason, context: "audit", attribute: Self.reasonAttribute)
    }

    /// Reads the audit log (administrators).
    public func auditLog(workspace: WorkspaceID, filter: AuditFilter, actor: Actor) async throws -> [AuditRecordView] {
        try actor.require(.readAudit)
        let keys = try await keyring.keys(for: workspace)
        return try await store.auditEntries(workspace: workspace, filter: filter).map { entry in
            // The copy sealed with the secrets key, when the original was sealed with a key version.
            let reason = if let copy = entry.resealedReason {
                try? keys.openSecret(copy, context: Self.reasonCopyContext(entry.seq), attribute: Self.reasonAttribute)
            } else {
                entry.draft.sealedReason.flatMap { try? keys.openSecret($0, context: "audit", attribute: Self.reasonAttribute) }
            }
            return AuditRecordView(entry: entry, reason: reason)
        }
    }

    /// Walks a workspace's whole chain and reports the first broken link.
    /// - Parameter checkpoints: signed checkpoints the main data center received; each must be
    ///   this workspace's, carry a valid signature, and match the chain.
    public func verifyAudit(workspace: WorkspaceID, checkpoints: [AuditCheckpoint] = []) async throws -> AuditVerification {
        let keys = try await keyring.keys(for: workspace)
        var anchors: [(seq: Int64, hash: [UInt8])] = []
        for checkpoint in checkpoints where checkpoint.workspaceID == workspace.rawValue {
            guard checkpoint.verifies(publicKey: keys.auditCheckpoints.publicKey), let head = checkpoint.headBytes else {
                return .broken(atSeq: checkpoint.seq, reason: "a checkpoint's signature is not this workspace's (forged or altered)")
            }
            anchors.append((checkpoint.seq, head))
        }
        var entries: [AuditEntry] = []
        var after: Int64 = 0
        while true {
            let page = try await store.auditEntries(workspace: workspace, filter: AuditFilter(afterSeq: after, limit: 5_000))
            entries += page
            guard let last = page.last, page.count == 5_000 else { break }
            after = last.seq
        }
        return AuditVerification.check(entries, head: try await store.auditHead(workspace: workspace), key: keys.auditChain,
                                       anchors: anchors)
    }

    /// A signed checkpoint of the chain's head, for the main data center; nil while the chain is empty.
    public func auditCheckpoint(workspace: WorkspaceID) async throws -> AuditCheckpoint? {
        guard let head = try await store.auditHead(workspace: workspace) else { return nil }
        return try await keyring.keys(for: workspace).auditCheckpoints.checkpoint(seq: head.seq, head: head.hash)
    }

    /// The public key that checks the workspace's checkpoints (base64 Ed25519).
    public func auditCheckpointPublicKey(workspace: WorkspaceID) async throws -> String {
        try await keyring.keys(for: workspace).auditCheckpoints.publicKey
    }
}

/// Read audit entries waiting to be written: appended from any thread, written by one task at a
/// time, which keeps going until nothing is left; `drain` waits for that task, so a graceful stop
/// loses none of them.
final class AuditBuffer: Sendable {
    private struct State {
        var drafts: [WorkspaceID: [AuditDraft]] = [:]
        /// The task writing entries, while there is one: every append either finds it (and it
        /// will take the entry) or starts it.
        var writer: Task<Void, Never>?
        /// The writer's wait for more entries, which a drain cuts short.
        var gathering: Task<Void, Never>?
    }

    private let state = Mutex(State())
    private let window: Duration

    init(window: Duration) { self.window = window }

    func append(_ draft: AuditDraft, workspace: WorkspaceID, vault: Vault, logger: Logger) {
        state.withLock { state in
            state.drafts[workspace, default: []].append(draft)
            guard state.writer == nil else { return }
            // Let the reads of a short window gather, then write them in one go (one commit for all).
            // The wait is a task of its own so that a drain can end it without cancelling the writes.
            let gathering = Task { [window] in _ = try? await Task.sleep(for: window) }
            state.gathering = gathering
            state.writer = Task {
                await gathering.value
                await self.write(vault: vault, logger: logger)
            }
        }
    }

    /// Writes until nothing is buffered; only the writer task calls it.
    private func write(vault: Vault, logger: Logger) async {
        while true {
            let drafts = state.withLock { state -> [WorkspaceID: [AuditDraft]] in
                let taken = state.drafts
                state.drafts = [:]
                if taken.isEmpty { state.writer = nil }
                return taken
            }
            guard !drafts.isEmpty else { return }
            for (workspace, entries) in drafts {
                do {
                    try await vault.audit(entries, workspace: workspace)
                } catch {
                    logger.error("audit append failed", metadata: ["error.type": "\(type(of: error))", "entries": "\(entries.count)"])
                }
            }
        }
    }

    /// Returns once every entry appended before the call is written (or its failure logged).
    func drain() async {
        while let writer = state.withLock({ state in
            state.gathering?.cancel()
            return state.writer
        }) {
            await writer.value
        }
    }
}
