import DomicileCore
import HTTPTypes
import Hummingbird
import Logging
import NIOCore

/// Per-request state: Hummingbird's core context plus the workspace the credentials proved.
public struct DomicileRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// Set by the authentication middleware of the data API.
    public var workspace: WorkspaceRecord?
    /// Who is calling: the data API key or the logged-in operator.
    public var actor: Actor?
    /// The client's IP address, for per-address limits (operator logins); nil when unknown.
    public let clientAddress: String?
    /// The connection, for the client certificate presented on it.
    let channel: any NIOCore.Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        clientAddress = source.channel.remoteAddress?.ipAddress
        channel = source.channel
    }

    /// The request id Hummingbird assigned; it is in every log line and every error body.
    public var requestID: String { id }

    /// The authenticated caller and its workspace. What it may do is checked by the vault's
    /// service for each action, never here.
    func caller() throws -> (WorkspaceRecord, Actor) {
        guard let workspace, let actor else { throw Failure(.unauthorized, "credentials are required") }
        return (workspace, actor)
    }
}
