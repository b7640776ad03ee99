import DomicileCore
import Foundation
import HTTPTypes
import HummingbirdTesting
import Testing
import Yams

@Suite("Data API over HTTP")
struct DataAPITests {
    @Test func bulkIngestStoresAndReadsBackMasked() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: transition(
                customerJSON("c-1", #"{"email":"John@Example.com","mobile":"+971501234567","first_name":"John","plan":"gold"}"#),
                customerJSON("c-2", #"{"email":"jane@example.com"}"#)))
            #expect(response.status == .ok)
            #expect(response.json["status"] as? String == "success")
            #expect(response.json["created"] as? Int == 2)
            let requestID = try #require(response.json["request_id"] as? String)
            #expect(response.headers[HTTPField.Name("X-Request-Id")!] == requestID)

            let read = try await client.send(.get, "/v1/workspaces/acme/customers/c-1", auth: f.auth)
            #expect(read.status == .ok)
            let attributes = try #require(read.json["attributes"] as? [String: Any])
            #expect(attributes["email"] as? String == "j***@e******.com")
            #expect(attributes["mobile"] as? String == "+9715*****567")
            #expect(attributes["first_name"] as? String == "J***")
            #expect(attributes["plan"] as? String == "********")
            #expect(!read.text.contains("john@example.com") && !read.text.contains("501234567"))
        }
    }

    @Test func singleCustomerUpsertMergesAndNullRemoves() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            #expect(try await client.send(.post, "/v1/customer/acme", auth: f.auth,
                                          json: #"{"customer_id":"c-1","attributes":{"email":"a@example.com","first_name":"Ann"}}"#).status == .ok)
            let second = try await client.send(.post, "/v1/customer/acme", auth: f.auth,
                                               json: #"{"type":"customer","customer_id":"c-1","attributes":{"first_name":null,"last_name":"Lee"}}"#)
            #expect(second.status == .ok && second.json["updated"] as? Int == 1)
        }
        let attributes = try await f.vault.customerView(CustomerID(trusted: "c-1"), workspace: WorkspaceID(trusted: "acme"), reveal: true)?.attributes
        #expect(attributes == ["email": .string("a@example.com"), "last_name": .string("Lee")])
    }

