import DomicileCore
import DomicileHTTP
import DomicileVault
import Foundation
import Hummingbird
import HummingbirdTesting
import Metrics
import Prometheus
import Testing

/// The process's metrics registry, bootstrapped once (swift-metrics allows one bootstrap a process).
enum TestMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}

@Suite("Metrics")
struct MetricsTests {
    /// Requests carrying marker values everywhere a value can go (bodies, paths, query strings,
    /// refused input), then `/metrics`: parsed by the Prometheus project's own parser, with the
    /// families it must have, and not one marker in it.
    @Test func metricsAreParseableAndCarryNoValueOfARequest() async throws {
        let registry = TestMetrics.registry
        let f = try await APIFixture.make()
        let token = UUID().uuidString.prefix(8).lowercased()
        let markers = ["mk\(token)@inbox.example", "cid\(token)", "Zq\(token)", "+9715\(token.filter(\.isNumber).prefix(3))0000"]
        let app = Application(router: DomicileAPI.router(vault: f.vault, metrics: registry))
        let text = try await app.test(.router) { client -> String in
            let good = customerJSON(markers[1], #"{"email":"\#(markers[0])","first_name":"\#(markers[2])"}"#)
            let bad = customerJSON("x-\(token)", #"{"mobile":"\#(markers[2])"}"#)
            try await client.send(.post, "/v1/transition/acme", auth: f.auth, json: transition(good, bad))
            try await client.send(.get, "/v1/workspaces/acme/customers/\(markers[1])", auth: f.auth)
            try await client.send(.get, "/v1/workspaces/acme/customers?email=\(markers[0])", auth: f.auth)
            try await client.send(.get, "/v1/\(markers[2])/\(markers[1])", auth: f.auth)
            try await client.send(.get, "/v1/workspaces/acme/customers/\(markers[2])", auth: f.auth)
            let scraped = try await client.send(.get, "/metrics")
            #expect(scraped.status == .ok)
            #expect(scraped.headers[.contentType]?.hasPrefix("text/plain; version=0.0.4") == true)
            return scraped.text
        }
        for marker in markers + [String(token)] { #expect(!text.contains(marker), "\(marker) is in /metrics") }
        for family in ["domicile_http_requests_total", "domicile_http_request_duration_seconds", "domicile_customers_ingested_total",
                       "domicile_customers_refused_total", "domicile_group_commit_size", "domicile_commit_duration_seconds",
                       "domicile_kms_calls_total"] {
            #expect(text.contains(family), "\(family) is missing")
        }
        #expect(text.contains(#"route="/v1/workspaces/{workspace}/customers/{customer_id}""#), "requests are not labelled by route template")
        // A path no route matches is counted under Hummingbird's name for it, never its path.
        #expect(text.contains(#"route="NotFound""#))

        // The Prometheus project's parser reads every family.
        let parser = Process()
        parser.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        parser.arguments = ["python3", "-c", """
            import sys
            from prometheus_client.parser import text_string_to_metric_families
            families = list(text_string_to_metric_families(sys.stdin.read()))
            print(len(families), sum(len(f.samples) for f in families))
            """]
        let input = Pipe(), output = Pipe()
        parser.standardInput = input
        parser.standardOutput = output
        try parser.run()
        input.fileHandleForWriting.write(Data(text.utf8))
        try input.fileHandleForWriting.close()
        let printed = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        parser.waitUntilExit()
        #expect(parser.terminationStatus == 0, "prometheus_client could not parse /metrics")
        let counts = printed.split(separator: " ").compactMap { Int($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        #expect(counts.count == 2 && counts[0] >= 7 && counts[1] > counts[0], "parsed: \(printed)")
    }
}
