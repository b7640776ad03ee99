import DomicileCore
import Foundation
import HTTPTypes
import Hummingbird

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
        if let length = request.headers[.contentLength].flatMap(Int.init), length > maximumSize {
            throw Failure(.payloadTooLarge, "request body is larger than \(maximumSize / 1024) KB")
        }
        let buffer = try await request.body.collect(upTo: maximumSize)
        do {
            return try JSONParser.parse(buffer.readableBytesView)
        } catch {
            // The reason and offset say what is wrong without repeating any of the body.
            throw Failure(.malformedJSON, "request body is not valid JSON: \(error)")
        }
    }
}
