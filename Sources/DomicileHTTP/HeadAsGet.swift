import Hummingbird

/// `HEAD` on any `GET` route (RFC 9110 §9.3.2): the request runs as the `GET` it stands for,
/// with the same authentication, checks and audit, and the answer keeps its status and headers,
/// `Content-Length` included, without the body. Hummingbird's router matches the method with the
/// path, so this wraps the whole router rather than sitting among its middleware.
public struct HeadAsGet<Base: HTTPResponderBuilder>: HTTPResponderBuilder where Base.Responder.Context: RequestContext {
    public let base: Base

    public init(_ base: Base) { self.base = base }

    public func buildResponder() -> Responder { Responder(base: base.buildResponder()) }

    public struct Responder: HTTPResponder {
        public typealias Context = Base.Responder.Context
        let base: Base.Responder

        @concurrent public func respond(to request: Request, context: Context) async throws -> Response {
            guard request.method == .head else { return try await base.respond(to: request, context: context) }
            var head = request.head
            head.method = .get
            return try await base.respond(to: Request(head: head, body: request.body), context: context).createHeadResponse()
        }
    }
}
