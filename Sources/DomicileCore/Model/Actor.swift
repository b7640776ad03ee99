/// An operator's role in a workspace.
public enum Role: String, Sendable, Hashable, Codable, CaseIterable {
    case admin, manager, viewer
}

/// Something a caller may or may not be allowed to do. Checked on the server, per request.
public enum Permission: String, Sendable, Hashable, CaseIterable {
    case ingest
    case readMasked = "read_masked"
    case reveal
    case export
    case erase
    case restrict
    case changeSchema = "change_schema"
    case readAudit = "read_audit"
    /// Set a workspace's providers and their credentials.
    case configure
    /// Send messages to customers and read their PII-free delivery history.
    case send
    /// Take a client-mode workspace's messages and report what became of them (the brand's relay).
    case relay
}

/// Who is acting: what the audit log records and what permissions are checked against.
public enum Actor: Sendable, Hashable {
    /// The brand's backend, with a data API key: the controller of the data.
    case apiKey(id: String)
    /// A person of the brand, logged in to the operator API.
    case `operator`(id: String, role: Role, viewPII: Bool)
    /// The platform's main data center (sends, delivery events).
    case mainDataCenter
    /// The brand's relay of a client-mode workspace, with a relay key.
    case relay(keyID: String)
    /// A job of Domicile's own, such as retention.
    case system(job: String)
    /// The node's command line (`domicile workspace …`): whoever runs it holds the data folder
    /// and the root key. It configures workspaces; it neither ingests, sends nor reveals.
    case commandLine

    public var type: String {
        switch self {
        case .apiKey: "api_key"
        case .operator: "operator"
        case .mainDataCenter: "main_data_center"
        case .relay: "relay"
        case .system, .commandLine: "system"
        }
    }

    public var id: String {
        switch self {
        case .apiKey(let id): id
        case .operator(let id, _, _): id
        case .mainDataCenter: "main-data-center"
        case .relay(let keyID): keyID
        case .system(let job): job
        case .commandLine: "cli"
        }
    }

    /// The permission matrix.
    ///
    /// | | ingest | read masked | reveal | export | erase | restrict | schema | audit | configure | send | relay |
    /// |---|---|---|---|---|---|---|---|---|---|---|---|
    /// | data API key | ✓ | ✓ | | ✓ (clear) | ✓ | ✓ | | | | | |
    /// | admin | | ✓ | with view_pii | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ | | |
    /// | manager | | ✓ | with view_pii | ✓ | | ✓ | | | | | |
    /// | viewer | | ✓ | with view_pii | | | | | | | | |
    /// | main data center | | | | | | | | | | ✓ | |
    /// | relay | | | | | | | | | | | ✓ |
    /// | command line | | ✓ | | ✓ (masked) | ✓ | ✓ | ✓ | ✓ | ✓ | | |
    /// | system job | | | | | ✓ | | | | | | |
    ///
    /// The vault's services check it, each for its own action; adapters (HTTP, CLI) pass the caller on.
    public func may(_ permission: Permission) -> Bool {
        switch self {
        case .apiKey:
            return [.ingest, .readMasked, .export, .erase, .restrict].contains(permission)
        case .operator(_, let role, let viewPII):
            switch permission {
            case .ingest: return false
            case .readMasked: return true
            case .reveal: return viewPII
            case .export, .restrict: return role == .admin || role == .manager
            case .erase, .changeSchema, .readAudit, .configure: return role == .admin
            case .send, .relay: return false
            }
        case .mainDataCenter:
            return permission == .send
        case .relay:
            return permission == .relay
        case .system:
            return permission == .erase
        case .commandLine:
            return ![.ingest, .send, .reveal, .relay].contains(permission)
        }
    }

    /// Whether exports made for this caller hold values in clear. The brand's backend is the
    /// data's controller; an operator needs `view_pii`.
    public var seesClearExports: Bool {
        switch self {
        case .apiKey: true
        case .operator(_, _, let viewPII): viewPII
        case .mainDataCenter, .relay, .system, .commandLine: false
        }
    }

    public func require(_ permission: Permission) throws(Failure) {
        guard may(permission) else {
            throw Failure(.forbidden, "this \(type == "operator" ? "operator's role" : "credential") does not allow \(permission.rawValue)")
        }
    }
}
