import DomicileCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing

@Suite("Requests the API has no answer for")
struct ProtocolErrorTests {
    @Test(arguments: [
        (HTTPRequest.Method.trace, "/v1/workspaces/acme/customers/c-1", "GET"),
        (.put, "/v1/workspaces/acme/customers/c-1", "GET"),
        (.delete, "/v1/transition/acme", "POST"),
        (.get, "/v1/operators/login", "POST"),
        (.options, "/health/live", "GET"),
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
            #expect(response.headers[.allow] == "GET, POST")
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
