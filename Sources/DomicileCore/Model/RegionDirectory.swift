import Foundation

/// Where each region is, and which workspaces live in other regions than this node's.
///
/// A node reads it from a JSON file (`--regions FILE`):
/// `{"regions": {"ae": "https://pii.ae.example.com", "sa": "https://pii.sa.example.com"},
///   "workspaces": {"brand-ksa": "sa"}}`. Each region's database holds only its own workspaces;
/// the `workspaces` map names the ones homed elsewhere, so a request for them is refused with
/// their home endpoint instead of answered as unknown.
public struct RegionDirectory: Sendable, Hashable, Decodable {
    /// Region code → the region's public endpoint.
    public var regions: [String: String]
    /// Workspace id → its home region, for workspaces homed in other regions.
    public var workspaces: [String: String]

    public init(regions: [String: String] = [:], workspaces: [String: String] = [:]) {
        self.regions = regions
        self.workspaces = workspaces
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        regions = try container.decodeIfPresent([String: String].self, forKey: .regions) ?? [:]
        workspaces = try container.decodeIfPresent([String: String].self, forKey: .workspaces) ?? [:]
    }

    enum CodingKeys: String, CodingKey { case regions, workspaces }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Reads and checks a directory file: every workspace's region has an endpoint, every endpoint is https.
    public static func load(path: String) throws -> RegionDirectory {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw Invalid(description: "cannot read the region directory \(path)")
        }
        let directory: RegionDirectory
        do { directory = try JSONDecoder().decode(RegionDirectory.self, from: data) } catch {
            throw Invalid(description: "\(path) is not a region directory: {\"regions\": {code: endpoint}, \"workspaces\": {id: code}}")
        }
        for (code, endpoint) in directory.regions {
            guard let url = URL(string: endpoint), url.scheme == "https" || url.scheme == "http", url.host != nil else {
                throw Invalid(description: "region \(code): the endpoint must be an absolute https URL")
            }
        }
        for (workspace, region) in directory.workspaces where directory.regions[region] == nil {
            throw Invalid(description: "workspace \(workspace) is homed in region \(region), which has no endpoint in the directory")
        }
        return directory
    }
}

/// A request for a workspace homed in another region: refused with that region's endpoint, never forwarded.
public struct ServedElsewhere: Error, Sendable, Hashable {
    public let region: String
    /// Nil when the directory does not know the region.
    public let endpoint: String?
    public let thisRegion: String

    public init(region: String, endpoint: String?, thisRegion: String) {
        self.region = region
        self.endpoint = endpoint
        self.thisRegion = thisRegion
    }

    public var message: String {
        "this workspace is homed in region \(region), not \(thisRegion): "
            + (endpoint.map { "send its requests to \($0)" } ?? "this node's region directory has no endpoint for it")
    }
}
