extension EmailMessage {
    /// The message as RFC 5322 / MIME text: 7-bit, CRLF line endings, no line over 998 octets
    /// (headers folded at 76), ending in CRLF. Not yet dot-stuffed.
    func rendered(boundary: String = "=_domicile_" + randomHex(byteCount: 12)) -> [UInt8] {
        typealias M = MIMEEncoding
        var out: [UInt8] = []
        out += M.header("Date", [" " + M.date(date)])
        out += M.header("From", M.mailbox(from, after: "From"))
        if let replyTo { out += M.header("Reply-To", M.mailbox(replyTo, after: "Reply-To")) }
        out += M.header("To", M.addressList(to, after: "To"))
        out += M.header("Subject", M.unstructured(subject, after: "Subject"))
        out += M.header("Message-ID", [" " + messageID])
        out += M.header("MIME-Version", [" 1.0"])
        for header in headers {
            out += M.header(header.name, M.unstructured(header.value, after: header.name))
        }
        switch (textBody, htmlBody) {
        case let (text?, html?):
            // Quoted: `=` is a tspecial. Neither quoted-printable (which writes `=` as `=3D`) nor
            // base64 can produce a line starting `--=_`, and the random part covers 7bit text.
            out += M.header("Content-Type", [" multipart/alternative;", " boundary=\"\(boundary)\""])
            out += M.crlf
            for (body, subtype) in [(text, "plain"), (html, "html")] {
                out += Array("--\(boundary)".utf8) + M.crlf
                out += Self.part(body, subtype: subtype)
            }
            out += Array("--\(boundary)--".utf8) + M.crlf
        case let (text?, nil):
            out += Self.part(text, subtype: "plain")
        case let (nil, html?):
            out += Self.part(html, subtype: "html")
        case (nil, nil):
            preconditionFailure("EmailMessage.init requires a body")
        }
        return out
    }

    /// Content-Type and Content-Transfer-Encoding, a blank line and the encoded body.
    private static func part(_ body: String, subtype: String) -> [UInt8] {
        typealias M = MIMEEncoding
        let lines = M.lines(of: body)
        let encoding = M.transferEncoding(for: lines)
        return M.header("Content-Type", [" text/\(subtype);", " charset=utf-8"])
            + M.header("Content-Transfer-Encoding", [" " + encoding.rawValue])
            + M.crlf
            + M.encode(lines, as: encoding)
    }
}
