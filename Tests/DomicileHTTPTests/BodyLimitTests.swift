import DomicileCore
@testable import DomicileHTTP
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

@Suite("Body limits")
struct BodyLimitTests {
    /// Each route that reads a body, the headers it needs before it reads it, and its limit.
    static let routes: [(uri: String, headers: HTTPFields, limit: Int)] = [
        ("/v1/transition/acme", [.contentType: "application/json"], 128 * 1024),
        ("/v1/workspaces/acme/messages", [.contentType: "application/json", HTTPField.Name("X-Domicile-Key")!: "sk_x",
                                          HTTPField.Name("X-Domicile-Timestamp")!: "0", HTTPField.Name("X-Domicile-Signature")!: "v1=00"],
         4 * 1024 * 1024),
        ("/v1/callbacks/twilio/acme", [.contentType: "application/x-www-form-urlencoded"], 256 * 1024),
    ]

    @Test(arguments: routes)
    func the413StatesTheLimitOfTheRoute(uri: String, headers: HTTPFields, limit: Int) async throws {
        let f = try await APIFixture.make()
        var withAuth = headers
        if uri.hasPrefix("/v1/transition") { withAuth[.authorization] = f.auth }
        let headers = withAuth
        try await f.test { client in
            let under = try await client.execute(uri: uri, method: .post, headers: headers,
                                                 body: ByteBuffer(repeating: UInt8(ascii: "x"), count: limit))
            #expect(under.status != .contentTooLarge)
            let over = try await client.execute(uri: uri, method: .post, headers: headers,
                                                body: ByteBuffer(repeating: UInt8(ascii: "x"), count: limit + 1))
            #expect(over.status == .contentTooLarge)
            #expect(over.error["type"] as? String == "PayloadTooLargeError")
            #expect(over.error["message"] as? String
                == "request body is larger than this route's limit of \(limit / 1024) KB (\(limit) bytes)")
        }
    }

    /// Without a `Content-Length`, the body is measured as it arrives, chunk by chunk; the answer
    /// states the limit, not what NIO reports (what was left of it after the first chunk).
    @Test func aBodyWithoutLengthIsMeasuredAsItArrivesAndTheLimitIsStated() async throws {
        var request = Self.streamed(chunks: 5, of: 1_000)
        #expect(request.headers[.contentLength] == nil)
        let failure = await #expect(throws: Failure.self) { _ = try await JSONBody.collect(&request, upTo: 4_096) }
        #expect(failure?.kind == .payloadTooLarge)
        #expect(failure?.message == "request body is larger than this route's limit of 4 KB (4096 bytes)")
        var fits = Self.streamed(chunks: 5, of: 1_000)
        #expect(try await JSONBody.collect(&fits, upTo: 5_000).readableBytes == 5_000)
        // The body stays readable for the handler after the middleware collected it.
        #expect(try await fits.body.collect(upTo: 5_000).readableBytes == 5_000)
    }

    /// A request whose body arrives in chunks, without a `Content-Length`.
    static func streamed(chunks: Int, of size: Int) -> Request {
        let body = AsyncStream<ByteBuffer> { continuation in
            for _ in 0..<chunks { continuation.yield(ByteBuffer(repeating: UInt8(ascii: "x"), count: size)) }
            continuation.finish()
        }
        return Request(head: HTTPRequest(method: .post, scheme: "http", authority: "localhost", path: "/"),
                       body: RequestBody(asyncSequence: body))
    }
}
