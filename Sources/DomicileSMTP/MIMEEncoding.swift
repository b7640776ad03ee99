import Foundation

/// The encodings that make any message 7-bit clean with short lines: RFC 2045 quoted-printable
/// and base64 bodies, RFC 2047 encoded-words in headers, RFC 5322 folding and dates, and
/// RFC 5321 dot-stuffing.
enum MIMEEncoding {
    static let crlf: [UInt8] = [13, 10]
    /// RFC 2047 §2 caps a line that holds encoded-words at 76 characters; every header is folded
    /// to that, below RFC 5322's advised 78.
    static let headerLineLimit = 76
    /// An ASCII word longer than this is sent as encoded-words, which can be split, so that no
    /// line reaches RFC 5322's hard limit of 998 octets.
    static let longestPlainWord = 900

    enum TransferEncoding: String {
        case sevenBit = "7bit"
        case quotedPrintable = "quoted-printable"
        case base64
    }

    // MARK: Bodies

    /// The text's lines without their line breaks, whichever of CRLF, LF or CR it used.
    /// A final line break ends the last line rather than starting an empty one.
    static func lines(of text: String) -> [[UInt8]] {
        var lines: [[UInt8]] = []
        var current: [UInt8] = []
        var previousWasCR = false
        for byte in text.utf8 {
            if byte == 10 && previousWasCR {
                previousWasCR = false
                continue
            }
            previousWasCR = byte == 13
            if byte == 10 || byte == 13 {
                lines.append(current)
                current = []
            } else {
                current.append(byte)
            }
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }

    /// 7bit for short-lined ASCII; otherwise base64 when more than a fifth of the bytes are not
    /// ASCII (where quoted-printable would triple them), quoted-printable when mostly ASCII.
    static func transferEncoding(for lines: [[UInt8]]) -> TransferEncoding {
        var total = 0
        var nonASCII = 0
        var needsEncoding = false
        for line in lines {
            total += line.count + 2
            if line.count > 998 { needsEncoding = true }
            for byte in line {
                if byte >= 0x80 {
                    nonASCII += 1
                    needsEncoding = true
                } else if byte < 0x20 && byte != 9 || byte == 0x7F {
                    needsEncoding = true
                }
            }
        }
        guard needsEncoding else { return .sevenBit }
        return nonASCII * 5 > total ? .base64 : .quotedPrintable
    }

    /// The body encoded, each line ending in CRLF.
    static func encode(_ lines: [[UInt8]], as encoding: TransferEncoding) -> [UInt8] {
        switch encoding {
        case .sevenBit:
            return lines.flatMap { $0 + crlf }
        case .quotedPrintable:
            return quotedPrintable(lines)
        case .base64:
            return base64Lines(Array(lines.joined(separator: crlf)) + crlf)
        }
    }

    /// RFC 2045 §6.7, text mode: line breaks stay CRLF, lines are at most 76 characters with a
    /// soft break (`=`), `=` and everything outside printable ASCII is `=XX`, and so is a space or
    /// tab at the end of a line.
    static func quotedPrintable(_ lines: [[UInt8]]) -> [UInt8] {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for line in lines {
            var physical: [UInt8] = []
            for (index, byte) in line.enumerated() {
                let isLast = index == line.count - 1
                let literal = (33...126).contains(byte) && byte != UInt8(ascii: "=")
                    || (byte == 32 || byte == 9) && !isLast
                let token: [UInt8] = literal ? [byte] : [UInt8(ascii: "="), hex[Int(byte >> 4)], hex[Int(byte & 15)]]
                // 75 characters and the soft break's `=` make 76.
                if physical.count + token.count > 75 {
                    out += physical
                    out += [UInt8(ascii: "=")] + crlf
                    physical = []
                }
                physical += token
            }
            out += physical + crlf
        }
        return out
    }

    /// Base64 in lines of 76 characters, each ending in CRLF.
    static func base64Lines(_ bytes: [UInt8]) -> [UInt8] {
        let encoded = Array(Data(bytes).base64EncodedString().utf8)
        var out: [UInt8] = []
        out.reserveCapacity(encoded.count + encoded.count / 76 * 2 + 2)
        var start = 0
        while start < encoded.count {
            let end = min(start + 76, encoded.count)
            out += encoded[start..<end]
            out += crlf
            start = end
        }
        return out
    }

    // MARK: Headers

    /// RFC 2047 B-encoded words of at most 72 characters, each holding whole Unicode scalars
    /// (§5: a character is never split across two words).
    ///
    /// - Parameter name: the header the words start, so that the first is short enough to share
    ///   the line with `Name: `; nil when they do not start a header.
    static func encodedWords(_ text: String, after name: String? = nil) -> [String] {
        let maximumBytes = 45  // 60 base64 characters; with `=?utf-8?B?` and `?=`, 72 in all
        var limit = name.map(firstWordBytes(after:)) ?? maximumBytes
        var words: [String] = []
        var chunk: [UInt8] = []
        func flush() {
            words.append("=?utf-8?B?" + Data(chunk).base64EncodedString() + "?=")
            chunk = []
            limit = maximumBytes
        }
        for scalar in text.unicodeScalars {
            let bytes = Array(String(scalar).utf8)
            if chunk.count + bytes.count > limit, !chunk.isEmpty { flush() }
            chunk += bytes
        }
        if !chunk.isEmpty || words.isEmpty { flush() }
        return words
    }

    /// How many UTF-8 bytes the first encoded-word may hold so that `Name: =?utf-8?B?…?=` fits in
    /// 76 characters; at least one scalar's worth.
    static func firstWordBytes(after name: String) -> Int {
        max(4, (headerLineLimit - name.utf8.count - 2 - 12) / 4 * 3)
    }

    /// Printable ASCII that a decoder will not mistake for an encoded-word, in words short enough
    /// to fold between.
    static func isPlainHeaderText(_ text: String) -> Bool {
        text.unicodeScalars.allSatisfy { (0x20...0x7E).contains($0.value) || $0 == "\t" }
            && !text.contains("=?")
            && text.split(separator: " ").allSatisfy { $0.utf8.count <= longestPlainWord }
    }

    /// An unstructured value (Subject, an extra header) as segments to fold between; each
    /// segment starts with the space that may become a fold.
    static func unstructured(_ text: String, after name: String) -> [String] {
        guard !text.isEmpty else { return [] }
        if isPlainHeaderText(text) {
            return text.split(separator: " ", omittingEmptySubsequences: false).map { " " + $0 }
        }
        return encodedWords(text, after: name).map { " " + $0 }
    }

    /// RFC 5322 atext, the characters a display name may use without quotes.
    private static let atext: Set<UInt8> = Set("!#$%&'*+-/=?^_`{|}~".utf8)
        .union(UInt8(ascii: "a")...UInt8(ascii: "z")).union(UInt8(ascii: "A")...UInt8(ascii: "Z"))
        .union(UInt8(ascii: "0")...UInt8(ascii: "9"))

    /// A display name as a phrase: atoms when it can be, else a quoted string, else (for
    /// non-ASCII) encoded-words.
    static func phrase(_ name: String, after header: String?) -> [String] {
        let words = name.split(separator: " ")
        if !words.isEmpty, words.allSatisfy({ $0.utf8.allSatisfy(atext.contains) && $0.utf8.count <= longestPlainWord }) {
            return words.map { " " + $0 }
        }
        if isPlainHeaderText(name), name.utf8.count <= longestPlainWord {
            let escaped = name.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            return [" \"" + escaped + "\""]
        }
        return encodedWords(name, after: header).map { " " + $0 }
    }

    /// - Parameter header: the header this mailbox starts, nil when it does not come first.
    static func mailbox(_ mailbox: EmailMessage.Mailbox, after header: String?) -> [String] {
        guard let name = mailbox.displayName else { return [" " + mailbox.address.normalized] }
        return phrase(name, after: header) + [" <" + mailbox.address.normalized + ">"]
    }

    static func addressList(_ mailboxes: [EmailMessage.Mailbox], after header: String) -> [String] {
        var segments: [String] = []
        for (index, mailbox) in mailboxes.enumerated() {
            var parts = self.mailbox(mailbox, after: index == 0 ? header : nil)
            if index < mailboxes.count - 1 { parts[parts.count - 1] += "," }
            segments += parts
        }
        return segments
    }

    /// `Name: value` folded before a segment wherever the line would pass 76 characters;
    /// never before an empty word, so no line is only white space, and never right after the
    /// name (some parsers, Python's among them, would keep the fold's space in the value).
    static func header(_ name: String, _ segments: [String]) -> [UInt8] {
        var out: [UInt8] = []
        var line = name + ":"
        let bare = line
        for segment in segments {
            let length = line.utf8.count + segment.utf8.count
            let canFold = segment.utf8.count > 1 && line != bare
            if length > headerLineLimit && canFold {
                out += Array(line.utf8) + crlf
                line = segment
            } else {
                line += segment
            }
        }
        out += Array(line.utf8) + crlf
        return out
    }

    // MARK: Transport

    /// RFC 5321 §4.5.2: a line that starts with `.` gets another, so the server does not take
    /// it for the end of the data.
    static func dotStuffed(_ bytes: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + bytes.count / 64)
        var atLineStart = true
        for byte in bytes {
            if atLineStart && byte == UInt8(ascii: ".") { out.append(byte) }
            out.append(byte)
            atLineStart = byte == 10
        }
        return out
    }

    /// RFC 5322 §3.3 in UTC: `Tue, 25 Nov 2025 21:35:07 +0000`.
    static func date(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down))
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekdays = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]  // 1970-01-01 was a Thursday
        let weekday = weekdays[((days % 7) + 7) % 7]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ n: Int) -> String { n < 10 ? "0\(n)" : "\(n)" }
        return "\(weekday), \(day) \(months[month - 1]) \(year) "
            + "\(two(secondOfDay / 3600)):\(two(secondOfDay / 60 % 60)):\(two(secondOfDay % 60)) +0000"
    }
}
