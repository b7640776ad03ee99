import Foundation
import Testing
@testable import DomicileCore

@Suite("Timestamps")
struct TimestampTests {
    @Test("formats as RFC 3339 UTC, like ISO8601DateFormatter", arguments: [0.0, 951_782_400, 1_764_105_613.9, 4_102_444_799])
    func matchesFoundation(_ seconds: Double) {
        let date = Date(timeIntervalSince1970: seconds)
        #expect(Timestamp.format(date) == ISO8601DateFormatter().string(from: date))
    }
}
