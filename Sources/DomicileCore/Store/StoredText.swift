import Foundation

/// Text encodings the stores share, so every backend reads what another wrote the same way.
public enum StoredText {
    /// One entry of a message's history: a JSON object and a line feed. A message's history is
    /// these lines appended in order, by the same statement that changes its status.
    public static func historyLine(_ change: MessageStatusChange) -> String {
        var json = JSONWriter(capacity: 64)
        json.beginObject()
        json.key("at")
        json.integer(change.at.millis)
        json.key("status")
        json.string(change.status.rawValue)
        json.key("error_code")
        if let code = change.errorCode { json.string(code) } else { json.null() }
        json.endObject()
        return String(decoding: json.bytes, as: UTF8.self) + "\n"
    }

    /// Reads what `historyLine` wrote, line by line (a line that cannot be read is skipped).
    public static func history(_ text: String) -> [MessageStatusChange] {
        text.utf8.split(separator: UInt8(ascii: "\n")).compactMap { line in
            guard case .object(let entry)? = try? JSONParser.parse(line),
                  case .integer(let at)? = entry["at"], case .string(let raw)? = entry["status"],
                  let status = MessageStatus(rawValue: raw)
            else { return nil }
            let code: String? = if case .string(let value)? = entry["error_code"] { value } else { nil }
            return MessageStatusChange(status: status, at: Date(millis: at), errorCode: code)
        }
    }

    /// A list of strings as a JSON array.
    public static func list(_ values: [String]) -> String {
        String(decoding: (try? JSONEncoder().encode(values)) ?? Data("[]".utf8), as: UTF8.self)
    }

    /// Reads what `list(_:)` wrote; an unreadable value is an empty list.
    public static func list(_ text: String) -> [String] {
        (try? JSONDecoder().decode([String].self, from: Data(text.utf8))) ?? []
    }
}

extension Date {
    /// Milliseconds since 1970, as the stores keep times.
    public var millis: Int64 { Int64((timeIntervalSince1970 * 1000).rounded()) }
    public init(millis: Int64) { self.init(timeIntervalSince1970: Double(millis) / 1000) }
}
