/// Comparisons of secrets (key hashes, signatures) whose time does not depend on where the first
/// difference is, so an attacker cannot find a valid value byte by byte.
public enum ConstantTime {
    /// Inlinable so that each caller gets a version specialised for its collection types: the
    /// generic one, called across modules, went through the runtime for every byte.
    @inlinable
    public static func equals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for (x, y) in zip(a, b) { difference |= x ^ y }
        return difference == 0
    }

    @inlinable
    public static func equals(_ a: String, _ b: String) -> Bool { equals(Array(a.utf8), Array(b.utf8)) }
}
