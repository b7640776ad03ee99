import DomicileCore
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Reads a JSON request body within the data API's limits.
enum JSONBody {
    /// Bodies over 128 KB are refused (the engagement platforms' limit).
    static let maximumSize = 128 * 1024

    /// Decodes a typed body; a missing or mistyped field is a 400 that names the field.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request) async throws -> T {
        let json = try await read(request)
        do {
            return try JSONDecoder().decode(T.self, from: JSONEncoder().encode(json))
        } catch let DecodingError.keyNotFound(key, _) {
            throw Failure(.missingAttribute, attribute: key.stringValue, "\(key.stringValue) is required")
        } catch let DecodingError.typeMismatch(_, context) {
            let field = context.codingPath.last?.stringValue
            throw Failure(.attribute, attribute: field, "\(field ?? "body") has the wrong type")
        } catch let DecodingError.valueNotFound(_, context) {
            let field = context.codingPath.last?.stringValue
            throw Failure(.missingAttribute, attribute: field, "\(field ?? "body") cannot be null")
        } catch {
            throw Failure(.attribute, "request body does not have the expected shape")
        }
    }

    static func read(_ request: Request, maximumSize: Int = maximumSize) async throws -> JSONValue {
        guard let type = request.headers[.contentType]?.lowercased(),
              type.split(separator: ";").first?.trimmingCharacters(in: .whitespaces) == "application/json"
        else {
            throw Failure(.unsupportedMediaType, attribute: "Content-Type", "request body must be JSON, sent as Content-Type: application/json")
        }
        var request = request
        let buffer = try await collect(&request, upTo: maximumSize)
        do {
            return try JSONParser.parse(buffer.readableBytesView)
        } catch {
            // The reason and offset say what is wrong without repeating any of the body.
            throw Failure(.malformedJSON, "request body is not valid JSON: \(error)")
        }
    }

    /// Collects a body of at most `limit` bytes, refusing a larger one by its `Content-Length`
    /// or as it arrives. The body stays readable from `request` afterwards.
    static func collect(_ request: inout Request, upTo limit: Int) async throws -> ByteBuffer {
        if let length = request.headers[.contentLength].flatMap(Int.init), length > limit { throw tooLarge(limit: limit) }
        do {
            return try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            // Not the error's own `maxBytes`: NIO reports what was left of the limit after the
            // first chunk, not the limit.
            throw tooLarge(limit: limit)
        }
    }

    /// The 413 of a route whose bodies may be `limit` bytes at most: it states that route's limit.
    static func tooLarge(limit: Int) -> Failure {
        Failure(.payloadTooLarge, "request body is larger than this route's limit of \(limit / 1024) KB (\(limit) bytes)")
    }
}
