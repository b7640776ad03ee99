import DomicileCore

/// Any text (invalid UTF-8 repaired): an address accepted is at most 254 bytes of lower-case
/// visible ASCII with exactly one '@', re-validates to itself, and is described masked: the
/// local part's first character and `***`, every domain label but the top-level one cut to its
/// first character and stars of the same length.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzEmail(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let text = String(decoding: UnsafeRawBufferPointer(start: start, count: count), as: UTF8.self)
    guard let address = try? EmailAddress(validating: text) else { return 0 }
    let normalized = address.normalized
    let bytes = Array(normalized.utf8)
    precondition(bytes.count <= 254, "longer than 254 bytes")
    precondition(bytes.allSatisfy { $0 > 0x20 && $0 < 0x7F }, "a byte that is not visible ASCII")
    precondition(!bytes.contains { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) }, "not lower-cased")
    precondition(bytes.count { $0 == UInt8(ascii: "@") } == 1, "not exactly one '@'")
    let at = bytes.firstIndex(of: UInt8(ascii: "@"))!
    precondition(at > 0 && at <= 64, "local part empty or longer than 64 bytes")

    let again: EmailAddress
    do {
        again = try EmailAddress(validating: normalized)
    } catch {
        preconditionFailure("an accepted address does not re-validate: \(error)")
    }
    precondition(again == address, "re-validating changed the address")

    let labels = bytes[(at + 1)...].split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
    let maskedLabels = labels.dropLast().map { [$0.first!] + Array(repeating: UInt8(ascii: "*"), count: $0.count - 1) }
    let expected = [bytes[0]] + Array("***@".utf8) + (maskedLabels + [Array(labels.last!)]).joined(separator: [UInt8(ascii: ".")])
    precondition(Array(address.description.utf8) == expected, "the description is not the masked address")
    return 0
}
