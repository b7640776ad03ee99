import Foundation

/// The providers Domicile ships, and where each one connects: the one list of provider kinds.
public enum ProviderKind: String, Sendable, CaseIterable {
    case smtp, twilio
    case whatsappCloud = "whatsapp_cloud"
    case privateSSP = "private_ssp"

    public static let defaultTwilioBaseURL = "https://api.twilio.com"
    public static let defaultWhatsAppBaseURL = "https://graph.facebook.com/v20.0"

    /// The API host the provider documents; a new workspace's allowlist holds these.
    public var documentedHost: String? {
        switch self {
        case .twilio: "api.twilio.com"
        case .whatsappCloud: "graph.facebook.com"
        case .smtp, .privateSSP: nil
        }
    }

    /// Where a provider of this kind with these settings connects.
    public func endpoint(settings: [String: String]) throws(Failure) -> EgressEndpoint {
        switch self {
        case .privateSSP:
            guard let url = settings["url"], !url.isEmpty else { throw Failure(.attribute, attribute: "url", "provider setting url is required") }
            return try EgressEndpoint(url: url, setting: "url")
        case .twilio:
            return try EgressEndpoint(url: settings["base_url"] ?? Self.defaultTwilioBaseURL, setting: "base_url")
        case .whatsappCloud:
            return try EgressEndpoint(url: settings["base_url"] ?? Self.defaultWhatsAppBaseURL, setting: "base_url")
        case .smtp:
            guard let host = settings["host"], !host.isEmpty else { throw Failure(.attribute, attribute: "host", "provider setting host is required") }
            let tls = settings["tls"] ?? "starttls"
            // `starttls_if_available` goes on in the clear when the server offers no STARTTLS.
            return EgressEndpoint(host: host, encrypted: tls == "starttls" || tls == "implicit", setting: "host")
        }
    }
}

/// One place an outbound connection goes: a host, and whether the connection is encrypted.
public struct EgressEndpoint: Sendable, Hashable {
    /// Lowercased, without brackets for an IPv6 literal.
    public let host: String
    public let encrypted: Bool
    /// The setting that named it, for the error.
    public let setting: String

    public init(host: String, encrypted: Bool, setting: String) {
        self.host = EgressAllowlist.normalized(host)
        self.encrypted = encrypted
        self.setting = setting
    }

    /// An `https://` URL is encrypted; an `http://` one is not.
    public init(url text: String, setting: String) throws(Failure) {
        guard let url = URL(string: text), let scheme = url.scheme?.lowercased(), scheme == "http" || scheme == "https",
              let host = url.host, !host.isEmpty
        else { throw Failure(.attribute, attribute: setting, "\(setting) must be an absolute https URL") }
        self.init(host: host, encrypted: scheme == "https", setting: setting)
    }

    /// 127.0.0.0/8, ::1 and localhost: the node itself, where plain connections are allowed for development.
    public var isLoopback: Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.") && host.split(separator: ".").count == 4
            && host.split(separator: ".").allSatisfy { UInt8($0) != nil }
    }
}

/// The hosts a workspace's outbound connections may reach: its providers, its events endpoint.
///
/// Every connection is encrypted (https, or SMTP with STARTTLS or implicit TLS) unless it goes
/// to the node's own loopback, for development; and it goes only to a host on the list. Both
/// are checked when a URL or a provider is configured and again before each connection, so a
/// host taken off the list stops receiving at once.
public struct EgressAllowlist: Sendable, Hashable {
    public var hosts: [String]

    /// The documented API host of every provider kind that has one.
    public static let defaults = EgressAllowlist(hosts: ProviderKind.allCases.compactMap(\.documentedHost))

    public init(hosts: [String]) {
        self.hosts = hosts.map(Self.normalized)
    }

    /// Validates an operator's list: host names or IP addresses, without scheme, port or path.
    public init(validating hosts: [String]) throws(Failure) {
        guard hosts.count <= 100 else { throw Failure(.attribute, attribute: "hosts", "at most 100 hosts") }
        for (index, host) in hosts.enumerated() {
            let bytes = Array(host.utf8)
            let allowed = !bytes.isEmpty && bytes.count <= 253 && bytes.allSatisfy {
                ($0 >= UInt8(ascii: "a") && $0 <= UInt8(ascii: "z")) || ($0 >= UInt8(ascii: "A") && $0 <= UInt8(ascii: "Z"))
                    || ($0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9")) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: ".")
                    || $0 == UInt8(ascii: ":")
            }
            guard allowed else {
                throw Failure(.attribute, attribute: "hosts", "hosts[\(index)] is not a host name or IP address (no scheme, port or path)")
            }
        }
        self.init(hosts: hosts)
    }

    static func normalized(_ host: String) -> String {
        var host = host.lowercased()
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.hasSuffix(".") { host.removeLast() }
        return host
    }

    public func contains(_ host: String) -> Bool { hosts.contains(Self.normalized(host)) }

    /// Refuses an endpoint this list does not allow, saying which rule it breaks.
    public func check(_ endpoint: EgressEndpoint) throws(EgressRefusal) {
        if !endpoint.encrypted && !endpoint.isLoopback {
            throw EgressRefusal(reason: .unencrypted, setting: endpoint.setting,
                                message: "\(endpoint.setting) must use TLS (https, or SMTP with starttls or implicit): plain connections go only to this node's loopback")
        }
        if !contains(endpoint.host) {
            throw EgressRefusal(reason: .hostNotAllowed, setting: endpoint.setting,
                                message: "\(endpoint.host) is not on this workspace's egress allowlist; add it with PUT /v1/workspaces/{workspace}/egress or `domicile workspace egress`")
        }
    }
}

/// Why an outbound connection was refused. The host is the operator's own configuration, never a customer's value.
public struct EgressRefusal: Error, Sendable, Hashable {
    public enum Reason: String, Sendable { case unencrypted, hostNotAllowed = "host_not_allowed" }
    public let reason: Reason
    public let setting: String
    public let message: String

    public var failure: Failure { Failure(.attribute, attribute: setting, message) }
}
