import Crypto
import DomicileCore
import Foundation

/// A data API key as handed to the brand once: `dk_<key id>_<secret>`.
///
/// The secret is 256 random bits, so a single SHA-256 is the right hash to store: there is no
/// low-entropy password to stretch, and checking a request must stay cheap.
public struct DataAPIKey: Sendable, CustomStringConvertible {
    public let keyID: String
    /// The whole key; print it once, never log it.
    public let secret: String

    public static func generate() -> DataAPIKey {
        var generator = SystemRandomNumberGenerator()
        let id = (0..<8).map { _ in UInt8.random(in: 0...255, using: &generator) }.hexEncoded
        let secretBytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let encoded = Data(secretBytes).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
        return DataAPIKey(keyID: id, secret: "dk_\(id)_\(encoded)")
    }

    init(keyID: String, secret: String) {
        self.keyID = keyID
        self.secret = secret
    }

    /// The key id inside a presented secret, if it has the shape of one.
    public static func keyID(in presented: String) -> String? {
        let parts = presented.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "dk", parts[1].count == 16, parts[1].allSatisfy(\.isHexDigit) else { return nil }
        return String(parts[1])
    }

    public static func hash(_ presented: String) -> [UInt8] {
        Array(SHA256.hash(data: Array(presented.utf8)))
    }

    /// Compares in time independent of where the first difference is.
    public static func matches(_ presented: String, hash stored: [UInt8]) -> Bool {
        ConstantTime.equals(hash(presented), stored)
    }

    public var description: String { "dk_\(keyID)_…" }
}
