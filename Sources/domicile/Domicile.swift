import ArgumentParser
import DomicileCore
import DomicileHTTP
import DomicileOutbound
import DomicileSQLite
import DomicileVault
import Foundation
import Hummingbird
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle

/// The process's entry point: makes SwiftNIO's event loops Swift Concurrency's global executor,
/// then runs the command.
///
/// Hummingbird reads and writes sockets on NIO's event loops while request handlers run as tasks;
/// with the default global executor every request crosses between the two thread pools twice.
/// With the event loops as the global executor a handler runs on the loop that owns its
/// connection: measured on the read path, this removed most of the scheduling cost. Nothing on
/// the request path blocks for long (point reads take microseconds; commits, bcrypt and provider
/// calls run on their own threads).
@main
enum Entry {
    static func main() {
        NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        let finished = DispatchSemaphore(value: 0)
        // Detached: `main` is on the main actor, whose thread waits below.
        Task.detached {
            await Domicile.main()
            finished.signal()
        }
        finished.wait()
    }
}

struct Domicile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "domicile",
        abstract: "Domicile: the in-region PII vault of a customer-engagement platform.",
        subcommands: [Serve.self, Workspace.self, OperatorCommand.self, AuditCommand.self, KeysCommand.self, BackupCommand.self,
                      RestoreCommand.self, ClientCommand.self, RelayCommand.self],
        defaultSubcommand: Serve.self)
}

struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "operator", abstract: "Operators: the brand's people who use the operator API.",
                                                    subcommands: [Create.self, List.self, Unlock.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an operator; prints a generated password once unless --password-stdin.")
        @OptionGroup var node: NodeOptions
        @Option var workspace: String
        @Option var email: String
        @Option(help: "admin, manager or viewer.") var role: String
        @Flag(help: "May reveal PII (with a reason).") var viewPii = false
        @Flag(help: "Read the password from standard input instead of generating one.") var passwordStdin = false

        func run() async throws {
            guard let parsedRole = Role(rawValue: role) else { throw ValidationError("--role must be admin, manager or viewer") }
            let password = passwordStdin ? readLine(strippingNewline: true) : nil
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let (record, issued) = try await vault.createOperator(workspace: try WorkspaceID(validating: workspace), email: email,
                                                                  role: parsedRole, viewPII: viewPii, password: password)
            print("Created operator \(record.id) (\(record.role.rawValue)\(record.viewPII ? ", view_pii" : "")) in \(workspace).")
            if password == nil { print("Password (shown once): \(issued)") }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List a workspace's operators.")
        @OptionGroup var node: NodeOptions
        @Option var workspace: String

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            for record in try await vault.store.operators(workspace: try WorkspaceID(validating: workspace)) {
                let locked = record.lockedUntil.map { $0 > Date() ? "\tlocked until \($0)" : "" } ?? ""
                print("\(record.id)\t\(try await vault.operatorEmail(record))\t\(record.role.rawValue)\(record.viewPII ? "\tview_pii" : "")\(locked)")
            }
        }
    }

    struct Unlock: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Clear an operator's lockout.")
        @OptionGroup var node: NodeOptions
        @Argument var id: String

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            try await vault.unlockOperator(id: id)
            print("Unlocked \(id).")
        }
    }
}

