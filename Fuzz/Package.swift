// swift-tools-version:5.4
//
// libFuzzer harness for credops, kept apart from the normal build: build it with
// `scripts/fuzz build` (swift build --package-path Fuzz --scratch-path Fuzz/.build
// -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address ...). See README.md.
//
// Why tools version 5.4: from 5.5 on, SwiftPM links every Swift executable on Linux with
// `--defsym main=<module>_main` (so tests can link executables), and a fuzz target has no main
// of its own: libFuzzer brings it. Under 5.4 the executables link as plain programs.
//
import PackageDescription

/// A fuzz target is one file defining LLVMFuzzerTestOneInput and no main.
let fuzzTargetFlags: [SwiftSetting] = [.unsafeFlags(["-parse-as-library"])]

let credOps = Target.Dependency.product(name: "CredOps", package: "credops")
let provider = Target.Dependency.product(name: "ApinizerProvider", package: "credops")
let sandbox = Target.Dependency.product(name: "ApinizerSandbox", package: "credops")
let leadConduit = Target.Dependency.product(name: "LeadConduitProvider", package: "credops")
let leadVibe = Target.Dependency.product(name: "LeadVibeProvider", package: "credops")

let package = Package(
    name: "credops-fuzz",
    dependencies: [
        .package(name: "credops", path: ".."),
    ],
    targets: [
        // Shared helpers: fuzz-byte reader, property check, in-memory manifest loading.
        .target(name: "FuzzSupport", dependencies: [credOps, provider]),

        .executableTarget(name: "fuzz-manifest", dependencies: [credOps, provider, "FuzzSupport"],
                          swiftSettings: fuzzTargetFlags),
        .executableTarget(name: "fuzz-provider-json", dependencies: [credOps, provider, leadConduit, leadVibe, "FuzzSupport"],
                          swiftSettings: fuzzTargetFlags),
        .executableTarget(name: "fuzz-saved-plan", dependencies: [credOps, "FuzzSupport"],
                          swiftSettings: fuzzTargetFlags),
        .executableTarget(name: "fuzz-sandbox", dependencies: [sandbox, "FuzzSupport"],
                          swiftSettings: fuzzTargetFlags),
        .executableTarget(name: "fuzz-export-roundtrip", dependencies: [credOps, provider, "FuzzSupport"],
                          swiftSettings: fuzzTargetFlags),
    ]
)
