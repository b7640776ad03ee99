import DomicileCore

/// Any bytes: the parser either throws `JSONParser.Error` at an offset inside the text or returns
/// a value that `JSONWriter` writes back to a text that parses to the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = Array(UnsafeRawBufferPointer(start: start, count: count))
    let value: JSONValue
    do {
        value = try JSONParser.parse(bytes)
    } catch {
        precondition((0...bytes.count).contains(error.offset), "error offset \(error.offset) outside a text of \(bytes.count) bytes")
        return 0
    }
    var writer = JSONWriter()
    writer.value(value)
    let reparsed: JSONValue
    do {
        reparsed = try JSONParser.parse(writer.bytes)
    } catch {
        preconditionFailure("the writer's text of a parsed value does not parse: \(error)")
    }
    precondition(reparsed == value, "parse → write → parse changed the value")
    // Keys are written sorted, so the written form is canonical.
    var again = JSONWriter()
    again.value(reparsed)
    precondition(again.bytes == writer.bytes, "writing the same value twice gave different texts")
    return 0
}
