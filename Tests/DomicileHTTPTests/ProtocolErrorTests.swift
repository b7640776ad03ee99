import DomicileCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@Suite("Requests the API has no answer for")
struct ProtocolErrorTests {
    @Test(arguments: [
        (HTTPRequest.Method.trace, "/v1/workspaces/acme/customers/c-1", "GET, HEAD"),
        (.put, "/v1/workspaces/acme/customers/c-1", "GET, HEAD"),
        (.delete, "/v1/transition/acme", "POST"),
        (.get, "/v1/operators/login", "POST"),
        (.options, "/health/live", "GET, HEAD"),
        (.patch, "/v1/workspaces/acme/schema/email", "PUT"),
    ])
    func aMethodTheRouteDoesNotHaveIs405WithAllow(method: HTTPRequest.Method, path: String, allow: String) async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(method, path, auth: f.auth)
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers[.allow] == allow)
            #expect(response.error["type"] as? String == "MethodNotAllowedError")
            #expect(response.error["request_id"] as? String == response.headers[HTTPField.Name("X-Request-Id")!])
        }
    }

    @Test func aPathWithMoreMethodsListsThemAll() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.delete, "/v1/callbacks/whatsapp/acme")
            #expect(response.status == .methodNotAllowed)
            #expect(response.headers[.allow] == "GET, HEAD, POST")
        }
    }

    @Test func headAnswersAsGetWithoutTheBody() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            try await client.send(.post, "/v1/customer/acme", auth: f.auth, json: #"{"customer_id":"c-1","attributes":{"plan":"gold"}}"#)
            for path in ["/health/live", "/v1/workspaces/acme/customers/c-1"] {
                let get = try await client.send(.get, path, auth: f.auth)
                let head = try await client.send(.head, path, auth: f.auth)
                #expect(head.status == .ok && get.status == .ok, "\(path)")
                #expect(head.body.readableBytes == 0)
                #expect(head.headers[.contentLength] == get.headers[.contentLength] && get.headers[.contentLength] != nil, "\(path)")
                #expect(head.headers[.contentType] == get.headers[.contentType])
            }
            let refused = try await client.send(.head, "/v1/workspaces/acme/customers/c-1")
            #expect(refused.status == .unauthorized && refused.body.readableBytes == 0)
            let notAllowed = try await client.send(.head, "/v1/transition/acme", auth: f.auth)
            #expect(notAllowed.status == .methodNotAllowed && notAllowed.headers[.allow] == "POST")
        }
    }

    @Test func anUnknownPathIsStill404() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.trace, "/v1/nothing/here", auth: f.auth)
            #expect(response.status == .notFound)
            #expect(response.headers[.allow] == nil)
        }
    }
}
