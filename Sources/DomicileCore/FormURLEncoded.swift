import Foundation

/// The fields of an `application/x-www-form-urlencoded` body, as Twilio posts its status callbacks.
///
/// Kept here rather than in the HTTP adapter so that it can be fuzzed without a server around it.
public enum FormURLEncoded {
    /// The `name=value` pairs in the order sent, repeated names included: Twilio's signature
    /// covers every pair. `+` is a space and `%XX` a byte; a part whose percent escapes do not
    /// decode to UTF-8 is kept as sent. Empty pairs (`a=1&&b=2`) are skipped, and a pair
    /// without `=` has an empty value.
    public static func fields(_ body: [UInt8]) -> [(String, String)] {
        String(decoding: body, as: UTF8.self).split(separator: "&").map { pair in
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ text: Substring) -> String { text.replacingOccurrences(of: "+", with: " ").removingPercentEncoding ?? String(text) }
            return (decode(parts[0]), parts.count > 1 ? decode(parts[1]) : "")
        }
    }
}
