/// Comparisons of secrets (key hashes, signatures) whose time does not depend on where the first
/// difference is, so an attacker cannot find a valid value byte by byte.
public enum ConstantTime {
    public static func equals(_ a: some Collection<UInt8>, _ b: some Collection<UInt8>) -> Bool {
        a.count == b.count && zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }

    public static func equals(_ a: String, _ b: String) -> Bool { equals(a.utf8, b.utf8) }
}
