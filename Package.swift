// swift-tools-version:6.2
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    // A nonisolated async function runs on its caller's executor instead of hopping to the global
    // one (SE-0461). With NIO's event loops as the global executor, each such hop was a job
    // enqueued on the loop: about 20 per customer read. Work that must leave an actor says
    // `@concurrent`.
    .enableUpcomingFeature("NonisolatedNonsendingByDefault"),
]

let package = Package(
    name: "Domicile",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "domicile", targets: ["domicile"]),
        .library(name: "DomicileCore", targets: ["DomicileCore"]),
        .library(name: "DomicileVault", targets: ["DomicileVault"]),
        .library(name: "DomicileHTTP", targets: ["DomicileHTTP"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    ],
    targets: [
        // The domain: identifiers, validation, schema, masking, the store protocols. No HTTP, no database.
        .target(
            name: "DomicileCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // Keys, envelope encryption, blind indexes and the services that use them.
        .target(
            name: "DomicileVault",
            dependencies: [
                "DomicileCore",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // SQLite's page cache, wrapped by a load-time constructor so that a commit-time
        // truncation with nothing to remove is skipped (see page_cache.c).
        .target(
            name: "CSQLitePageCache",
            linkerSettings: [.linkedLibrary("sqlite3")]
        ),
        // The embedded store: one SQLite file in WAL mode, group commit.
        .target(
            name: "DomicileSQLite",
            dependencies: [
                "DomicileCore",
                "CSQLitePageCache",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API under GRDB, for the hot statements (see RawStatement).
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // The store for several nodes: PostgreSQL through a connection pool.
        .target(
            name: "DomicilePostgres",
            dependencies: [
                "DomicileCore",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The brand's side of client mode: its keys, envelopes, and payloads encrypted before they
        // leave its systems (`domicile client`, and the relay).
        .target(
            name: "DomicileClient",
            dependencies: ["DomicileCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        // The relay the brand runs in its own network (client mode): pulls its messages from
        // Domicile, opens the brand's envelopes, renders and sends through the same providers.
        .target(
            name: "DomicileRelay",
            dependencies: [
                "DomicileCore", "DomicileVault", "DomicileClient", "DomicileOutbound", "DomicileHTTP",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // HTTP adapter.
        .target(
            name: "DomicileHTTP",
            dependencies: [
                "DomicileCore",
                "DomicileVault",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                // Reads a client certificate's names (mutual TLS) and checks a key matches its certificate.
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                // HTTPParserError: a request body that breaks HTTP/1.1 framing is the client's error.
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            resources: [.copy("openapi.yaml")],
            swiftSettings: strict
        ),
        // Root key services that live outside the node: OpenBao's transit engine.
        .target(
            name: "DomicileKMS",
            dependencies: [
                "DomicileCore",
                "DomicileVault",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        // What leaves the vault over HTTP: events for the main data center.
        .target(
            name: "DomicileOutbound",
            dependencies: [
                "DomicileCore",
                "DomicileVault",
                "DomicileSMTP",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "domicile",
            dependencies: [
                "DomicileCore",
                "DomicileVault",
                "DomicileSQLite",
                "DomicilePostgres",
                "DomicileHTTP",
                "DomicileOutbound",
                "DomicileKMS",
                "DomicileClient",
                "DomicileRelay",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                // SIGHUP: the listener's certificate is read again.
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // What several test targets share: a PostgreSQL database per test.
        .target(
            name: "DomicileTestSupport",
            dependencies: [
                "DomicileCore", "DomicileSQLite", "DomicilePostgres",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/DomicileTestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "DomicileClientTests",
            dependencies: ["DomicileCore", "DomicileClient", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DomicileCoreTests",
            dependencies: ["DomicileCore"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DomicileVaultTests",
            dependencies: ["DomicileCore", "DomicileVault", "DomicileSQLite", "DomicileTestSupport",
                           .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DomicileHTTPTests",
            dependencies: [
                "DomicileCore", "DomicileVault", "DomicileSQLite", "DomicileHTTP", "DomicileTestSupport", "DomicileKMS",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DomicileOutboundTests",
            dependencies: [
                "DomicileCore", "DomicileVault", "DomicileSQLite", "DomicileOutbound", "DomicileHTTP",
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DomicileSystemTests",
            dependencies: [
                "DomicileCore", "DomicileVault", "DomicileTestSupport", "DomicileClient",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: strict
        ),
        // SMTP client: hand-written on SwiftNIO (no SMTP package is available), for the e-mail dispatcher.
        .target(
            name: "DomicileSMTP",
            dependencies: [
                "DomicileCore",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "DomicileSMTPTests",
            dependencies: [
                "DomicileCore", "DomicileSMTP",
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)

// libFuzzer targets, one executable a fuzzer (Fuzz/<name>/). With DOMICILE_FUZZ=1 the package is
// these fuzzers and what they need, nothing else: scripts/fuzz sets it and builds them all with
// one `swift build --sanitize=fuzzer` in its own scratch path (.build-fuzz), both cores busy
// (building one product at a time left one idle: 220 s against 140). Without it they do not
// exist, and could not: each defines `LLVMFuzzerTestOneInput` and no `main` (libFuzzer brings
// it), and the ordinary `swift build`, which builds every executable target, would link them
// without libFuzzer, aliasing `main` to an entry point that is not there.
//
// `--sanitize=fuzzer` instruments every module, dependencies included, and links the toolchain's
// libFuzzer. The dependencies build as usual with it (their coverage counters stay silent: the
// fuzzers never run their code); what costs is compiling them at all, so the fuzzers reach as
// few as they can. The dependency list stays whole, so Package.resolved is the same either way.
if Context.environment["DOMICILE_FUZZ"] == "1" {
    package.products = []
    package.targets.removeAll { $0.name != "DomicileCore" }
    // The debug configuration, so the dependencies, which the fuzzers never run, are not
    // optimised (SwiftNIO and NIOSSL built in a quarter less time); the code under fuzzing is,
    // since the last -O/-Onone given wins (measured: as many runs a second as a release build).
    // Its traps (overflow, bounds, force-unwrap, precondition) stay.
    package.targets[0].swiftSettings = (package.targets[0].swiftSettings ?? []) + [.unsafeFlags(["-O"])]
    let fuzzers: [(name: String, dependencies: [Target.Dependency])] = [
        ("FuzzJSON", ["DomicileCore"]),
        ("FuzzE164", ["DomicileCore"]),
        ("FuzzEmail", ["DomicileCore"]),
        ("FuzzIngestElement", ["DomicileCore"]),
        ("FuzzTwilioForm", ["DomicileCore"]),
        // Compiles the reply parser's own two files (symlinks to DomicileSMTP's SMTPReply.swift
        // and SMTPError.swift), which need only NIOCore, instead of depending on DomicileSMTP:
        // its NIOSSL brings NIOPosix and a second BoringSSL, 200 more CPU-seconds of build for
        // code the fuzzer never runs. Should SMTPReply.swift come to need another file of
        // DomicileSMTP, link that file here too.
        ("FuzzSMTPReply", [.product(name: "NIOCore", package: "swift-nio")]),
    ]
    package.targets += fuzzers.map { fuzzer in
        .executableTarget(
            name: fuzzer.name,
            dependencies: fuzzer.dependencies,
            path: "Fuzz/\(fuzzer.name)",
            // No top-level code: the files only define the libFuzzer entry point.
            swiftSettings: strict + [.unsafeFlags(["-parse-as-library", "-O"])]
        )
    }
}
