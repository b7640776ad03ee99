import Crypto
import Foundation

/// What an audit entry records.
public enum AuditAction: String, Sendable, Hashable, Codable, CaseIterable {
    case readMasked = "read_masked"
    case lookup
    case reveal
    case export
    case erase
    case restrict
    case unrestrict
    case schemaChange = "schema_change"
    case keyChange = "key_change"
    case login
    case loginFailed = "login_failed"
    case subjectRequest = "subject_request"
    case retention
    /// A workspace setting that guards data: the egress allowlist.
    case settingsChange = "settings_change"
}

/// An entry before it is chained: what happened, never a PII value.
public struct AuditDraft: Sendable, Hashable {
    public var at: Date
    public var actorType: String
    public var actorID: String
    public var action: AuditAction
    public var customerID: String?
    /// Attribute names involved (names, not values).
    public var attributes: [String]
    /// The stated reason, sealed with the workspace key: free text may hold anything.
    public var sealedReason: [UInt8]?
    public var requestID: String?

    public init(at: Date = Date(), actor: Actor, action: AuditAction, customerID: String? = nil, attributes: [String] = [],
                sealedReason: [UInt8]? = nil, requestID: String? = nil) {
        self.at = at
        self.actorType = actor.type
        self.actorID = actor.id
        self.action = action
        self.customerID = customerID
        self.attributes = attributes
        self.sealedReason = sealedReason
        self.requestID = requestID
    }
}

/// How an entry's link was computed.
public enum AuditChainFormat: Int, Sendable, Hashable {
    /// `SHA-256(previous | fields)`: written before the chain was keyed. Whoever can write the
    /// database can recompute it, so such entries are accepted only before the first keyed one.
    case unkeyed = 0
    /// `HMAC-SHA-256(chain key, previous | fields)`, under a key derived from the workspace key
    /// and never stored: rewriting an entry needs that key.
    case keyed = 1
}

/// A chained entry, per workspace: `hash = MAC(previous hash | seq | the entry's fields)`.
public struct AuditEntry: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    public var seq: Int64
    public var draft: AuditDraft
    public var previousHash: [UInt8]
    public var hash: [UInt8]
    public var format: AuditChainFormat
    /// The reason sealed again with the workspace's secrets key, when the original was sealed
    /// with a workspace key version (see `SecretReseal.auditReason`); outside the chain.
    public var resealedReason: [UInt8]?

    public init(workspaceID: WorkspaceID, seq: Int64, draft: AuditDraft, previousHash: [UInt8], hash: [UInt8],
                format: AuditChainFormat = .keyed, resealedReason: [UInt8]? = nil) {
        self.resealedReason = resealedReason
        self.workspaceID = workspaceID
        self.seq = seq
        self.draft = draft
        self.previousHash = previousHash
        self.hash = hash
        self.format = format
    }

    /// The hash of the chain before its first entry.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    /// Links a draft after the entry whose hash is `previous`, keyed.
    public static func link(_ draft: AuditDraft, workspace: WorkspaceID, seq: Int64, previous: [UInt8], key: AuditChainKey) -> AuditEntry {
        AuditEntry(workspaceID: workspace, seq: seq, draft: draft, previousHash: previous,
                   hash: mac(draft, workspace: workspace, seq: seq, previous: previous, key: key), format: .keyed)
    }

    /// The unkeyed link of entries written before the chain was keyed.
    static func digest(_ draft: AuditDraft, workspace: WorkspaceID, seq: Int64, previous: [UInt8]) -> [UInt8] {
        Array(SHA256.hash(data: framed(draft, workspace: workspace, seq: seq, previous: previous)))
    }

    static func mac(_ draft: AuditDraft, workspace: WorkspaceID, seq: Int64, previous: [UInt8], key: AuditChainKey) -> [UInt8] {
        Array(HMAC<SHA256>.authenticationCode(for: framed(draft, workspace: workspace, seq: seq, previous: previous), using: key.key))
    }

    /// Each field is `length(u32, big endian) bytes`; an optional text is `0` when absent and
    /// `1 utf8` when present. The fields are framed into one buffer and hashed at once (an
    /// `update` per field cost more than the hashing), without a buffer per field.
    static func framed(_ draft: AuditDraft, workspace: WorkspaceID, seq: Int64, previous: [UInt8]) -> [UInt8] {
        var framed: [UInt8] = []
        framed.reserveCapacity(192 + previous.count + workspace.rawValue.utf8.count + (draft.sealedReason?.count ?? 0))
        func length(_ count: Int) {
            withUnsafeBytes(of: UInt32(truncatingIfNeeded: count).bigEndian) { framed.append(contentsOf: $0) }
        }
        func field(_ bytes: [UInt8]) {
            length(bytes.count)
            framed.append(contentsOf: bytes)
        }
        func field(_ text: String?) {
            guard let text else { length(1); framed.append(0); return }
            length(1 + text.utf8.count)
            framed.append(1)
            framed.append(contentsOf: text.utf8)
        }
        field(previous)
        field(workspace.rawValue)
        field(String(seq))
        field(String(Int64((draft.at.timeIntervalSince1970 * 1000).rounded())))
        field(draft.actorType)
        field(draft.actorID)
        field(draft.action.rawValue)
        field(draft.customerID)
        // The attribute names joined by a zero byte.
        length(1 + draft.attributes.reduce(0) { $0 + $1.utf8.count } + max(0, draft.attributes.count - 1))
        framed.append(1)
        for (position, name) in draft.attributes.enumerated() {
            if position > 0 { framed.append(0) }
            framed.append(contentsOf: name.utf8)
        }
        if let reason = draft.sealedReason {
            length(1 + reason.count)
            framed.append(1)
            framed.append(contentsOf: reason)
        } else {
            length(1)
            framed.append(0)
        }
        field(draft.requestID)
        return framed
    }

    /// Whether this entry's hash matches its content and the given previous hash.
    public func verifies(after previous: [UInt8], key: AuditChainKey) -> Bool {
        guard previousHash == previous else { return false }
        let expected = switch format {
        case .keyed: Self.mac(draft, workspace: workspaceID, seq: seq, previous: previous, key: key)
        case .unkeyed: Self.digest(draft, workspace: workspaceID, seq: seq, previous: previous)
        }
        return ConstantTime.equals(expected, hash)
    }
}

