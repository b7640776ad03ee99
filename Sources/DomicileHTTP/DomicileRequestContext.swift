import DomicileCore
import HTTPTypes
import Hummingbird
import Logging

/// Per-request state: Hummingbird's core context plus the workspace the credentials proved.
public struct DomicileRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the authentication middleware of the data API.
    public var workspace: WorkspaceRecord?

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
    }

    /// The request id Hummingbird assigned; it is in every log line and every error body.
    public var requestID: String { id }

    /// The authenticated workspace; only routes behind the authentication middleware call this.
    func authenticatedWorkspace() throws -> WorkspaceRecord {
        guard let workspace else { throw Failure(.unauthorized, "credentials are required") }
        return workspace
    }
}
