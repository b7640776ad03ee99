import DomicileCore

/// The first byte chooses the form: even, an international number (`validating:`); odd, a
/// national one with the next two bytes as the default region. The rest is the number as text
/// (invalid UTF-8 repaired, as a JSON string would never carry it).
///
/// A number accepted in either form is `+` and 7 to 15 ASCII digits that re-validate to the same
/// number, and its description does not show it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzE164(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let mode = bytes.first else { return 0 }
    let number: E164PhoneNumber
    if mode & 1 == 0 {
        guard let parsed = try? E164PhoneNumber(validating: String(decoding: bytes.dropFirst(), as: UTF8.self)) else { return 0 }
        number = parsed
    } else {
        let region = String(decoding: bytes.dropFirst().prefix(2), as: UTF8.self)
        let text = String(decoding: bytes.dropFirst(3), as: UTF8.self)
        guard let parsed = try? E164PhoneNumber(validating: text, defaultRegion: region) else { return 0 }
        number = parsed
    }
    let e164 = Array(number.e164.utf8)
    precondition(e164.first == UInt8(ascii: "+"), "no leading '+'")
    let digits = e164.dropFirst()
    precondition((E164PhoneNumber.minimumDigits...E164PhoneNumber.maximumDigits).contains(digits.count), "digit count out of range")
    precondition(digits.allSatisfy { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }, "a character that is not an ASCII digit")
    precondition(number.e164.dropFirst().hasPrefix(number.countryCallingCode), "the calling code does not start the number")
    let again: E164PhoneNumber
    do {
        again = try E164PhoneNumber(validating: number.e164)
    } catch {
        preconditionFailure("an accepted number does not re-validate: \(error)")
    }
    precondition(again == number, "re-validating changed the number")
    precondition(!number.description.contains(number.e164), "the description shows the number")
    return 0
}
