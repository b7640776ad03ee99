/// An e-mail address in the form Domicile stores and indexes: trimmed and lower-cased.
///
/// The check is the practical subset of RFC 5321/5322 that mail providers accept: a dot-atom
/// local part (no quoted strings, no comments) of at most 64 octets, a domain of dot-separated
/// LDH labels with an alphabetic top-level label, 254 octets at most in all. Internationalised
/// local parts are refused; internationalised domains must arrive in their `xn--` form.
public struct EmailAddress: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible {
    public let normalized: String

    public init(validating raw: String) throws(Failure) {
        let value = raw.trimmingWhitespace().lowercased()
        let bytes = Array(value.utf8)
        guard !bytes.isEmpty else {
            throw Failure(.attribute, "e-mail address cannot be empty")
        }
        guard bytes.count <= 254 else {
            throw Failure(.attribute, "e-mail address is longer than 254 characters")
        }
        guard let at = bytes.lastIndex(of: UInt8(ascii: "@")), at > 0, at < bytes.count - 1 else {
            throw Failure(.attribute, "e-mail address must have the form local-part@domain")
        }
        let local = bytes[..<at]
        let domain = bytes[(at + 1)...]
        guard local.count <= 64 else {
            throw Failure(.attribute, "e-mail address local part is longer than 64 characters")
        }
        guard Self.isDotAtom(local) else {
            throw Failure(.attribute, "e-mail address local part has characters or dots that are not allowed")
        }
        guard Self.isHostname(domain) else {
            throw Failure(.attribute, "e-mail address domain is not a valid host name with a top-level domain")
        }
        self.normalized = value
    }

    private static let atextSymbols = Set("!#$%&'*+-/=?^_`{|}~".utf8)

    private static func isDotAtom(_ bytes: ArraySlice<UInt8>) -> Bool {
        var previousWasDot = true  // refuses a leading dot
        for byte in bytes {
            if byte == UInt8(ascii: ".") {
                if previousWasDot { return false }
                previousWasDot = true
            } else if byte.isASCIIAlphanumeric || atextSymbols.contains(byte) {
                previousWasDot = false
            } else {
                return false
            }
        }
        return !previousWasDot
    }

    private static func isHostname(_ bytes: ArraySlice<UInt8>) -> Bool {
        let labels = bytes.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard labels.count >= 2 else { return false }
        for label in labels {
            guard (1...63).contains(label.count),
                  label.first != UInt8(ascii: "-"), label.last != UInt8(ascii: "-"),
                  label.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") })
            else { return false }
        }
        let top = labels.last!
        return top.count >= 2 && (top.allSatisfy(\.isASCIILetter) || top.starts(with: "xn--".utf8))
    }

    /// Never the address: its masked form.
    public var description: String { Masking.email(normalized) }
    public var debugDescription: String { description }
}
