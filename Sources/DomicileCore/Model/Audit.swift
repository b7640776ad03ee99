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

/// A chained entry: `hash = SHA-256(previous hash | seq | the entry's fields)`, per workspace.
public struct AuditEntry: Sendable, Hashable {
    public var workspaceID: WorkspaceID
    public var seq: Int64
    public var draft: AuditDraft
    public var previousHash: [UInt8]
    public var hash: [UInt8]

    public init(workspaceID: WorkspaceID, seq: Int64, draft: AuditDraft, previousHash: [UInt8], hash: [UInt8]) {
        self.workspaceID = workspaceID
        self.seq = seq
        self.draft = draft
        self.previousHash = previousHash
        self.hash = hash
    }

    /// The hash of the chain before its first entry.
    public static let genesis = [UInt8](repeating: 0, count: 32)

    /// Links a draft after the entry whose hash is `previous`.
    public static func link(_ draft: AuditDraft, workspace: WorkspaceID, seq: Int64, previous: [UInt8]) -> AuditEntry {
        AuditEntry(workspaceID: workspace, seq: seq, draft: draft, previousHash: previous,
                   hash: digest(draft, workspace: workspace, seq: seq, previous: previous))
    }

    static func digest(_ draft: AuditDraft, workspace: WorkspaceID, seq: Int64, previous: [UInt8]) -> [UInt8] {
        // Each field is `length(u32, big endian) bytes`; an optional text is `0` when absent and
        // `1 utf8` when present. The fields are framed into one buffer and hashed at once (an
        // `update` per field cost more than the hashing), without a buffer per field.
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
        return Array(SHA256.hash(data: framed))
    }

    /// Whether this entry's hash matches its content and the given previous hash.
    public func verifies(after previous: [UInt8]) -> Bool {
        previousHash == previous && hash == Self.digest(draft, workspace: workspaceID, seq: seq, previous: previous)
    }
}

/// The outcome of checking a workspace's chain.
public enum AuditVerification: Sendable, Hashable, CustomStringConvertible {
    case intact(entries: Int)
    /// The first entry whose link does not hold: it was altered, or one before it was removed.
    case broken(atSeq: Int64, reason: String)

    public var description: String {
        switch self {
        case .intact(let entries): "intact: \(entries) entries"
        case .broken(let seq, let reason): "broken at entry \(seq): \(reason)"
        }
    }

    /// Walks entries in `seq` order from the genesis; `head` is the last (seq, hash) the store recorded.
    public static func check(_ entries: [AuditEntry], head: (seq: Int64, hash: [UInt8])?) -> AuditVerification {
        var previous = AuditEntry.genesis
        var expectedSeq: Int64 = 1
        for entry in entries {
            if entry.seq != expectedSeq {
                return .broken(atSeq: expectedSeq, reason: "entry \(expectedSeq) is missing")
            }
            if entry.previousHash != previous {
                return .broken(atSeq: entry.seq, reason: "does not link to the entry before it")
            }
            if !entry.verifies(after: previous) {
                return .broken(atSeq: entry.seq, reason: "its content does not match its hash (altered)")
            }
            previous = entry.hash
            expectedSeq += 1
        }
        let last = expectedSeq - 1
        if let head {
            if head.seq > last { return .broken(atSeq: last + 1, reason: "entries \(last + 1)…\(head.seq) were removed from the end") }
            if head.seq != last || head.hash != previous { return .broken(atSeq: last, reason: "the chain's recorded head does not match") }
        } else if last > 0 {
            return .broken(atSeq: 1, reason: "the chain's recorded head is missing")
        }
        return .intact(entries: entries.count)
    }
}
