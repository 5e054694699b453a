// fuzz-manifest: bytes -> YAMLComposer.compose -> ManifestParser and EnvironmentParser on the
// composed documents (as InputLoader drives them, in memory) -> CrossChecks -> desired state;
// the same documents as provider profiles (ProfileParser, then the profile's schema and a desired
// state under it) and as policies (PolicyParser, then PolicyChecker on what loaded).
//
// Checks: nothing crashes (ASan included, libyaml is instrumented too), no input takes more than
// 1 s (-timeout=1), every diagnostic points at a real position (line, column >= 1), and
// every instant the loader accepts prints back to the same instant.

@testable import CredOps
import ApinizerProvider
import FuzzSupport
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let documents: [YAMLNode]
    switch InMemoryLoader.compose(bytes) {
    case .success(let d): documents = d
    case .failure(let error):
        fuzzCheck(error.line >= 1 && error.column >= 1, "YAML error at \(error.line):\(error.column): \(error.message)")
        return 0
    }

    // As a manifest (a file named on the command line: every document is read).
    let (manifests, manifestDiagnostics) = InMemoryLoader.manifests(documents, path: "fuzz.yaml")

    // As an environment file (the loader takes exactly one document; every one is tried here).
    var environments: [EnvironmentConfig] = []
    var diagnostics = manifestDiagnostics
    for document in documents {
        let (config, problems) = InMemoryLoader.environment(document, path: "environments/fuzz.yaml", defaultName: "fuzz")
        diagnostics += problems
        if let config { environments.append(config) }
    }
    for diagnostic in diagnostics {
        if let location = diagnostic.location {
            fuzzCheck(location.line >= 1 && location.column >= 1, "diagnostic at \(location.line):\(location.column): \(diagnostic.message)")
        }
        _ = diagnostic.description
    }
    _ = diagnostics.sortedForDisplay()

    // Instants accepted by the loader must survive the API's own format (what is sent, planned, shown).
    for manifest in manifests {
        for credential in manifest.credentials {
            for values in [credential.values] + Array(credential.overrides.values) {
                for (name, value) in values.fields {
                    if case .instant(let ms?) = value {
                        let text = Timestamp.format(ms)
                        fuzzCheck(Timestamp.parse(text) == ms, "\(name): instant \(ms) formats as \(text), which reads back as \(String(describing: Timestamp.parse(text)))")
                    }
                }
            }
        }
    }

    // As a provider profile (providers/) and as a policies file (policies/), each document as
    // loadProfiles / loadPolicies read them.
    let profiles = InMemoryLoader.profiles(documents, path: "providers/fuzz.yaml")
    let policies = InMemoryLoader.policies(documents, path: "policies/fuzz.yaml")
    for diagnostic in profiles.diagnostics + policies.diagnostics {
        if let location = diagnostic.location {
            fuzzCheck(location.line >= 1 && location.column >= 1, "diagnostic at \(location.line):\(location.column): \(diagnostic.message)")
        }
        _ = diagnostic.description
    }

    // What InputLoader.load does next: cross checks against the environments, then the desired
    // state of each environment (defaults and overrides applied).
    var byName: [EnvironmentName: EnvironmentConfig] = [:]
    for env in environments + [InMemoryLoader.fakeEnvironment("dev"), InMemoryLoader.fakeEnvironment("production")] where byName[env.name] == nil {
        byName[env.name] = env
    }
    let allEnvironments = byName.values.sorted { $0.name < $1.name }
    _ = InMemoryLoader.crossChecks(manifests: manifests, environments: allEnvironments).sortedForDisplay()
    let inputs = Inputs(manifests: manifests, environments: allEnvironments, files: [], skippedFiles: [])
    for env in allEnvironments {
        let desired = inputs.desired(for: env, schema: ApinizerProvider.credentialSchema)
        for project in desired.projects {
            for credential in project.credentials {
                _ = credential.resource.fields.count
            }
        }
    }

    // A profile that loaded becomes a schema: the manifests read under it, and their desired state.
    var schemas = InMemoryLoader.schemas
    for profile in profiles.profiles {
        let schema = profile.schema
        let names = schema.fields.map(\.name)
        fuzzCheck(Set(names).count == names.count && !names.contains(schema.identifierField) && !schema.identifierField.isEmpty,
                  "profile \(profile.name): fields \(names.map(visible)) beside the key \(visible(schema.identifierField))")
        schemas[profile.name] = schema
        let env = InMemoryLoader.fakeEnvironment("dev", provider: profile.name)
        let (underProfile, _) = InMemoryLoader.manifests(documents, path: "fuzz.yaml", schemas: schemas)
        let desired = Inputs(manifests: underProfile, environments: [env], files: [], skippedFiles: []).desired(for: env, schema: schema)
        for project in desired.projects { _ = project.credentials.count }
    }
    // Policies that loaded are checked against what loaded.
    if !policies.policies.isEmpty {
        let checker = PolicyChecker(policies: policies.policies, now: Date(timeIntervalSince1970: 1_750_000_000))
        _ = checker.check(inputs, environments: allEnvironments, schemas: schemas)
        for env in allEnvironments { _ = checker.deleteLimit(for: env) }
    }
    return 0
}

/// One-time set-up outside the 1 s budget: the first use of ICU, Foundation's JSON and date
/// formatters, the Swift runtime's metadata caches takes seconds under ASan.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let warmUp = Array("apiVersion: credops/v1\nkind: CredentialSet\nproject: p\ncredentials:\n  - username: u\n    fullName: U\n    email: u@example.com\n    password: { fromEnv: PW }\n    expireDate: 2027-06-30T23:59:59.000Z\n    ipList: [10.0.0.0/8]\n".utf8)
    for _ in 0..<2 { _ = warmUp.withUnsafeBufferPointer { fuzz($0.baseAddress!, $0.count) } }
    return 0
}
