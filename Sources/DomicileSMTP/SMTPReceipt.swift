/// The server's acceptance of a message: from here on delivery is the server's job, and what
/// becomes of it arrives later as a bounce or a provider callback.
public struct SMTPReceipt: Sendable, Hashable, CustomStringConvertible {
    /// The `Message-ID` header the message was sent with.
    public let messageID: String
    /// How many recipients the server accepted (all of them: a refused recipient fails the send).
    public let recipientCount: Int
    /// The reply to the end of data, normally 250.
    public let replyCode: Int
    public let enhancedStatus: EnhancedStatusCode?
    /// The server's text, which usually carries its queue id (`OK: queued as 4Fq2…`) for
    /// matching bounces. Not in `description`: a few servers echo an address here, so treat it as
    /// possibly personal data.
    public let serverReply: String

    public var description: String {
        "SMTPReceipt(\(messageID), \(recipientCount) recipient(s), \(replyCode)\(enhancedStatus.map { " \($0)" } ?? ""))"
    }
}
