// This module compiles DomicileSMTP's SMTPReply.swift and SMTPError.swift itself (the symlinks
// beside this file; Package.swift says why), so the parser's internal API is at hand.

/// A server's byte stream, cut into lines as `SMTPReplyDecoder` cuts it (LF, a CR before it
/// dropped) and fed to one `SMTPReplyParser`, which goes on after a refused line so that every
/// state it can be left in is reached.
///
/// Beyond never trapping: a reply has a code from 200 to 599 and 1 to `maximumLines` lines, an
/// enhanced status code only of its own class; `SMTPCapabilities` reads any reply, and the
/// `description` of the error made from a reply depends on its code and enhanced status
/// code only, never on the server's text.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSMTPReply(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    var parser = SMTPReplyParser()
    for var line in bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        guard let reply = try? parser.feed(line: line) else { continue }
        precondition((200...599).contains(reply.code), "a reply code out of range")
        precondition((1...SMTPReplyParser.maximumLines).contains(reply.lines.count), "a reply with too few or too many lines")
        if let status = reply.enhancedStatus {
            precondition(status.statusClass == reply.code / 100, "an enhanced status code of another class")
        }
        let capabilities = SMTPCapabilities(ehlo: reply)
        if let size = capabilities.maximumMessageSize { precondition(size > 0 && capabilities.size, "a SIZE limit that is not positive") }
        // The same reply with its text reduced to the enhanced status code must describe alike.
        let error = SMTPError(reply: reply, stage: .recipient, recipientIndex: 0)
        let textless = SMTPReply(code: reply.code, lines: [reply.enhancedStatus?.description ?? ""])
        precondition(error.description == SMTPError(reply: textless, stage: .recipient, recipientIndex: 0).description,
                     "the error's description depends on the server's text")
    }
    return 0
}
