import Foundation
import Synchronization

/// A workspace (one brand's tenancy) identifier: 1–64 characters of `A–Z a–z 0–9 _ -`.
public struct WorkspaceID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public let rawValue: String

    public init(validating raw: String) throws(Failure) {
        guard (1...64).contains(raw.utf8.count),
              raw.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else {
            throw Failure(.attribute, attribute: "workspace_id",
                          "workspace id must be 1 to 64 characters of letters, digits, '_' or '-'")
        }
        self.rawValue = raw
    }

    /// Wraps an id read back from storage, where it was validated on the way in.
    public init(trusted raw: String) { self.rawValue = raw }

    public init(from decoder: any Decoder) throws {
        let raw = try decoder.singleValueContainer().decode(String.self)
        self = try WorkspaceID(validating: raw)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The brand's identifier for one of its customers.
///
/// It is the only key the main data center holds, so it must not itself identify a person:
/// placeholders, e-mail addresses and international phone numbers are refused (a workspace
/// may opt out of the identifying check). Pure digit strings are accepted, because numeric
/// database ids are the common case.
public struct CustomerID: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public static let maximumLength = 255

    /// Values engagement platforms refuse as customer ids: they are what broken integrations send.
    public static let placeholders: Set<String> = [
        "unknown", "guest", "null", "none", "na", "n/a", "0", "1", "2", "-1", "-2", "true", "false",
        "id", "customer_id", "uid", "userid", "user_id", "empty", "undefined", "nil", "nan",
    ]

    static let longestPlaceholder = placeholders.map(\.utf8.count).max()!

    public let rawValue: String

    /// Validates a customer id.
    /// - Parameter allowIdentifying: accept ids that look like an e-mail address or phone number.
    public init(validating raw: String, allowIdentifying: Bool = false) throws(Failure) {
        let field = "customer_id"
        // Printable ASCII (most ids) is checked on bytes: its only white space is ' ', it has no
        // control characters, and it has as many characters as bytes.
        let ascii = raw.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }
        if raw.isEmpty || (ascii ? raw.utf8.allSatisfy { $0 == 0x20 } : raw.allSatisfy(\.isWhitespace)) {
            throw Failure(.missingAttribute, attribute: field, "customer_id cannot be empty")
        }
        if ascii ? raw.utf8.first == 0x20 || raw.utf8.last == 0x20 : raw != raw.trimmingWhitespace() {
            throw Failure(.invalidCustomerID, attribute: field, "customer_id cannot start or end with white space")
        }
        if (ascii ? raw.utf8.count : raw.count) > Self.maximumLength {
            throw Failure(.invalidCustomerID, attribute: field,
                          "customer_id is longer than \(Self.maximumLength) characters")
        }
        if !ascii && raw.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw Failure(.invalidCustomerID, attribute: field, "customer_id cannot contain control characters")
        }
        if (!ascii || raw.utf8.count <= Self.longestPlaceholder) && Self.placeholders.contains(raw.lowercased()) {
            throw Failure(.invalidCustomerID, attribute: field,
                          "customer_id is a placeholder value; send the brand's real customer id")
        }
        if !allowIdentifying {
            // An e-mail address has an ASCII '@' (EmailAddress requires one).
            if raw.utf8.contains(UInt8(ascii: "@")), (try? EmailAddress(validating: raw)) != nil {
                throw Failure(.invalidCustomerID, attribute: field,
                              "customer_id looks like an e-mail address; it travels to the main data center and must not identify a person")
            }
            if raw.hasPrefix("+") || raw.hasPrefix("00"), (try? E164PhoneNumber(validating: raw.hasPrefix("00") ? "+" + raw.dropFirst(2) : raw)) != nil {
                throw Failure(.invalidCustomerID, attribute: field,
                              "customer_id looks like a phone number; it travels to the main data center and must not identify a person")
            }
        }
        self.rawValue = raw
    }

    /// Wraps a value read back from storage, where it was validated on the way in.
    public init(trusted raw: String) { self.rawValue = raw }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// The name of a customer attribute: a letter or `_`, then up to 63 letters, digits or `_`.
public struct AttributeName: Sendable, Hashable, Comparable, Codable, CustomStringConvertible {
    public static let reservedNames: Set<String> = ["id", "_id", "customer_id"]
    public static let reservedPrefix = "moe_"
    static let reservedLengths = Set(reservedNames.map(\.utf8.count))

    public let rawValue: String

