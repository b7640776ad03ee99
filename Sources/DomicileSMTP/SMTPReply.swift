import NIOCore

/// One SMTP reply (RFC 5321 §4.2): a three-digit code and one or more lines of text.
struct SMTPReply: Sendable, Hashable {
    let code: Int
    /// The text of each line, after the code and its separator.
    let lines: [String]

    var text: String { lines.joined(separator: "\n") }
    var isPositiveCompletion: Bool { (200..<300).contains(code) }
    var isPositiveIntermediate: Bool { (300..<400).contains(code) }

    /// Read from the first line when it starts with a status code of the reply's own class
    /// (RFC 2034 §4), whether or not the server advertised ENHANCEDSTATUSCODES.
    var enhancedStatus: EnhancedStatusCode? {
        guard let first = lines.first, let status = EnhancedStatusCode(prefixOf: Substring(first)),
              status.statusClass == code / 100
        else { return nil }
        return status
    }
}

/// Assembles replies from lines; kept apart from NIO so it can be tested on its own.
struct SMTPReplyParser {
    /// Longer than RFC 5321's 512 octets, since real servers exceed it; bounded all the same.
    static let maximumLineLength = 4096
    static let maximumLines = 128

    enum Malformed: Error, Sendable {
        case lineTooLong, tooManyLines, notAReplyLine, codeChangedWithinReply
    }

    private var code: Int?
    private var lines: [String] = []

    /// Takes one line without its CRLF; returns the reply once its last line has arrived.
    mutating func feed(line bytes: some Collection<UInt8>) throws(Malformed) -> SMTPReply? {
        guard bytes.count <= Self.maximumLineLength else { throw .lineTooLong }
        let digits = bytes.prefix(3)
        guard digits.count == 3, digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
              let first = digits.first, (UInt8(ascii: "2")...UInt8(ascii: "5")).contains(first)
        else { throw .notAReplyLine }
        let lineCode = digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
        let rest = bytes.dropFirst(3)
        let isLast: Bool
        switch rest.first {
        case nil, UInt8(ascii: " "): isLast = true
        case UInt8(ascii: "-"): isLast = false
        default: throw .notAReplyLine
        }
        if let code, code != lineCode { throw .codeChangedWithinReply }
        code = lineCode
        lines.append(String(decoding: rest.dropFirst(), as: UTF8.self))
        guard lines.count <= Self.maximumLines else { throw .tooManyLines }
        guard isLast else { return nil }
        let reply = SMTPReply(code: lineCode, lines: lines)
        code = nil
        lines = []
        return reply
    }
}

/// Splits the byte stream into lines (CRLF, or a bare LF from a sloppy server) and replies.
struct SMTPReplyDecoder: ByteToMessageDecoder {
    typealias InboundOut = SMTPReply

    private var parser = SMTPReplyParser()

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        let view = buffer.readableBytesView
        guard let newline = view.firstIndex(of: UInt8(ascii: "\n")) else {
            if view.count > SMTPReplyParser.maximumLineLength + 2 { throw SMTPReplyParser.Malformed.lineTooLong }
            return .needMoreData
        }
        let length = newline - view.startIndex + 1
        var line = buffer.readSlice(length: length)!.readableBytesView.dropLast()
        if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
        if let reply = try parser.feed(line: line) {
            context.fireChannelRead(wrapInboundOut(reply))
        }
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        // A partial line at EOF is dropped: the connection is gone either way.
        return .needMoreData
    }
}

/// What a server advertised in its EHLO reply (RFC 5321 §4.1.1.1 and the extensions' RFCs).
public struct SMTPCapabilities: Sendable, Hashable {
    public var startTLS = false
    public var pipelining = false
    public var enhancedStatusCodes = false
    public var eightBitMIME = false
    /// Upper-cased SASL mechanism names (`PLAIN`, `LOGIN`, …).
    public var authenticationMechanisms: Set<String> = []
    /// The SIZE limit in octets; nil when SIZE is not advertised or advertises no limit.
    public var maximumMessageSize: Int?
    /// Whether SIZE was advertised at all (so `MAIL FROM` may carry a `SIZE=` parameter).
    public var size = false

    public init() {}

    init(ehlo reply: SMTPReply) {
        // The first line is the server's name and greeting, the rest are keywords with parameters.
        for line in reply.lines.dropFirst() {
            let words = line.split(whereSeparator: { $0 == " " || $0 == "=" }).map { $0.uppercased() }
            guard let keyword = words.first else { continue }
            let parameters = words.dropFirst()
            switch keyword {
            case "STARTTLS": startTLS = true
            case "PIPELINING": pipelining = true
            case "ENHANCEDSTATUSCODES": enhancedStatusCodes = true
            case "8BITMIME": eightBitMIME = true
            case "AUTH": authenticationMechanisms.formUnion(parameters)
            case "SIZE":
                size = true
                if let limit = parameters.first.flatMap({ Int($0) }), limit > 0 { maximumMessageSize = limit }
            default: break
            }
        }
    }
}