    @Test func partialBulkIs207AndListsEachRefusedElement() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: transition(
                customerJSON("c-1", #"{"email":"ok@example.com"}"#),
                customerJSON("c-2", #"{"email":"broken-marker-77"}"#),
                #"{"type":"event","customer_id":"c-3"}"#,
                customerJSON("c-4", #"{"mobile":"+2812345678"}"#)))
            #expect(response.status.code == 207)
            #expect(response.json["status"] as? String == "partial")
            #expect(response.json["created"] as? Int == 1)
            let errors = try #require(response.json["errors"] as? [[String: Any]])
            #expect(errors.map { $0["index"] as? Int } == [1, 2, 3])
            #expect(errors.map { $0["attribute"] as? String } == ["email", "type", "mobile"])
            #expect((errors[1]["message"] as? String)?.contains("main data center") == true)
            #expect(!response.text.contains("broken-marker-77") && !response.text.contains("2812345678"))
            #expect(try await client.send(.get, "/v1/workspaces/acme/customers/c-2", auth: f.auth).status == .notFound)
        }
    }

    @Test func bulkWithEveryElementRefusedIs400() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: transition(
                customerJSON("guest", #"{"email":"a@example.com"}"#), customerJSON("c-1", #"{"moe_x":"1"}"#)))
            #expect(response.status == .badRequest)
            #expect(response.json["status"] as? String == "fail")
            #expect((response.json["errors"] as? [[String: Any]])?.count == 2)
            #expect(response.error["request_id"] as? String != nil)
        }
    }

    @Test("malformed requests are refused with 4xx naming the problem", arguments: [
        ("{not json", "JSONParseError", nil as String?, 400),
        (#"["type"]"#, "AttributeError", nil, 400),
        (#"{"elements":[]}"#, "MissingAttributeError", "type", 400),
        (#"{"type":"transition"}"#, "MissingAttributeError", "elements", 400),
        (#"{"type":"transition","elements":{}}"#, "AttributeError", "elements", 400),
        (#"{"type":"transition","elements":[]}"#, "AttributeError", "elements", 400),
        (#"{"type":"Transition","elements":[{}]}"#, "AttributeError", "type", 400),
    ])
    func malformed(_ body: String, _ type: String, _ attribute: String?, _ status: Int) async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: body)
            #expect(response.status.code == status)
            #expect(response.json["status"] as? String == "fail")
            #expect(response.error["type"] as? String == type)
            #expect(response.error["attribute"] as? String == attribute)
            #expect(response.error["request_id"] as? String != nil)
        }
    }

    @Test func emptyElementsHasTheContractsMessage() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: #"{"type":"transition","elements":[]}"#)
            #expect(response.error["message"] as? String == "elements cannot be empty array")
        }
    }

    @Test func notJSONIs415() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let plain = try await client.send(.post, "/v1/customer/acme", auth: f.auth, json: #"{"customer_id":"c-1"}"#, contentType: "text/plain")
            #expect(plain.status == .unsupportedMediaType)
            let none = try await client.send(.post, "/v1/customer/acme", auth: f.auth, json: #"{"customer_id":"c-1"}"#, contentType: nil)
            #expect(none.status == .unsupportedMediaType)
            let withCharset = try await client.send(.post, "/v1/customer/acme", auth: f.auth, json: #"{"customer_id":"c-1"}"#,
                                                    contentType: "Application/JSON; charset=utf-8")
            #expect(withCharset.status == .ok)
        }
    }

    @Test func bodyOver128KBIs413AndWritesNothing() async throws {
        let f = try await APIFixture.make()
        let padding = String(repeating: "x", count: 4000)
        let elements = (0..<40).map { customerJSON("c-\($0)", #"{"notes":"\#(padding)"}"#) }
        let body = #"{"type":"transition","elements":[\#(elements.joined(separator: ","))]}"#
        #expect(body.utf8.count > 128 * 1024)
        try await f.test { client in
            let response = try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: body)
            #expect(response.status == .contentTooLarge)
            #expect(response.error["type"] as? String == "PayloadTooLargeError")
        }
        #expect(try await f.store.customer(CustomerID(trusted: "c-0"), workspace: WorkspaceID(trusted: "acme")) == nil)
    }

    @Test func badCredentialsAre401AndLookAlike() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let body = customerJSON("c-1", #"{"email":"a@example.com"}"#)
            let cases = [
                nil,
                APIFixture.basic("acme", "wrong"),
                APIFixture.basic("acme", f.key.secret + "x"),
                APIFixture.basic("nobody", f.key.secret),
                "Bearer " + f.key.secret,
                "Basic !!!",
            ]
            var messages = Set<String>()
            for auth in cases {
                let response = try await client.send(.post, "/v1/customer/acme", auth: auth, json: body)
                #expect(response.status == .unauthorized)
                #expect(response.headers[.wwwAuthenticate] == #"Basic realm="domicile""#)
                messages.insert(response.error["message"] as? String ?? "")
            }
            #expect(messages.count == 1)
        }
        #expect(try await f.store.customer(CustomerID(trusted: "c-1"), workspace: WorkspaceID(trusted: "acme")) == nil)
    }

    @Test func pathWorkspaceOtherThanTheCredentialsIs409() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.post, "/v1/customer/other", auth: f.auth, json: customerJSON("c-1", "{}"))
            #expect(response.status == .conflict)
            #expect(response.error["type"] as? String == "WorkspaceMismatchError")
            #expect(try await client.send(.get, "/v1/workspaces/other/customers/c-1", auth: f.auth).status == .conflict)
        }
    }

    @Test func suspendedWorkspaceIs403() async throws {
        let f = try await APIFixture.make()
        _ = try await f.vault.updateWorkspace(WorkspaceID(trusted: "acme")) { $0.suspended = true }
        try await f.test { client in
            let response = try await client.send(.post, "/v1/customer/acme", auth: f.auth, json: customerJSON("c-1", "{}"))
            #expect(response.status == .forbidden)
        }
        #expect(try await f.store.customer(CustomerID(trusted: "c-1"), workspace: WorkspaceID(trusted: "acme")) == nil)
    }

    @Test func rateLimitIs429WithHeaders() async throws {
        let f = try await APIFixture.make(rateLimit: 3)
        // A fixed clock, 20 s into a minute: the window cannot roll over between the requests.
        let limiter = RateLimiter(now: { Date(timeIntervalSince1970: 1_800_000_000 - 1_800_000_000.truncatingRemainder(dividingBy: 60) + 20) })
        try await f.test(limiter: limiter) { client in
            for remaining in [2, 1, 0] {
                let ok = try await client.send(.get, "/v1/workspaces/acme/customers/none", auth: f.auth)
                #expect(ok.status == .notFound)
                #expect(ok.headers[HTTPField.Name("X-RateLimit-Limit")!] == "3")
                #expect(ok.headers[HTTPField.Name("X-RateLimit-Remaining")!] == "\(remaining)")
            }
            let limited = try await client.send(.post, "/v1/customer/acme", auth: f.auth, json: customerJSON("c-1", "{}"))
            #expect(limited.status == .tooManyRequests)
            #expect(limited.error["type"] as? String == "RateLimitError")
            let retryAfter = try #require(limited.headers[.retryAfter].flatMap(Int.init))
            #expect(retryAfter == 40)
            #expect(limited.headers[HTTPField.Name("X-RateLimit-Remaining")!] == "0")
            #expect(limited.headers[HTTPField.Name("X-RateLimit-Reset")!] == "\(retryAfter)")
        }
        #expect(try await f.store.customer(CustomerID(trusted: "c-1"), workspace: WorkspaceID(trusted: "acme")) == nil)
    }

