import ArgumentParser
import DomicileCore
import DomicileVault
import Foundation
import Logging
import Metrics
import ServiceLifecycle

/// The `key-rotation` job: on the node holding its lease, rewraps the data keys of every
/// workspace whose customers are not all on its current key version, page by page (each page one
/// commit: a SIGKILL loses at most the page under way, and the next run skips what is done), then
/// retires the versions nothing uses. Requests keep being answered: a page is a few hundred
/// unwraps and one commit.
struct KeyRotationService: Service {
    let vault: Vault
    let node: String
    let interval: Duration
    let batch: Int
    /// A pause between pages, to leave the writer to requests (tests lengthen it to catch a run mid-way).
    let pause: Duration
    let grace: Duration
    let logger: Logger

    func run() async throws {
        // Workspace → the version its customers were all found on: skipped until that changes.
        var settled: [WorkspaceID: UInt32] = [:]
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            do {
                if try await holdLease() {
                    for workspace in try await vault.store.workspaces() {
                        let versions = try await vault.store.workspaceKeys(workspace.id).map(\.version)
                        guard versions.count > 1, let current = versions.max() else { continue }
                        if settled[workspace.id] != current {
                            guard try await rewrap(workspace.id, current: current) else { break }
                            settled[workspace.id] = current
                        }
                        guard try await rebuildBlindIndex(workspace.id) else { break }
                        _ = try await vault.retireUnusedKeyVersions(workspace.id, grace: grace)
                    }
                }
            } catch {
                logger.error("key rotation: a run failed", metadata: ["error.type": "\(type(of: error))"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }

    func holdLease() async throws -> Bool {
        let now = Date()
        return try await vault.store.acquireLease("key-rotation", holder: node, now: now,
                                                  until: now.addingTimeInterval(3 * Double(interval.components.seconds) + 30))
    }

    /// Takes the workspace's blind-index rotation, if any, as far as it can go now (a step that
    /// waits for the grace period is left to a later run).
    /// - Returns: false when the run stopped early (shutdown, or the lease went to another node).
    func rebuildBlindIndex(_ workspace: WorkspaceID) async throws -> Bool {
        var customers = 0
        var reported = ContinuousClock.now
        while true {
            if Task.isShuttingDownGracefully || Task.isCancelled { return false }
            guard try await holdLease() else { return false }
            switch try await vault.stepBlindIndexRotation(workspace, grace: grace, limit: batch) {
            case .idle, .waiting:
                return true
            case .page(let role, let count):
                customers += count
                if ContinuousClock.now - reported > .seconds(5) {
                    reported = ContinuousClock.now
                    logger.notice("key rotation: blind index", metadata: [
                        "workspace": "\(workspace)", "phase": "\(role.rawValue)", "customers": "\(customers)"])
                }
                if pause > .zero { try await Task.sleep(for: pause) }
            case .switched, .finished:
                customers = 0
            }
        }
    }

    /// Rewraps every data key of the workspace not on `current`.
    /// - Returns: false when the run stopped early (shutdown, or the lease went to another node).
    func rewrap(_ workspace: WorkspaceID, current: UInt32) async throws -> Bool {
        var cursor: CustomerID?
        var rewrapped = 0
        let started = ContinuousClock.now
        var reported = started
        let remaining = Gauge(label: "domicile_key_rewrap_remaining")
        repeat {
            if Task.isShuttingDownGracefully || Task.isCancelled { return false }
            guard try await holdLease() else { return false }
            let (count, next) = try await vault.rewrapDataKeys(workspace, after: cursor, limit: batch)
            rewrapped += count
            cursor = next
            if ContinuousClock.now - reported > .seconds(5) || (cursor == nil && rewrapped > 0) {
                reported = ContinuousClock.now
                let status = try await vault.keyStatus(workspace)
                remaining.record(status.total - status.done)
                let seconds = max(0.001, (ContinuousClock.now - started) / .seconds(1))
                logger.notice("key rotation: rewrapping data keys", metadata: [
                    "workspace": "\(workspace)", "version": "\(current)", "done": "\(status.done)", "total": "\(status.total)",
                    "rate_per_s": "\(Int(Double(rewrapped) / seconds))",
                ])
            }
            if pause > .zero, cursor != nil { try await Task.sleep(for: pause) }
        } while cursor != nil
        return true
    }
}

/// `domicile keys`: rotation of workspace keys, and its progress.
struct KeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Rotate workspace keys and follow the rewrap of their customers' data keys.",
        subcommands: [Rotate.self, RotateRoot.self, Status.self])

    struct Rotate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Add a workspace key version: new data keys use it at once; the server's key-rotation job rewraps the others.")
        @OptionGroup var node: NodeOptions
        @Option(help: "The workspace.") var workspace: String
        @Flag(help: "Also move the blind index to a key derived from the new version: a server rebuilds it in the background; lookups use the old one until it is complete.")
        var blindIndex = false

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let id = try WorkspaceID(validating: workspace)
            let version = try await vault.rotateWorkspaceKey(id, rebuildingBlindIndex: blindIndex)
            let status = try await vault.keyStatus(id)
            print("""
                Workspace key v\(version) of \(workspace) now wraps new data keys (every node within 5 s).
                A running server rewraps the \(status.total - status.done) other customers' data keys in the background, then retires the
                versions nothing uses (the version keying the blind index stays while it does: v1 until a rotation with --blind-index).
                """ + (blindIndex ? """

                The blind index is being rebuilt under v\(version); lookups use the current one until it is complete.
                """ : "") + "\nFollow it with `domicile keys status`.")
        }
    }

    struct RotateRoot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-root",
            abstract: "A new root key version (OpenBao: a new transit key version; local: a new key file) and every workspace key wrapped again with it.")
        @OptionGroup var node: NodeOptions

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let count = try await vault.rotateRoot()
            print(node.kms == "openbao"
                ? "Transit key \(node.kmsKey) has a new version; \(count) workspace key versions are wrapped with it. Older transit versions still decrypt until you raise min_decryption_version."
                : "A new root key is in place; \(count) workspace key versions are wrapped with it. Restart the servers using this data folder: they still hold the old key in memory.")
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Key versions and the rewrap's progress: done/total, rate, estimate.")
        @OptionGroup var node: NodeOptions
        @Option(help: "One workspace (default: all).") var workspace: String?

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            var ids = try await vault.store.workspaces().map(\.id)
            if let workspace { ids = [try WorkspaceID(validating: workspace)] }
            for id in ids {
                let first = try await vault.keyStatus(id)
                var line = "\(id)\tversions \(first.versions.map { "v\($0)" }.joined(separator: ","))\tcurrent v\(first.current)"
                    + "\tdone \(first.done)/\(first.total)"
                if first.done < first.total {
                    // The rate over one second, from two readings.
                    try await Task.sleep(for: .seconds(1))
                    let second = try await vault.keyStatus(id)
                    let rate = max(0, second.done - first.done)
                    line += "\trate \(rate)/s\t" + (rate > 0 ? "estimate \((second.total - second.done) / rate) s" : "estimate: waiting for a server to run the job")
                } else if !first.retirable.isEmpty {
                    line += "\tto retire: \(first.retirable.map { "v\($0)" }.joined(separator: ","))"
                }
                // Customer ids are not personal data (the main data center holds them), so the place is
                // shown, unless the workspace accepts ids that look like e-mails or phone numbers.
                let showsPlace = try await vault.store.workspace(id)?.allowIdentifyingCustomerIDs == false
                line += "\tblind index " + (try await vault.blindIndexStatus(id)).map { version, state in
                    let place = state.cursor.map { showsPlace ? " (after \($0))" : " (under way)" } ?? " (not started)"
                    return "v\(version) \(state.role.rawValue)" + (state.role == .active ? "" : place)
                }.joined(separator: ", ")
                print(line)
            }
        }
    }
}
