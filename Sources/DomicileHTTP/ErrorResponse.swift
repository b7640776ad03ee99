import DomicileCore
import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1

/// The one place where errors become HTTP answers.
///
/// Every refusal has the engagement platforms' shape,
/// `{"status":"fail","error":{"type","attribute","message","request_id"}}`, and nothing in it
/// comes from the request: messages are Domicile's own words.
enum ErrorResponse {
    struct Body: Encodable {
        struct Detail: Encodable {
            var type: String
            var attribute: String?
            var message: String
            var index: Int?
            var requestID: String?
            /// A workspace homed in another region: that region, and where to send its requests.
            var homeRegion: String?
            var endpoint: String?

            enum CodingKeys: String, CodingKey {
                case type, attribute, message, index, requestID = "request_id", homeRegion = "home_region", endpoint
            }
        }
        var status = "fail"
        var error: Detail
        var errors: [Detail]?
    }

    static func status(for kind: Failure.Kind) -> HTTPResponse.Status {
        switch kind {
        case .missingAttribute, .attribute, .invalidCustomerID, .tooManyAttributes, .malformedJSON: .badRequest
        case .unsupportedMediaType: .unsupportedMediaType
        case .payloadTooLarge: .contentTooLarge
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .workspaceMismatch, .conflict: .conflict
        case .notFound: .notFound
        case .rateLimited: .tooManyRequests
        case .notServedHere: .misdirectedRequest
        case .unavailable: .serviceUnavailable
        case .methodNotAllowed: .methodNotAllowed
        case .internal: .internalServerError
        }
    }

    /// Seconds a client is asked to wait after a 503: the condition (a full disk) ends when an
    /// operator frees space, so a client that retries at once only adds load.
    static let retryAfterUnavailable = 30

    static func detail(_ failure: Failure, requestID: String?) -> Body.Detail {
        Body.Detail(type: failure.kind.rawValue, attribute: failure.attribute, message: failure.message,
                    index: failure.element, requestID: requestID)
    }

    /// An answer for one failure, or for a list of them (a bulk request whose every element was refused).
    static func response(_ failure: Failure, all: [Failure]? = nil, requestID: String,
                         status: HTTPResponse.Status? = nil, headers: HTTPFields = [:]) -> Response {
        let body = Body(error: detail(failure, requestID: requestID),
                        errors: all.map { $0.map { detail($0, requestID: nil) } })
        var fields = headers
        if failure.kind == .unauthorized { fields[.wwwAuthenticate] = "Basic realm=\"domicile\"" }
        if failure.kind == .unavailable && fields[.retryAfter] == nil { fields[.retryAfter] = "\(retryAfterUnavailable)" }
        return JSONResponse.make(body, status: status ?? self.status(for: failure.kind), headers: fields)
    }

    /// The answer to anything a handler or middleware threw. An internal error is logged here,
    /// with the request id the answer carries (its type only: an error's text may hold a value).
    ///
    /// A request that breaks HTTP/1.1 framing (a malformed chunked body) is not answered here:
    /// its error is rethrown, and Hummingbird answers `400` and closes the connection, since
    /// nothing after it on the connection can be framed. An answer of ours would be followed by
    /// Hummingbird's own when it drains the rest of the body.
    static func response(for error: any Error, context: DomicileRequestContext) throws -> Response {
        if error is HTTPParserError { throw error }
        if let elsewhere = error as? ServedElsewhere {
            var detail = detail(Failure(.notServedHere, attribute: "workspace_id", elsewhere.message), requestID: context.requestID)
            detail.homeRegion = elsewhere.region
            detail.endpoint = elsewhere.endpoint
            return JSONResponse.make(Body(error: detail), status: .misdirectedRequest)
        }
        if let error = error as? KeyError, let failure = Self.kmsFailure(error) {
            // The KMS comes back by itself: a client may retry soon.
            return response(failure, requestID: context.requestID, headers: [.retryAfter: "5"])
        }
        let failure = failure(for: error)
        if failure.kind == .internal {
            context.logger.error("request failed", metadata: ["error.type": "\(type(of: error))"])
        }
        return response(failure, requestID: context.requestID)
    }

    static func kmsFailure(_ error: KeyError) -> Failure? {
        switch error {
        case .kmsUnavailable: Failure(.unavailable, "the key service (KMS) cannot be reached; nothing was written; retry later")
        case .kmsRefused: Failure(.unavailable, "the key service (KMS) refused to open this workspace's key; nothing was written")
        default: nil
        }
    }

    /// Turns anything thrown by a handler into a failure that is safe to show.
    static func failure(for error: any Error) -> Failure {
        switch error {
        case let failure as Failure:
            return failure
        case is NIOTooManyBytesError:
            // Bodies are collected through JSONBody.collect, which states the route's limit;
            // this is for a collection that bypassed it, whose limit is not known here.
            return Failure(.payloadTooLarge, "request body is larger than this route accepts")
        case StoreError.notFound:
            return Failure(.notFound, "not found")
        case StoreError.full:
            // Nothing was written, and the same request succeeds once space is freed.
            return Failure(.unavailable, "the vault's storage is full; retry later")
        case StoreError.unavailable:
            return Failure(.unavailable, "the vault's database cannot be reached; retry later")
        case let error as any HTTPResponseError:
            switch error.status {
            case .notFound: return Failure(.notFound, "no such endpoint")
            case .methodNotAllowed: return Failure(.methodNotAllowed, "method not allowed on this endpoint")
            case .contentTooLarge: return Failure(.payloadTooLarge, "request body is larger than this route accepts")
            case .unauthorized: return Failure(.unauthorized, "credentials are required")
            default:
                if (400..<500).contains(error.status.code) {
                    return Failure(.attribute, error.status.reasonPhrase)
                }
                return Failure(.internal, "internal error; quote the request id when reporting it")
            }
        default:
            return Failure(.internal, "internal error; quote the request id when reporting it")
        }
    }
}

enum JSONResponse {
    static func make(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = Timestamp.encodingStrategy
        // Encoding our own response types cannot fail; an empty object would still be valid JSON.
        let data = (try? encoder.encode(value)) ?? Data("{}".utf8)
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// An answer whose JSON was written with `JSONWriter`.
    static func make(_ json: [UInt8], status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) -> Response {
        var fields = headers
        fields[.contentType] = "application/json; charset=utf-8"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: json)))
    }
}
