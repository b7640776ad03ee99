/// Why Domicile refused something, in words that are safe to return to a caller and to log.
///
/// A `Failure` never carries a value taken from a request: `message` is written by Domicile,
/// `attribute` names a schema attribute or a request field (names are not PII), and `element`
/// is the index of the refused element in a bulk request.
public struct Failure: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of refusal this is; mirrors the engagement platforms' error types.
    public enum Kind: String, Sendable, Hashable, Codable {
        case missingAttribute = "MissingAttributeError"
        case attribute = "AttributeError"
        case invalidCustomerID = "CustomerIdError"
        case tooManyAttributes = "AttributeLimitError"
        case malformedJSON = "JSONParseError"
        case unsupportedMediaType = "UnsupportedMediaTypeError"
        case payloadTooLarge = "PayloadTooLargeError"
        case unauthorized = "AuthenticationError"
        case forbidden = "ForbiddenError"
        case workspaceMismatch = "WorkspaceMismatchError"
        case notFound = "NotFoundError"
        case rateLimited = "RateLimitError"
        case conflict = "ConflictError"
        case notServedHere = "RegionError"
        case unavailable = "ServiceUnavailableError"
        case methodNotAllowed = "MethodNotAllowedError"
        case `internal` = "InternalError"
    }

    public var kind: Kind
    public var attribute: String?
    public var message: String
    /// Index of the element in a bulk request, when the failure belongs to one.
    public var element: Int?

    public init(_ kind: Kind, attribute: String? = nil, _ message: String, element: Int? = nil) {
        self.kind = kind
        self.attribute = attribute
        self.message = message
        self.element = element
    }

    public func at(element index: Int) -> Failure {
        var copy = self
        copy.element = index
        return copy
    }

    public var description: String {
        var text = "\(kind.rawValue)"
        if let element { text += " at elements[\(element)]" }
        if let attribute { text += " (\(attribute))" }
        return text + ": " + message
    }
}
