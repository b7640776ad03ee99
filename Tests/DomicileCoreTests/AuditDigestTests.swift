import Crypto
import Foundation
import Testing
@testable import DomicileCore

/// Chains written by earlier versions must keep verifying: the digest is checked against the
/// framing as first written (one buffer per field), kept here as the reference.
@Suite("Audit digest")
struct AuditDigestTests {
    static func reference(_ draft: AuditDraft, workspace: WorkspaceID, seq: Int64, previous: [UInt8]) -> [UInt8] {
        var framed: [UInt8] = []
        func field(_ bytes: [UInt8]) {
            withUnsafeBytes(of: UInt32(bytes.count).bigEndian) { framed += $0 }
            framed += bytes
        }
        func field(_ text: String?) { field(text.map { [1] + Array($0.utf8) } ?? [0]) }
        field(previous)
        field(workspace.rawValue)
        field(String(seq))
        field(String(Int64((draft.at.timeIntervalSince1970 * 1000).rounded())))
        field(draft.actorType)
        field(draft.actorID)
        field(draft.action.rawValue)
        field(draft.customerID)
        field(draft.attributes.joined(separator: "\u{0}"))
        field(draft.sealedReason.map { [1] + $0 } ?? [0])
        field(draft.requestID)
        return Array(SHA256.hash(data: framed))
    }

    static let drafts: [AuditDraft] = [
        AuditDraft(at: Date(timeIntervalSince1970: 1_764_000_000.123), actor: .apiKey(id: "k1"), action: .readMasked,
                   customerID: "c-1", attributes: ["email", "first_name", "mobile"], requestID: "r-1"),
        AuditDraft(at: Date(timeIntervalSince1970: 0), actor: .apiKey(id: ""), action: .login),
        AuditDraft(at: Date(timeIntervalSince1970: 1_800_000_000.9996), actor: .apiKey(id: "k2"), action: .reveal,
                   customerID: "عميل-٧", attributes: [""], sealedReason: [], requestID: nil),
        AuditDraft(actor: .apiKey(id: "k3"), action: .erase, customerID: nil, attributes: ["a", "", "b"],
                   sealedReason: Array(repeating: 0xAB, count: 300), requestID: String(repeating: "x", count: 80)),
    ]

    @Test("the digest is the reference framing's", arguments: drafts.indices)
    func sameAsReference(_ index: Int) {
        let draft = Self.drafts[index]
        for (seq, previous) in [(Int64(1), AuditEntry.genesis), (Int64.max, [UInt8](repeating: 7, count: 32))] {
            #expect(AuditEntry.digest(draft, workspace: WorkspaceID(trusted: "acme"), seq: seq, previous: previous)
                    == Self.reference(draft, workspace: WorkspaceID(trusted: "acme"), seq: seq, previous: previous))
        }
    }
}

/// The keyed chain and its checkpoints: what a database writer without the workspace key can
/// and cannot do to the history.
@Suite("Audit chain")
struct AuditChainTests {
    let workspace = WorkspaceID(trusted: "acme")
    let workspaceKey = SymmetricKey(size: .bits256)
    var key: AuditChainKey { AuditChainKey(workspaceKey: workspaceKey, workspace: workspace) }

    func chain(_ count: Int, unkeyedFirst: Int = 0) -> [AuditEntry] {
        var entries: [AuditEntry] = []
        var previous = AuditEntry.genesis
        for seq in Int64(1)...Int64(count) {
            let draft = AuditDraft(at: Date(timeIntervalSince1970: Double(seq)), actor: .apiKey(id: "k"), action: .readMasked,
                                   customerID: "c-\(seq)")
            let entry = seq <= unkeyedFirst
                ? AuditEntry(workspaceID: workspace, seq: seq, draft: draft, previousHash: previous,
                             hash: AuditEntry.digest(draft, workspace: workspace, seq: seq, previous: previous), format: .unkeyed)
                : AuditEntry.link(draft, workspace: workspace, seq: seq, previous: previous, key: key)
            entries.append(entry)
            previous = entry.hash
        }
        return entries
    }

    func head(_ entries: [AuditEntry]) -> (seq: Int64, hash: [UInt8]) { (entries.last!.seq, entries.last!.hash) }

    @Test func aKeyedLinkIsNotTheUnkeyedDigest() {
        let entry = chain(1)[0]
        #expect(entry.hash != AuditEntry.digest(entry.draft, workspace: workspace, seq: 1, previous: AuditEntry.genesis))
        #expect(entry.hash.count == 32)
    }