    public init(validating raw: String) throws(Failure) {
        let bytes = raw.utf8
        guard let first = bytes.first else {
            throw Failure(.attribute, "attribute names cannot be empty")
        }
        guard bytes.count <= 64,
              first.isASCIILetter || first == UInt8(ascii: "_"),
              bytes.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") })
        else {
            // The name itself is not echoed: a malformed name is often a value sent by mistake.
            throw Failure(.attribute, "attribute names must be 1 to 64 characters: a letter or '_' first, then letters, digits or '_'")
        }
        // ASCII letters, digits and '_' by now: lower-casing cannot change the length, so only
        // names as long as a reserved one, or starting like the prefix, are lower-cased.
        let couldBeReserved = Self.reservedLengths.contains(bytes.count)
            || bytes.prefix(Self.reservedPrefix.utf8.count).elementsEqual(Self.reservedPrefix.utf8) { ($0 >= 0x41 && $0 <= 0x5A ? $0 + 0x20 : $0) == $1 }
        if couldBeReserved, Self.reservedNames.contains(raw.lowercased()) || raw.lowercased().hasPrefix(Self.reservedPrefix) {
            throw Failure(.attribute, attribute: raw,
                          "attribute name is reserved (names starting with 'moe_', and 'id', '_id', 'customer_id')")
        }
        self.rawValue = raw
    }

    /// Wraps a name read back from storage.
    public init(trusted raw: String) { self.rawValue = raw }

    public init(from decoder: any Decoder) throws {
        rawValue = try decoder.singleValueContainer().decode(String.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    public var description: String { rawValue }
    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }
}

extension UInt8 {
    @inlinable var isASCIILetter: Bool { (0x41...0x5A).contains(self) || (0x61...0x7A).contains(self) }
    @inlinable var isASCIIDigit: Bool { (0x30...0x39).contains(self) }
    @inlinable var isASCIIAlphanumeric: Bool { isASCIILetter || isASCIIDigit }
    /// ASCII other than white space and control characters.
    @inlinable var isVisibleASCII: Bool { (0x21...0x7E).contains(self) }
}

extension StringProtocol {
    /// Trims Unicode white space and newlines at both ends, without Foundation.
    public func trimmingWhitespace() -> String {
        // Most values start and end with a visible ASCII character: nothing to trim, and no need
        // to walk grapheme clusters (a `Character`'s white-space property is its first scalar's,
        // and a cluster ending in a visible ASCII byte does not start with white space).
        let visibleEnds = utf8.withContiguousStorageIfAvailable { bytes in
            bytes.first?.isVisibleASCII == true && bytes.last?.isVisibleASCII == true
        }
        if visibleEnds == true { return String(self) }
        guard let start = firstIndex(where: { !$0.isWhitespace }) else { return "" }
        let end = lastIndex(where: { !$0.isWhitespace })!
        return String(self[start...end])
    }
}

/// Identifiers for records Domicile creates (events, subject requests, operators).
public enum RandomIdentifier {
    static let generator = TimeOrderedUUIDs()

    /// A time-ordered UUID (version 7, RFC 9562) in lower case: 48 bits of Unix milliseconds,
    /// then 74 random bits. Time order keeps the primary-key index of a table that receives
    /// thousands of events a second appending at its end; random (version 4) keys dirtied a
    /// random index page per row, and each such page is written whole to the WAL at every commit.
    /// The identifiers one process makes sort in the order it made them (see `TimeOrderedUUIDs`):
    /// events for the main data center are delivered in that order, whichever node wrote them,
    /// without a database sequence.
    public static func uuid(now: Date = Date()) -> String { generator.next(now: now) }
}

/// Version 7 UUIDs that sort in the order they were made: within one millisecond the 12 bits
/// after the time count up from a random start (RFC 9562, method 1), and a clock that steps back
/// by less than a second (threads racing to the lock with their own readings) continues from the
/// last millisecond instead. The random bits come from `SystemRandomNumberGenerator` (getrandom):
/// Foundation's `UUID()` opens and closes `/dev/urandom` for every identifier on Linux.
final class TimeOrderedUUIDs: Sendable {
    /// The millisecond of the last identifier and its counter.
    private let last = Mutex<(millis: UInt64, counter: UInt64)>((0, 0))

    func next(now: Date) -> String {
        var generator = SystemRandomNumberGenerator()
        let reading = UInt64(max(0, (now.timeIntervalSince1970 * 1000).rounded(.down)))
        let (millis, counter): (UInt64, UInt64) = last.withLock { last in
            if reading <= last.millis, last.millis - reading < 1_000, last.counter < 0xFFF {
                last.counter += 1
            } else {
                last = (reading, generator.next() & 0x7FF)
            }
            return last
        }
        let high = (millis << 16) | 0x7000 | counter                                          // version 7, rand_a: the counter
        let low = (generator.next() & ~(UInt64(0xC) << 60)) | (UInt64(0x8) << 60)           // variant 10, rand_b
        let hex = Array((withUnsafeBytes(of: high.bigEndian, Array.init) + withUnsafeBytes(of: low.bigEndian, Array.init)).hexEncoded.utf8)
        let groups = [hex[0..<8], hex[8..<12], hex[12..<16], hex[16..<20], hex[20..<32]]
        return groups.map { String(decoding: $0, as: UTF8.self) }.joined(separator: "-")
    }
}
