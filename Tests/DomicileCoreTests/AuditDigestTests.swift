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
