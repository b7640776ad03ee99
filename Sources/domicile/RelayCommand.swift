import ArgumentParser
import DomicileClient
import DomicileCore
import DomicileHTTP
import DomicileRelay
import Foundation
import Hummingbird
import Logging
import ServiceLifecycle

/// `domicile relay`: run by the brand, in its own network, for a client-mode workspace.
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "relay",
        abstract: "The brand's relay (client mode): pulls messages from Domicile, decrypts with the brand key, sends through the providers, reports back.")

    @Option(help: "Domicile's base URL, e.g. https://pii.example.ae:8443.") var domicileUrl: String
    @Option(help: "The client-mode workspace.") var workspace: String
    @Option(help: "The relay key's id (domicile workspace relay-key create).") var relayKeyId: String
    @Option(help: ArgumentHelp("File holding the relay key's secret on one line.", valueName: "file")) var relayKeyFile: String
    @Option(help: ArgumentHelp("The brand key file (repeat: the first is the newest; each opens values it sealed).", valueName: "file"))
    var key: [String] = []
    @Option(help: ArgumentHelp("JSON file: {\"email\": {\"kind\": \"smtp\", \"settings\": {…}}, \"sms\": {…}, \"whatsapp\": {…}}.", valueName: "file"))
    var providers: String
    @Option(help: ArgumentHelp("The relay's journal (SQLite): what it sent, so nothing is sent twice.", valueName: "file"))
    var journal: String = "relay.sqlite"
    @Option(help: "Address the providers' callbacks reach the relay at.") var host: String = "127.0.0.1"
    @Option(help: "Port of the callbacks listener (0 picks a free one).") var port: Int = 8090
    @Option(help: "Messages taken per claim.") var batch: Int = 100
    @Option(help: "Batches out at once (each claimed, sent and reported on its own).") var workers: Int = 4
    @Option(help: "Seconds Domicile waits for a message's report before handing it again.") var leaseSeconds: Int = 120
    @Option(help: ArgumentHelp("PEM of the authority Domicile's certificate is issued by.", valueName: "file")) var domicileCa: String?
    @Option(help: ArgumentHelp("Client certificate (PEM) when Domicile requires mutual TLS.", valueName: "file")) var clientCert: String?
    @Option(help: ArgumentHelp("Its private key (PEM).", valueName: "file")) var clientKey: String?
    @Option(help: "Log level.") var logLevel: String = "info"

    func run() async throws {
        guard let level = Logger.Level(rawValue: logLevel) else { throw ValidationError("unknown log level \(logLevel)") }
        guard !key.isEmpty else { throw ValidationError("--key is required: the brand key file") }
        guard (1...500).contains(batch) else { throw ValidationError("--batch must be 1 to 500") }
        guard (1...64).contains(workers) else { throw ValidationError("--workers must be 1 to 64") }
        guard (10...3600).contains(leaseSeconds) else { throw ValidationError("--lease-seconds must be 10 to 3600") }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "domicile.relay")
        guard let secret = FileManager.default.contents(atPath: relayKeyFile)
            .map({ String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }), !secret.isEmpty
        else { throw ValidationError("cannot read the relay key's secret from \(relayKeyFile)") }
        var configuration = RelayConfiguration(
            domicileURL: domicileUrl, workspace: try WorkspaceID(validating: workspace), relayKeyID: relayKeyId, relayKeySecret: secret,
            keys: try BrandKeys(encryption: key.map(KeyFile.read), index: nil),
            providers: try RelayConfiguration.providers(file: providers), journalPath: journal)
        configuration.batch = batch
        configuration.workers = workers
        configuration.lease = .seconds(leaseSeconds)
        configuration.domicileCA = domicileCa
        configuration.clientCertificate = clientCert
        configuration.clientKey = clientKey
        let relay = try Relay(configuration: configuration, logger: logger)
        let app = Application(
            router: DomicileAPI.callbackRouter(target: relay),
            configuration: .init(address: .hostname(host, port: port), serverName: "domicile-relay"),
            services: [relay],
            onServerRunning: { [host, workspace] channel in
                FileHandle.standardOutput.write(Data("""
                    Domicile relay for \(workspace) listening on http://\(host):\(channel.localAddress?.port ?? 0) (providers' callbacks at /v1/callbacks/{provider}/\(workspace))

                    """.utf8))
            },
            logger: logger)
        try await app.runService()
    }
}
