import Crypto
import DomicileCore

/// The blind-index keys a workspace uses at one moment: the active one, which lookups use, and
/// during a rotation of the index the one being built; writes keep the digests of both.
///
/// The key of version N is derived from workspace key version N. A customer's digest of
/// attribute `email` is stored under the entry name `email` for version 1 (as before the index
/// had versions) and `email#N` for later ones: attribute names cannot contain `#`, so the names
/// of two versions never meet, and the stores need no notion of versions.
public struct BlindIndexVersions: Sendable {
    public struct Version: Sendable {
        public let number: UInt32
        public let index: BlindIndex

        /// The name this version's digest of `attribute` is stored under.
        public func entryName(_ attribute: AttributeName) -> AttributeName {
            BlindIndexVersions.entryName(attribute, version: number)
        }

        /// The stored entry (name and digest) of `value` of `attribute`.
        public func entry(_ value: AttributeValue, attribute: AttributeName) -> (name: String, digest: [UInt8]) {
            (entryName(attribute).rawValue, index.digest(value, attribute: attribute))
        }
    }

    public let active: Version
    public let building: Version?

    /// The versions writes keep digests for.
    public var live: [Version] { [active] + (building.map { [$0] } ?? []) }

    static func entryName(_ attribute: AttributeName, version: UInt32) -> AttributeName {
        version == 1 ? attribute : AttributeName(trusted: "\(attribute.rawValue)#\(version)")
    }

    /// The attribute and version a stored entry name belongs to.
    static func parse(entryName: String) -> (attribute: Substring, version: UInt32) {
        guard let separator = entryName.lastIndex(of: "#"), let version = UInt32(entryName[entryName.index(after: separator)...]) else {
            return (entryName[...], 1)
        }
        return (entryName[..<separator], version)
    }

    /// What a lookup of `value` (normalised) of `attribute` asks the store for: the active version's entry.
    public func lookup(_ value: AttributeValue, attribute: AttributeName) -> (entry: AttributeName, digest: [UInt8]) {
        (active.entryName(attribute), active.index.digest(value, attribute: attribute))
    }

    /// Sets `attribute`'s digests of `value` under every live version, and drops those of other
    /// versions (a draining version's digest of an older value would otherwise linger).
    public func set(_ value: AttributeValue, attribute: AttributeName, in entries: inout [String: [UInt8]]) {
        Self.remove(attribute, from: &entries)
        for version in live {
            let (name, digest) = version.entry(value, attribute: attribute)
            entries[name] = digest
        }
    }

    /// Removes `attribute`'s digests under every version, live or not.
    public static func remove(_ attribute: AttributeName, from entries: inout [String: [UInt8]]) {
        guard !entries.isEmpty else { return }
        for name in entries.keys where parse(entryName: name).attribute == attribute.rawValue {
            entries[name] = nil
        }
    }

    /// The versions the blind index needs (active, building or draining): they are not retired.
    static func keying(_ records: [WorkspaceKeyRecord]) -> Set<UInt32> {
        let roles = roles(of: records)
        return Set([roles.active] + [roles.building, roles.draining].compactMap { $0 })
    }

    /// Which versions the records name, from their blind-index states: the active one (the first
    /// version when none is marked) and the one being built.
    static func roles(of records: [WorkspaceKeyRecord]) -> (active: UInt32, building: UInt32?, draining: UInt32?) {
        let first = records.map(\.version).min() ?? 1
        func version(_ role: BlindIndexState.Role) -> UInt32? { records.first { $0.blindIndex?.role == role }?.version }
        return (version(.active) ?? first, version(.building), version(.draining))
    }
}
