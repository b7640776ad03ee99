import DomicileCore
@testable import DomicileOutbound
import Foundation
import Testing

@Suite("Claim renewal")
struct ClaimRenewalTests {
    /// A renewal extends a claim the node still held when it ran, and not one whose lease had
    /// already run out (another node may have claimed that message since).
    @Test func aRenewalExtendsOnlyTheClaimsThatStillHeld() async throws {
        let fixture = try await SendFixture.make()
        let dispatcher = fixture.dispatcher()
        let now = Date()
        func claimed(until: Date) -> OutboxMessage {
            OutboxMessage(workspaceID: fixture.workspace, messageID: "m", customerID: CustomerID(trusted: "c-1"), campaignID: nil,
                          channel: .sms, status: .sending, nextAttemptAt: until, createdAt: now, updatedAt: now, sealedPayload: nil)
        }
        let held = claimed(until: now.addingTimeInterval(30))
        let lapsed = claimed(until: now.addingTimeInterval(-1))
        #expect(await dispatcher.leaseEnd(of: held) == held.nextAttemptAt, "no renewal has run yet")
        await dispatcher.renewClaims()
        #expect(await dispatcher.leaseEnd(of: held) > now.addingTimeInterval(100), "the default lease is 120 s from the renewal")
        #expect(await dispatcher.leaseEnd(of: lapsed) == lapsed.nextAttemptAt)
    }
}
