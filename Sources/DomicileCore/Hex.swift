extension Sequence where Element == UInt8 {
    /// Lower-case hexadecimal, two digits a byte (signatures, key ids, audit hashes, identifiers).
    public var hexEncoded: String {
        var text: [UInt8] = []
        text.reserveCapacity(underestimatedCount * 2)
        for byte in self {
            text.append(hexDigits[Int(byte >> 4)])
            text.append(hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

private let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)
