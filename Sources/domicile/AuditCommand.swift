import ArgumentParser
import DomicileCore
import DomicileOutbound
import DomicileVault
import Foundation
import Logging

struct AuditCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "audit", abstract: "The tamper-evident audit log.",
                                                    subcommands: [Verify.self, PublicKey.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check every workspace's keyed chain, and the signed checkpoints given; exits 1 at the first broken link.")
        @OptionGroup var node: NodeOptions
        @Option(help: "Only this workspace.") var workspace: String?
        @Option(help: ArgumentHelp(
            "A file of checkpoints the main data center received: one `audit_checkpoint` object, or a whole events delivery, a line.",
            valueName: "file"))
        var checkpoints: String?

        func run() async throws {
            let anchors = try checkpoints.map(Self.readCheckpoints) ?? []
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            var ids = try await vault.store.workspaces().map(\.id)
            if let workspace { ids = [try WorkspaceID(validating: workspace)] }
            var broken = false
            for id in ids {
                let result = try await vault.verifyAudit(workspace: id, checkpoints: anchors)
                print("\(id): \(result)")
                if case .broken = result { broken = true }
            }
            if broken { throw ExitCode(1) }
        }

        static func readCheckpoints(_ path: String) throws -> [AuditCheckpoint] {
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("cannot read \(path)") }
            let decoder = JSONDecoder()
            decoder.dateDecodingStrategy = .iso8601
            var found: [AuditCheckpoint] = []
            for (number, line) in data.split(separator: UInt8(ascii: "\n")).enumerated()
            where !line.allSatisfy({ $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\r") }) {
                if let checkpoint = try? decoder.decode(AuditCheckpoint.self, from: Data(line)) {
                    found.append(checkpoint)
                } else if let batch = try? decoder.decode(MainDataCenterBatch.self, from: Data(line)) {
                    if let checkpoint = batch.auditCheckpoint { found.append(checkpoint) }
                } else {
                    throw ValidationError("\(path), line \(number + 1): neither a checkpoint nor an events delivery")
                }
            }
            return found
        }
    }

    struct PublicKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "public-key",
            abstract: "Print the Ed25519 public key (base64) that checks a workspace's audit checkpoints, for the main data center.")
        @OptionGroup var node: NodeOptions
        @Option(help: "The workspace.") var workspace: String

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            print(try await vault.auditCheckpointPublicKey(workspace: try WorkspaceID(validating: workspace)))
        }
    }
}