    @Test func unkeyedEntriesAreAcceptedOnlyAtTheStart() {
        let mixed = chain(5, unkeyedFirst: 2)
        #expect(AuditVerification.check(mixed, head: head(mixed), key: key) == .intact(entries: 5, unkeyed: 2))
        // A writer without the key alters entry 4 and re-links it and the rest with SHA-256.
        var forged = mixed
        forged[3].draft.customerID = "c-forged"
        for index in 3..<forged.count {
            forged[index].previousHash = forged[index - 1].hash
            forged[index].hash = AuditEntry.digest(forged[index].draft, workspace: workspace, seq: forged[index].seq,
                                                   previous: forged[index].previousHash)
            forged[index].format = .unkeyed
        }
        #expect(AuditVerification.check(forged, head: head(forged), key: key)
                == .broken(atSeq: 4, reason: "an unkeyed entry after keyed ones (rewritten without the chain key)"))
        // Marked keyed, the SHA-256 link does not pass as a MAC.
        for index in 3..<forged.count { forged[index].format = .keyed }
        #expect(AuditVerification.check(forged, head: head(forged), key: key)
                == .broken(atSeq: 4, reason: "its content does not match its hash (altered)"))
    }

    @Test func checkpointsCatchWhatTheChainAloneCannot() throws {
        let signer = AuditCheckpointSigner(workspaceKey: workspaceKey, workspace: workspace)
        let entries = chain(6)
        let checkpoint = try signer.checkpoint(seq: 6, head: entries[5].hash)
        #expect(checkpoint.verifies(publicKey: signer.publicKey))
        let anchors = [(seq: checkpoint.seq, hash: try #require(checkpoint.headBytes))]
        #expect(AuditVerification.check(entries, head: head(entries), key: key, anchors: anchors) == .intact(entries: 6, checkpoints: 1))
        // The last two entries removed and the head moved back: consistent, unless a checkpoint says otherwise.
        let truncated = Array(entries.prefix(4))
        #expect(AuditVerification.check(truncated, head: head(truncated), key: key) == .intact(entries: 4))
        #expect(AuditVerification.check(truncated, head: head(truncated), key: key, anchors: anchors)
                == .broken(atSeq: 5, reason: "entries 5…6 were removed: a signed checkpoint names entry 6"))
        // The whole chain rewritten as unkeyed from the start (what an upgrade would leave) does not match either.
        let rewritten = chain(6, unkeyedFirst: 6)
        #expect(AuditVerification.check(rewritten, head: head(rewritten), key: key) == .intact(entries: 6, unkeyed: 6))
        #expect(AuditVerification.check(rewritten, head: head(rewritten), key: key, anchors: anchors)
                == .broken(atSeq: 6, reason: "does not match the signed checkpoint of this entry (history rewritten)"))
    }

    @Test func aCheckpointVerifiesOnlyUnchangedAndUnderItsWorkspacesKey() throws {
        let signer = AuditCheckpointSigner(workspaceKey: workspaceKey, workspace: workspace)
        let checkpoint = try signer.checkpoint(seq: 9, head: [UInt8](repeating: 0xAB, count: 32))
        // Deterministic from the workspace key: every node derives the same public key.
        #expect(AuditCheckpointSigner(workspaceKey: workspaceKey, workspace: workspace).publicKey == signer.publicKey)
        #expect(AuditCheckpointSigner(workspaceKey: workspaceKey, workspace: WorkspaceID(trusted: "other")).publicKey != signer.publicKey)
        var moved = checkpoint
        moved.seq = 8
        #expect(!moved.verifies(publicKey: signer.publicKey))
        var renamed = checkpoint
        renamed.workspaceID = "other"
        #expect(!renamed.verifies(publicKey: signer.publicKey))
        let stranger = AuditCheckpointSigner(workspaceKey: SymmetricKey(size: .bits256), workspace: workspace)
        #expect(!checkpoint.verifies(publicKey: stranger.publicKey))
        #expect(!checkpoint.verifies(publicKey: "not base64"))
        // It survives the trip through JSON with ISO 8601 dates, as the events carry it.
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let decoded = try decoder.decode(AuditCheckpoint.self, from: encoder.encode(checkpoint))
        #expect(decoded == checkpoint && decoded.verifies(publicKey: signer.publicKey))
    }

    @Test func hexRoundTrips() {
        let bytes: [UInt8] = [0, 1, 0x7F, 0x80, 0xFF]
        #expect([UInt8](hexEncoded: bytes.hexEncoded) == bytes)
        #expect([UInt8](hexEncoded: "0A0b") == [0x0A, 0x0B])
        #expect([UInt8](hexEncoded: "abc") == nil && [UInt8](hexEncoded: "zz") == nil)
    }
}
