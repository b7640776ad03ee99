/// The byte layout of a customer's sealed attributes and blind-index digests in one column:
/// `version(1) count(u16) { nameLength(u8) name valueLength(u32) value }*`, names sorted.
/// Names are schema attribute names (not PII); values are ciphertexts or digests.
public enum SealedMapCodec {
    static let version: UInt8 = 1

    public static func encode(_ map: [String: [UInt8]]) -> [UInt8] {
        var out: [UInt8] = [version]
        out.reserveCapacity(3 + map.reduce(0) { $0 + 5 + $1.key.utf8.count + $1.value.count })
        appendBigEndian(UInt16(map.count), to: &out)
        for (name, value) in map.sorted(by: { $0.key < $1.key }) {
            out.append(UInt8(name.utf8.count))
            out.append(contentsOf: name.utf8)
            appendBigEndian(UInt32(value.count), to: &out)
            out.append(contentsOf: value)
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws -> [String: [UInt8]] {
        var cursor = 0
        func take(_ count: Int) throws -> ArraySlice<UInt8> {
            guard count >= 0, bytes.count - cursor >= count else { throw StoreError.corrupt("truncated sealed map") }
            defer { cursor += count }
            return bytes[cursor..<cursor + count]
        }
        func integer(_ width: Int) throws -> Int {
            try take(width).reduce(0) { $0 << 8 | Int($1) }
        }
        guard try take(1).first == version else { throw StoreError.corrupt("unknown sealed map version") }
        let count = try integer(2)
        var map: [String: [UInt8]] = [:]
        map.reserveCapacity(count)
        for _ in 0..<count {
            let name = String(decoding: try take(try integer(1)), as: UTF8.self)
            map[name] = Array(try take(try integer(4)))
        }
        guard cursor == bytes.count else { throw StoreError.corrupt("trailing bytes in sealed map") }
        return map
    }

    private static func appendBigEndian<T: FixedWidthInteger>(_ value: T, to out: inout [UInt8]) {
        withUnsafeBytes(of: value.bigEndian) { out.append(contentsOf: $0) }
    }
}
