import DomicileVault
import Foundation
import HTTPTypes
import Hummingbird

/// Liveness, readiness and the API description.
struct HealthController {
    let vault: Vault

    struct Status: Encodable {
        var status: String
        var region: String?
        var checks: [String: String]?
    }

    static func addLiveness(to router: Router<DomicileRequestContext>) {
        router.get("health/live") { _, _ in
            JSONResponse.make(Status(status: "live"))
        }
    }

    func addRoutes(to router: Router<DomicileRequestContext>) {
        Self.addLiveness(to: router)
        router.get("health/ready") { _, context in
            let (ready, checks) = await vault.readiness()
            guard ready else {
                context.logger.warning("not ready", metadata: ["storage": "\(checks["storage"] ?? "")", "kms": "\(checks["kms"] ?? "")"])
                return JSONResponse.make(Status(status: "unavailable", region: vault.region, checks: checks), status: .serviceUnavailable,
                                         headers: [.retryAfter: "5"])
            }
            return JSONResponse.make(Status(status: "ready", region: vault.region, checks: checks))
        }
        router.get("openapi.yaml") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/yaml"],
                     body: .init(byteBuffer: ByteBuffer(bytes: OpenAPIDocument.bytes)))
        }
    }
}

/// The OpenAPI 3.1 description of this API, shipped as a resource of this module.
public enum OpenAPIDocument {
    public static let bytes: [UInt8] = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let data = try? Data(contentsOf: url)
        else { return Array("openapi: 3.1.0\n".utf8) }
        return Array(data)
    }()
}
