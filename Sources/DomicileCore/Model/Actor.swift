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
}

/// Who is acting: what the audit log records and what permissions are checked against.
public enum Actor: Sendable, Hashable {
    /// The brand's backend, with a data API key: the controller of the data.
    case apiKey(id: String)
    /// A person of the brand, logged in to the operator API.
    case `operator`(id: String, role: Role, viewPII: Bool)
    /// The platform's main data center (sends, delivery events).
    case mainDataCenter
    /// A job of Domicile's own, such as retention.
    case system(job: String)

    public var type: String {
        switch self {
        case .apiKey: "api_key"
        case .operator: "operator"
        case .mainDataCenter: "main_data_center"
        case .system: "system"
        }
    }

    public var id: String {
        switch self {
        case .apiKey(let id): id
        case .operator(let id, _, _): id
        case .mainDataCenter: "main-data-center"
        case .system(let job): job
        }
    }

    /// The permission matrix.
    ///
    /// | | ingest | read masked | reveal | export | erase | restrict | schema | audit | configure |
    /// |---|---|---|---|---|---|---|---|---|---|
    /// | data API key | ✓ | ✓ | | ✓ (clear) | ✓ | ✓ | | | |
    /// | admin | | ✓ | with view_pii | ✓ | ✓ | ✓ | ✓ | ✓ | ✓ |
    /// | manager | | ✓ | with view_pii | ✓ | | ✓ | | | |
    /// | viewer | | ✓ | with view_pii | | | | | | |
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
            }
        case .mainDataCenter:
            return false
        case .system:
            return permission == .erase
        }
    }

    /// Whether exports made for this caller hold values in clear. The brand's backend is the
    /// data's controller; an operator needs `view_pii`.
    public var seesClearExports: Bool {
        switch self {
        case .apiKey: true
        case .operator(_, _, let viewPII): viewPII
        case .mainDataCenter, .system: false
        }
    }

    public func require(_ permission: Permission) throws(Failure) {
        guard may(permission) else {
            throw Failure(.forbidden, "this \(type == "operator" ? "operator's role" : "credential") does not allow \(permission.rawValue)")
        }
    }
}
