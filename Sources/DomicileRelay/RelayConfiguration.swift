import DomicileClient
import DomicileCore
import Foundation

/// What a relay needs: where Domicile is and how to sign to it, the brand's keys, and the
/// providers' settings (held by the brand, never by Domicile).
public struct RelayConfiguration: Sendable {
    /// Domicile's base URL, e.g. `https://pii.example.ae:8443`.
    public var domicileURL: String
    public var workspace: WorkspaceID
    public var relayKeyID: String
    public var relayKeySecret: String
    public var keys: BrandKeys
    /// Channel → provider kind and settings, as `domicile workspace provider` takes them.
    public var providers: [DomicileCore.Channel: (kind: String, settings: [String: String])]
    public var journalPath: String
    /// Messages taken per claim, and how long Domicile waits for their report before handing them again.
    public var batch: Int = 100
    /// Batches out at once: one is claimed while others are with the providers or being reported.
    public var workers: Int = 4
    public var lease: Duration = .seconds(120)
    /// How long the relay waits before asking again when there was nothing to do.
    public var idleInterval: Duration = .milliseconds(200)
    /// PEM of the authority Domicile's certificate is checked against (else the system's), and a
    /// client certificate and key for mutual TLS.
    public var domicileCA: String?
    public var clientCertificate: String?
    public var clientKey: String?

    public init(domicileURL: String, workspace: WorkspaceID, relayKeyID: String, relayKeySecret: String, keys: BrandKeys,
                providers: [DomicileCore.Channel: (kind: String, settings: [String: String])], journalPath: String) {
        self.domicileURL = domicileURL.hasSuffix("/") ? String(domicileURL.dropLast()) : domicileURL
        self.workspace = workspace
        self.relayKeyID = relayKeyID
        self.relayKeySecret = relayKeySecret
        self.keys = keys
        self.providers = providers
        self.journalPath = journalPath
    }

    /// Reads a providers file: `{"email": {"kind": "smtp", "settings": {…}}, "sms": {…}, "whatsapp": {…}}`.
    public static func providers(file path: String) throws -> [DomicileCore.Channel: (kind: String, settings: [String: String])] {
        struct Entry: Decodable { var kind: String; var settings: [String: String] }
        guard let data = FileManager.default.contents(atPath: path) else { throw ClientError("cannot read the providers file \(path)") }
        let entries: [String: Entry]
        do {
            entries = try JSONDecoder().decode([String: Entry].self, from: data)
        } catch {
            throw ClientError("\(path): expected {\"email\": {\"kind\": …, \"settings\": {…}}, …}")
        }
        var providers: [DomicileCore.Channel: (kind: String, settings: [String: String])] = [:]
        for (name, entry) in entries {
            guard let channel = DomicileCore.Channel(rawValue: name) else { throw ClientError("\(path): \(name) is not email, sms or whatsapp") }
            providers[channel] = (entry.kind, entry.settings)
        }
        return providers
    }
}
