import DomicileCore

/// Any body: `FormURLEncoded.fields` never traps, and the fields it reads, written back with
/// every byte but the unreserved ones percent-encoded, read back as the same fields.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTwilioForm(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let fields = FormURLEncoded.fields(Array(UnsafeRawBufferPointer(start: start, count: count)))
    var body: [UInt8] = []
    for (index, (name, value)) in fields.enumerated() {
        if index > 0 { body.append(UInt8(ascii: "&")) }
        percentEncode(name, into: &body)
        body.append(UInt8(ascii: "="))
        percentEncode(value, into: &body)
    }
    let again = FormURLEncoded.fields(body)
    precondition(again.count == fields.count && zip(again, fields).allSatisfy { $0 == $1 },
                 "fields written back in canonical form read back differently")
    return 0
}

/// RFC 3986's unreserved characters as they are; every other byte as `%XX`.
func percentEncode(_ text: String, into body: inout [UInt8]) {
    let hex = Array("0123456789ABCDEF".utf8)
    for byte in text.utf8 {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
             UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
            body.append(byte)
        default:
            body += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0x0F)]]
        }
    }
}