    @Test func unknownCustomerIs404WithoutEchoingTheID() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let response = try await client.send(.get, "/v1/workspaces/acme/customers/secret-marker-123", auth: f.auth)
            #expect(response.status == .notFound)
            #expect(!response.text.contains("secret-marker-123"))
            #expect(response.error["type"] as? String == "NotFoundError")
        }
    }

    @Test func percentEncodedCustomerIDsAreReadable() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            #expect(try await client.send(.post, "/v1/customer/acme", auth: f.auth,
                                          json: customerJSON("user 42/x", #"{"first_name":"Zed"}"#)).status == .ok)
            let read = try await client.send(.get, "/v1/workspaces/acme/customers/user%2042%2Fx", auth: f.auth)
            #expect(read.status == .ok)
            #expect(read.json["customer_id"] as? String == "user 42/x")
        }
    }

    @Test func lookupByEmailAndMobile() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: transition(
                customerJSON("c-1", #"{"email":"shared@example.com","mobile":"+971501234567"}"#),
                customerJSON("c-2", #"{"email":"SHARED@example.com"}"#)))
            let byEmail = try await client.send(.get, "/v1/workspaces/acme/customers?email=Shared%40Example.com", auth: f.auth)
            #expect(byEmail.status == .ok)
            let customers = try #require(byEmail.json["customers"] as? [[String: Any]])
            #expect(customers.map { $0["customer_id"] as? String } == ["c-1", "c-2"])
            for uri in ["/v1/workspaces/acme/customers?mobile=%2B971501234567", "/v1/workspaces/acme/customers?mobile=+971501234567"] {
                let byMobile = try await client.send(.get, uri, auth: f.auth)
                #expect((byMobile.json["customers"] as? [[String: Any]])?.count == 1)
            }
            let none = try await client.send(.get, "/v1/workspaces/acme/customers?email=nobody%40example.com", auth: f.auth)
            #expect((none.json["customers"] as? [Any])?.isEmpty == true)
            let bad = try await client.send(.get, "/v1/workspaces/acme/customers?email=marker-not-an-email", auth: f.auth)
            #expect(bad.status == .badRequest && !bad.text.contains("marker-not-an-email"))
            #expect(try await client.send(.get, "/v1/workspaces/acme/customers", auth: f.auth).status == .badRequest)
        }
    }

    @Test func identifyingCustomerIDsNeedTheWorkspaceSetting() async throws {
        let f = try await APIFixture.make()
        let body = customerJSON("jane@example.com", #"{"first_name":"Jane"}"#)
        try await f.test { client in
            let refused = try await client.send(.post, "/v1/customer/acme", auth: f.auth, json: body)
            #expect(refused.status == .badRequest && refused.error["type"] as? String == "CustomerIdError")
            #expect(!refused.text.contains("jane@example.com"))
        }
        _ = try await f.vault.updateWorkspace(WorkspaceID(trusted: "acme")) { $0.allowIdentifyingCustomerIDs = true }
        try await f.test { client in
            let accepted = try await client.send(.post, "/v1/customer/acme", auth: f.auth, json: body)
            #expect(accepted.status == .ok)
        }
    }

    @Test func healthEndpoints() async throws {
        let f = try await APIFixture.make()
        try await f.test { client in
            let live = try await client.send(.get, "/health/live")
            #expect(live.status == .ok && live.json["status"] as? String == "live")
            let ready = try await client.send(.get, "/health/ready")
            #expect(ready.status == .ok && ready.json["status"] as? String == "ready")
            let missing = try await client.send(.get, "/nope")
            #expect(missing.status == .notFound && missing.json["status"] as? String == "fail")
        }
    }

    @Test func theOpenAPIDocumentDescribesExactlyTheRoutes() async throws {
        let f = try await APIFixture.make()
        let router = DomicileAPIRoutes.router(f)
        let registered = Set(router.routes.map { route in
            "\(route.method.rawValue) " + "\(route.path)".split(separator: "/").map { segment in
                segment.hasPrefix(":") ? "{\(segment.dropFirst())}" : String(segment)
            }.reduce("") { $0 + "/" + $1 }
        })
        try await f.test { client in
            let served = try await client.send(.get, "/openapi.yaml")
            #expect(served.status == .ok)
            let document = try #require(try Yams.load(yaml: served.text) as? [String: Any])
            #expect(document["openapi"] as? String == "3.1.0")
            let paths = try #require(document["paths"] as? [String: Any])
            var documented = Set<String>()
            for (path, item) in paths {
                for method in (item as? [String: Any] ?? [:]).keys where ["get", "post", "put", "patch", "delete"].contains(method) {
                    documented.insert("\(method.uppercased()) \(path)")
                }
            }
            #expect(documented == registered)
        }
    }
}

import DomicileHTTP
import Hummingbird

enum DomicileAPIRoutes {
    static func router(_ f: APIFixture) -> Router<DomicileRequestContext> { DomicileAPI.router(vault: f.vault) }
}