/// The outcome of checking a workspace's chain.
public enum AuditVerification: Sendable, Hashable, CustomStringConvertible {
    /// Every link holds. The first `unkeyed` entries were written before the chain was keyed;
    /// `checkpoints` signed checkpoints, held outside the database, matched the chain.
    case intact(entries: Int, unkeyed: Int = 0, checkpoints: Int = 0)
    /// The first entry whose link does not hold: it was altered, or one before it was removed.
    case broken(atSeq: Int64, reason: String)

    public var description: String {
        switch self {
        case .intact(let entries, let unkeyed, let checkpoints):
            "intact: \(entries) entries"
                + (unkeyed > 0 ? ", the first \(unkeyed) unkeyed (written before the chain was keyed)" : "")
                + (checkpoints > 0 ? ", \(checkpoints) signed checkpoints match" : "")
        case .broken(let seq, let reason): "broken at entry \(seq): \(reason)"
        }
    }

    /// Walks entries in `seq` order from the genesis.
    /// - Parameters:
    ///   - head: the last (seq, hash) the store recorded.
    ///   - key: the workspace's chain key, which keyed entries must be linked with.
    ///   - anchors: (seq, hash) pairs from signed checkpoints already checked: the chain must
    ///     reach each of them and hold that hash there.
    public static func check(_ entries: [AuditEntry], head: (seq: Int64, hash: [UInt8])?, key: AuditChainKey,
                             anchors: [(seq: Int64, hash: [UInt8])] = []) -> AuditVerification {
        var anchorAt: [Int64: [UInt8]] = [:]
        for anchor in anchors { anchorAt[anchor.seq] = anchor.hash }
        var previous = AuditEntry.genesis
        var expectedSeq: Int64 = 1
        var unkeyed = 0
        for entry in entries {
            if entry.seq != expectedSeq {
                return .broken(atSeq: expectedSeq, reason: "entry \(expectedSeq) is missing")
            }
            if entry.previousHash != previous {
                return .broken(atSeq: entry.seq, reason: "does not link to the entry before it")
            }
            if entry.format == .unkeyed {
                guard unkeyed == entry.seq - 1 else {
                    return .broken(atSeq: entry.seq, reason: "an unkeyed entry after keyed ones (rewritten without the chain key)")
                }
                unkeyed += 1
            }
            if !entry.verifies(after: previous, key: key) {
                return .broken(atSeq: entry.seq, reason: "its content does not match its hash (altered)")
            }
            if let anchored = anchorAt[entry.seq], anchored != entry.hash {
                return .broken(atSeq: entry.seq, reason: "does not match the signed checkpoint of this entry (history rewritten)")
            }
            previous = entry.hash
            expectedSeq += 1
        }
        let last = expectedSeq - 1
        if let furthest = anchorAt.keys.max(), furthest > last {
            return .broken(atSeq: last + 1, reason: "entries \(last + 1)…\(furthest) were removed: a signed checkpoint names entry \(furthest)")
        }
        if let head {
            if head.seq > last { return .broken(atSeq: last + 1, reason: "entries \(last + 1)…\(head.seq) were removed from the end") }
            if head.seq != last || head.hash != previous { return .broken(atSeq: last, reason: "the chain's recorded head does not match") }
        } else if last > 0 {
            return .broken(atSeq: 1, reason: "the chain's recorded head is missing")
        }
        return .intact(entries: entries.count, unkeyed: unkeyed, checkpoints: anchorAt.count)
    }
}