struct Workspace: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create and manage workspaces, their data API keys, limits and schema.",
        subcommands: [Create.self, List.self, Set.self, Key.self, Attribute.self, RotateEncryptionKey.self, Events.self, Egress.self, SendKey.self,
                      RelayKey.self, Provider.self])

    struct RelayKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "relay-key",
            abstract: "The brand's relay key (client-mode workspaces): `create`, or `rotate` (the old ones expire after --grace-hours).")
        @OptionGroup var node: NodeOptions
        @Argument(help: "create or rotate") var action: String
        @Argument var id: String
        @Option var graceHours: Int = 24

        func run() async throws {
            guard action == "create" || action == "rotate" else { throw ValidationError("relay-key takes create or rotate") }
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let (keyID, secret) = try await vault.issueSendKey(try WorkspaceID(validating: id),
                                                               grace: action == "rotate" ? .seconds(graceHours * 3600) : nil, relay: true)
            print("""
                Relay key \(keyID); secret (shown once): \(secret)
                Give both to the brand's relay: domicile relay --relay-key-id \(keyID) --relay-key-file FILE (the secret on its one line).
                """)
        }
    }

    struct SendKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "send-key", abstract: "The main data center's send key: `create`, or `rotate` (the old ones expire after --grace-hours).")
        @OptionGroup var node: NodeOptions
        @Argument(help: "create or rotate") var action: String
        @Argument var id: String
        @Option var graceHours: Int = 24

        func run() async throws {
            guard action == "create" || action == "rotate" else { throw ValidationError("send-key takes create or rotate") }
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let (keyID, secret) = try await vault.issueSendKey(try WorkspaceID(validating: id),
                                                               grace: action == "rotate" ? .seconds(graceHours * 3600) : nil)
            print("""
                Send key \(keyID); secret (shown once): \(secret)
                Sign each request: X-Domicile-Key: \(keyID), X-Domicile-Timestamp: <unix seconds>,
                X-Domicile-Signature: v1=hex(HMAC-SHA256(secret, timestamp + "\\n" + METHOD + "\\n" + path + "\\n" + body))
                """)
        }
    }

    struct Provider: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Set a channel's provider: smtp, twilio, whatsapp_cloud or private_ssp, with --setting key=value (credentials are sealed).")
        @OptionGroup var node: NodeOptions
        @Argument var id: String
        @Option(help: "email, sms or whatsapp") var channel: String
        @Option(help: "smtp, twilio, whatsapp_cloud or private_ssp") var kind: String
        @Option(name: .customLong("setting"), help: "key=value, repeated") var settings: [String] = []

        func run() async throws {
            guard let parsed = DomicileCore.Channel(rawValue: channel) else { throw ValidationError("--channel must be email, sms or whatsapp") }
            guard ProviderKind(rawValue: kind) != nil else {
                throw ValidationError("--kind must be one of \(ProviderKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var values: [String: String] = [:]
            for pair in settings {
                guard let equals = pair.firstIndex(of: "=") else { throw ValidationError("--setting takes key=value") }
                values[String(pair[..<equals])] = String(pair[pair.index(after: equals)...])
            }
            _ = try Providers.factory()(kind, values, parsed)
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            try await vault.setProvider(try WorkspaceID(validating: id), channel: parsed, kind: kind, settings: values, actor: .commandLine)
            print("\(channel) of \(id) goes through \(kind) (settings: \(values.keys.sorted().joined(separator: ", "))).")
        }
    }

    struct Egress: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show or change the hosts the workspace's providers and events endpoint may be reached at.")
        @OptionGroup var node: NodeOptions
        @Argument var id: String
        @Option(help: "A host to allow (repeatable).") var add: [String] = []
        @Option(help: "A host to take off the list (repeatable).") var remove: [String] = []

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let workspace = try WorkspaceID(validating: id)
            var hosts = try await vault.egressAllowlist(workspace, actor: .commandLine).hosts
            if !add.isEmpty || !remove.isEmpty {
                let removed = Swift.Set(remove.map { $0.lowercased() })
                hosts = hosts.filter { !removed.contains($0) } + add.filter { !hosts.contains($0.lowercased()) }
                hosts = try await vault.setEgressAllowlist(workspace, hosts: hosts, actor: .commandLine).hosts
            }
            print("Outbound connections of \(id) may go to: \(hosts.isEmpty ? "(no host)" : hosts.joined(separator: ", "))")
        }
    }

    struct Events: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Where the workspace's events for the main data center go; prints a new signing secret once.")
        @OptionGroup var node: NodeOptions
        @Argument var id: String
        @Option(help: "The main data center's endpoint, http(s).") var url: String

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let secret = try await vault.configureEvents(try WorkspaceID(validating: id), url: url)
            print("""
                Events for \(id) go to \(url).
                Signing secret (shown once): \(secret)
                Each POST carries X-Domicile-Timestamp and X-Domicile-Signature: v1=hex(HMAC-SHA256(secret, timestamp + "." + body)).
                """)
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a workspace and print its data API key (shown once).")
        @OptionGroup var node: NodeOptions
        @Argument(help: "Workspace id: letters, digits, '_' or '-'.") var id: String
        @Option(help: "Requests a minute allowed.") var rateLimit: Int = WorkspaceRecord.defaultRateLimitPerMinute
        @Option(help: ArgumentHelp(
            "vault: Domicile encrypts values with its keys; client: the brand encrypts them before sending, with a key Domicile never holds, and its relay sends (fixed once created).",
            valueName: "vault|client"))
        var protection: String = ProtectionMode.vault.rawValue

        func run() async throws {
            guard let mode = ProtectionMode(rawValue: protection) else { throw ValidationError("--protection must be vault or client") }
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let workspace = try WorkspaceID(validating: id)
            guard rateLimit > 0 else { throw ValidationError("--rate-limit must be positive") }
            let key = try await vault.createWorkspace(workspace, rateLimitPerMinute: rateLimit, protection: mode)
            print("""
                Created workspace \(workspace) in region \(vault.region)\(mode == .client ? " (protection: client; see docs/client-encryption.md)" : "").
                Data API key (shown once, store it now): \(key.secret)
                Use HTTP Basic auth with username \(workspace) and this key as password.
                """)
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List workspaces.")
        @OptionGroup var node: NodeOptions

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            for workspace in try await vault.store.workspaces() {
                print("\(workspace.id)\tregion=\(workspace.region)\tprotection=\(workspace.protection.rawValue)\trate_limit=\(workspace.rateLimitPerMinute)/min"
                      + "\(workspace.suspended ? "\tsuspended" : "")\(workspace.allowIdentifyingCustomerIDs ? "\tallows-identifying-ids" : "")")
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a workspace's rate limit, suspension or customer-id policy.")
        @OptionGroup var node: NodeOptions
        @Argument var id: String
        @Option(help: "Requests a minute allowed.") var rateLimit: Int?
        @Option(help: "Suspend (true) or reactivate (false).") var suspended: Bool?
        @Option(help: "Accept customer ids that look like e-mail addresses or phone numbers.") var allowIdentifyingCustomerIds: Bool?
        @Option(help: "Erase customers not updated for this many days (0 turns retention off).") var retentionDays: Int?
        @Option(help: "Refuse data for customer ids that were erased before.") var refuseErasedCustomerIds: Bool?

        func run() async throws {
            if let rateLimit, rateLimit <= 0 { throw ValidationError("--rate-limit must be positive") }
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let record = try await vault.updateWorkspace(try WorkspaceID(validating: id)) { record in
                if let rateLimit { record.rateLimitPerMinute = rateLimit }
                if let suspended { record.suspended = suspended }
                if let allowIdentifyingCustomerIds { record.allowIdentifyingCustomerIDs = allowIdentifyingCustomerIds }
                if let retentionDays { record.retentionDays = retentionDays > 0 ? retentionDays : nil }
                if let refuseErasedCustomerIds { record.refuseErasedCustomerIDs = refuseErasedCustomerIds }
            }
            print("\(record.id)\trate_limit=\(record.rateLimitPerMinute)/min\tsuspended=\(record.suspended)"
                  + "\tallow_identifying_customer_ids=\(record.allowIdentifyingCustomerIDs)"
                  + "\tretention_days=\(record.retentionDays.map(String.init) ?? "off")\trefuse_erased_customer_ids=\(record.refuseErasedCustomerIDs)"
                  + " (running nodes apply this within 5 s)")
        }
    }

    struct Key: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Data API keys.", subcommands: [Rotate.self, Revoke.self, List.self])

        struct Rotate: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Issue a new data API key; the current ones expire after a grace period.")
            @OptionGroup var node: NodeOptions
            @Argument var id: String
            @Option(help: "Hours the previous keys keep working (0: at once).") var graceHours: Int = 24

            func run() async throws {
                guard graceHours >= 0 else { throw ValidationError("--grace-hours cannot be negative") }
                let vault = try await node.openVault(logger: Logger(label: "domicile"))
                let key = try await vault.rotateAPIKey(try WorkspaceID(validating: id), grace: .seconds(graceHours * 3600))
                print("New data API key (shown once): \(key.secret)\nPrevious keys stop working in \(graceHours) h.")
            }
        }

        struct Revoke: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "Revoke one data API key, or all of them.")
            @OptionGroup var node: NodeOptions
            @Argument var id: String
            @Option(help: "The key id (the part after dk_); all keys when omitted.") var keyId: String?

            func run() async throws {
                let vault = try await node.openVault(logger: Logger(label: "domicile"))
                let revoked = try await vault.revokeAPIKeys(try WorkspaceID(validating: id), keyID: keyId)
                print("Revoked \(revoked.count) key(s): \(revoked.joined(separator: ", ")) (running nodes apply this within 5 s)")
            }
        }

        struct List: AsyncParsableCommand {
            static let configuration = CommandConfiguration(abstract: "List a workspace's data API keys (ids only).")
            @OptionGroup var node: NodeOptions
            @Argument var id: String

            func run() async throws {
                let vault = try await node.openVault(logger: Logger(label: "domicile"))
                let now = Date()
                for key in try await vault.store.apiKeys(workspace: try WorkspaceID(validating: id)) {
                    let state = key.revokedAt != nil ? "revoked" : key.isActive(at: now) ? (key.expiresAt.map { "expires \($0)" } ?? "active") : "expired"
                    print("dk_\(key.keyID)_…\tcreated \(key.createdAt)\t\(state)")
                }
            }
        }
    }

    struct Attribute: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The workspace's PII schema.", subcommands: [SetAttribute.self, ListAttributes.self])

        struct SetAttribute: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "set", abstract: "Define an attribute's type, PII flag and indexed flag.")
            @OptionGroup var node: NodeOptions
            @Argument var id: String
            @Argument var name: String
            @Option(help: "One of: \(AttributeType.allCases.map(\.rawValue).joined(separator: ", ")).") var type: String
            @Option(help: "Shown masked without view_pii.") var pii: Bool = true
            @Flag(help: "Looked up through the blind index.") var indexed = false

            func run() async throws {
                guard let attributeType = AttributeType(rawValue: type) else {
                    throw ValidationError("--type must be one of \(AttributeType.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                let vault = try await node.openVault(logger: Logger(label: "domicile"))
                let definition = AttributeDefinition(name: try AttributeName(validating: name), type: attributeType, pii: pii, indexed: indexed)
                try await vault.changeAttribute(definition, workspace: try WorkspaceID(validating: id), actor: .commandLine, requestID: nil)
                print("\(name): type=\(type) pii=\(pii) indexed=\(indexed)")
            }
        }

        struct ListAttributes: AsyncParsableCommand {
            static let configuration = CommandConfiguration(commandName: "list", abstract: "List the schema.")
            @OptionGroup var node: NodeOptions
            @Argument var id: String

            func run() async throws {
                let vault = try await node.openVault(logger: Logger(label: "domicile"))
                for definition in try await vault.schema(try WorkspaceID(validating: id), actor: .commandLine).sorted {
                    print("\(definition.name)\ttype=\(definition.type.rawValue)\tpii=\(definition.pii)\tindexed=\(definition.indexed)")
                }
            }
        }
    }

    struct RotateEncryptionKey: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Add a workspace key version; new customer keys are wrapped with it.")
        @OptionGroup var node: NodeOptions
        @Argument var id: String

        func run() async throws {
            let vault = try await node.openVault(logger: Logger(label: "domicile"))
            let version = try await vault.rotateWorkspaceKey(try WorkspaceID(validating: id))
            print("Workspace key version \(version) is now current.")
        }
    }
}

extension Failure: LocalizedError {
    public var errorDescription: String? { description }
}
