import DomicileCore
import HTTPTypes
import Hummingbird

/// Answers `405 Method Not Allowed`, with `Allow`, for a path that names an endpoint but not
/// with the request's method; Hummingbird's router answers 404 for both.
///
/// Added to the router after every route, so that it wraps only the router's not-found
/// responder: a request that matched a route never reaches it.
struct AllowedMethodsMiddleware: RouterMiddleware {
    typealias Context = DomicileRequestContext

    /// Each route's pattern split into segments (`{name}` matches any one segment), with its methods.
    private let routes: [(segments: [Substring], pattern: String, methods: [String])]

    init(routes: [Router<Context>.RouteDescription]) {
        var methods: [String: Set<String>] = [:]
        for route in routes {
            methods[route.path.description, default: []].insert(route.method.rawValue)
            // HeadMiddleware answers HEAD on every GET route.
            if route.method == .get { methods[route.path.description, default: []].insert("HEAD") }
        }
        self.routes = methods.map { pattern, allowed in
            (pattern.split(separator: "/", omittingEmptySubsequences: true), pattern, allowed.sorted())
        }
    }

    /// The methods of the route whose pattern matches `path`, and that pattern; nil when none does.
    func allowed(path: String) -> (pattern: String, methods: [String])? {
        let segments = path.split(separator: "/", omittingEmptySubsequences: true)
        for route in routes where route.segments.count == segments.count {
            let matches = zip(route.segments, segments).allSatisfy { pattern, segment in
                (pattern.first == "{" && pattern.last == "}") || pattern == segment
            }
            if matches { return (route.pattern, route.methods) }
        }
        return nil
    }

    @concurrent func handle(_ request: Request, context: Context, next: @concurrent (Request, Context) async throws -> Response) async throws -> Response {
        guard let (pattern, methods) = allowed(path: request.uri.path) else {
            return try await next(request, context)
        }
        context.coreContext.endpointPath.value = pattern
        return ErrorResponse.response(
            Failure(.methodNotAllowed, "this endpoint does not take this method; it takes \(methods.joined(separator: ", "))"),
            requestID: context.requestID, headers: [.allow: methods.joined(separator: ", ")])
    }
}
