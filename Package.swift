// swift-tools-version: 6.1
import PackageDescription

/// Swift 6 language mode everywhere; `ExistentialAny` keeps protocol costs visible.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "credops",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "credops", targets: ["credops"]),
        .executable(name: "credops-bench", targets: ["credops-bench"]),
        .library(name: "CredOps", targets: ["CredOps"]),
        // Products so that the fuzz harness in Fuzz/ (a package of its own) can reach them.
        .library(name: "ApinizerProvider", targets: ["ApinizerProvider"]),
        .library(name: "ApinizerSandbox", targets: ["ApinizerSandbox"]),
        .library(name: "LeadConduitProvider", targets: ["LeadConduitProvider"]),
        .library(name: "LeadVibeProvider", targets: ["LeadVibeProvider"]),
    ],
    dependencies: [
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        // Used directly by the sandbox (also reached through Hummingbird).
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        // Delivery commands: argv without a shell, stdin, collected output, a timeout.
        .package(url: "https://github.com/swiftlang/swift-subprocess", from: "1.0.2"),
        // The reconcile service's metrics: the API in the engine (request latency), Prometheus
        // text exposition in the CLI.
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C shim over libcurl: non-variadic setopt/getinfo helpers and response collection in C.
        .target(
            name: "CCurl",
            linkerSettings: [.linkedLibrary("curl")]
        ),
        // The system SQLite (libsqlite3-dev); see README for why not a bundled copy.
        .systemLibrary(name: "CSQLite", pkgConfig: "sqlite3", providers: [.apt(["libsqlite3-dev"])]),
        // The engine: loading, planning, applying, state contracts, HTTP. Never prints.
        .target(
            name: "CredOps",
            dependencies: [
                "CCurl",
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Subprocess", package: "swift-subprocess"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        // Plans, reports and diagnostics rendered as text, JSON and markdown.
        .target(name: "CredOpsRender", dependencies: ["CredOps"], swiftSettings: swiftSettings),
        // The Apinizer Management API provider.
        .target(name: "ApinizerProvider", dependencies: ["CredOps"], swiftSettings: swiftSettings),
        // The LeadConduit (ActiveProspect) provider.
        .target(name: "LeadConduitProvider", dependencies: ["CredOps"], swiftSettings: swiftSettings),
        // The LeadVibe provider: Organizational Units by cookie, secrets the server generates.
        .target(name: "LeadVibeProvider", dependencies: ["CredOps"], swiftSettings: swiftSettings),
        // The Apinizer emulator (Hummingbird): routes, validation, store, faults.
        // Also the generic emulator of provider profiles (hence CredOps, for the profile model).
        .target(
            name: "ApinizerSandbox",
            dependencies: [
                "CredOps",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: swiftSettings
        ),
        // The default state store: SQLite.
        .target(name: "CredOpsStateSQLite", dependencies: ["CredOps", "CSQLite"], swiftSettings: swiftSettings),
        // The shared state store for teams: PostgreSQL.
        .target(
            name: "CredOpsStatePostgres",
            dependencies: [
                "CredOps",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The command-line interface: parses, composes, renders. The only place that prints.
        .executableTarget(
            name: "credops",
            dependencies: [
                "CredOps", "CredOpsRender", "ApinizerProvider", "LeadConduitProvider", "LeadVibeProvider", "ApinizerSandbox",
                "CredOpsStateSQLite", "CredOpsStatePostgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Benchmarks that print figures (never timed tests).
        .executableTarget(
            name: "credops-bench",
            dependencies: [
                "CredOps", "CredOpsRender", "ApinizerProvider", "ApinizerSandbox", "CredOpsStateSQLite", "CredOpsTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "CredOpsTestSupport",
            dependencies: ["CredOps", "ApinizerSandbox"],
            path: "Tests/CredOpsTestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "CredOpsTests",
            dependencies: ["CredOps", "CredOpsTestSupport", "ApinizerProvider", "LeadConduitProvider", "LeadVibeProvider", "ApinizerSandbox",
                           "CredOpsStateSQLite", "CredOpsStatePostgres", "CredOpsRender"],
            exclude: ["Corpus", "Fixtures", "Golden"],
            swiftSettings: swiftSettings
        ),
        // The built binary against sandboxes on ephemeral ports.
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["CredOpsTestSupport", "ApinizerSandbox", "CredOps", "CredOpsStateSQLite", "CredOpsStatePostgres", "credops"],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "ApinizerSandboxTests", dependencies: ["ApinizerSandbox", "CredOps", "CredOpsTestSupport"], swiftSettings: swiftSettings),
    ]
)
