import DomicileCore
import Foundation
import Metrics

/// The region's borders: which workspaces this node serves, and where their data may be sent.
extension Vault {
    // MARK: Residency

    /// Refuses a workspace homed in another region, before anything of it is read: the home
    /// region's endpoint is in the error, and nothing is forwarded. A workspace this region
    /// does not know, and the directory does not name, passes on to be refused as unknown.
    public func checkResidency(_ id: WorkspaceID) async throws {
        let home: String
        if let record = try await workspace(id) {
            home = record.region
        } else if let elsewhere = directory.workspaces[id.rawValue] {
            home = elsewhere
        } else {
            return
        }
        guard home != region else { return }
        Counter(label: "domicile_residency_refusals_total").increment()
        throw ServedElsewhere(region: home, endpoint: directory.regions[home], thisRegion: region)
    }

    // MARK: Egress

    public enum EgressStage: String, Sendable { case configuring = "configure", connecting = "connect" }

    /// Refuses an outbound connection the workspace's allowlist does not allow, counted by stage and reason.
    public func checkEgress(_ workspace: WorkspaceRecord, to endpoint: EgressEndpoint, when stage: EgressStage) throws {
        do {
            try workspace.egressAllowlist.check(endpoint)
        } catch {
            Counter(label: "domicile_egress_refusals_total", dimensions: [("stage", stage.rawValue), ("reason", error.reason.rawValue)])
                .increment()
            if stage == .connecting {
                logger.warning("egress refused", metadata: ["workspace": "\(workspace.id)", "reason": "\(error.reason.rawValue)",
                                                             "setting": "\(error.setting)"])
            }
            throw error.failure
        }
    }

    /// The hosts the workspace's outbound connections may reach.
    public func egressAllowlist(_ id: WorkspaceID, actor: Actor) async throws -> EgressAllowlist {
        try actor.require(.configure)
        guard let record = try await workspace(id) else { throw StoreError.notFound("workspace \(id)") }
        return record.egressAllowlist
    }

    /// Replaces the workspace's egress allowlist. Providers or an events URL whose host leaves
    /// the list stay configured, and their connections are refused until it is back.
    public func setEgressAllowlist(_ id: WorkspaceID, hosts: [String], actor: Actor, requestID: String? = nil) async throws -> EgressAllowlist {
        try actor.require(.configure)
        let allowlist = try EgressAllowlist(validating: hosts)
        _ = try await updateWorkspace(id) { $0.egressHosts = allowlist.hosts }
        try await audit([AuditDraft(actor: actor, action: .settingsChange, attributes: ["egress_allowlist"], requestID: requestID)],
                        workspace: id)
        return allowlist
    }
}
