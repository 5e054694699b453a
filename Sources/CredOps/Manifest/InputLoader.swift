import Crypto
import Foundation

/// Finds, reads and checks manifests and environment files. Touches only the file system.
public struct InputLoader: Sendable {
    private let schemas: [String: ResourceSchema]
    private let options: LoadOptions

    /// - Parameter schemas: the credential schema of each known provider, by provider name.
    public init(schemas: [String: ResourceSchema], options: LoadOptions = LoadOptions()) {
        self.schemas = schemas
        self.options = options
    }

    /// Loads every manifest under `paths` and every environment file in `environmentsDirectory`.
    /// - Returns: the inputs, or nil when any error was found; every diagnostic either way.
    public func load(paths: [String], environmentsDirectory: String) -> (inputs: Inputs?, diagnostics: [Diagnostic]) {
        var diagnostics: [Diagnostic] = []

        // Environment files first: manifests are checked against them.
        let (environments, environmentFiles) = loadEnvironments(directory: environmentsDirectory, diagnostics: &diagnostics)
        var files = environmentFiles
        let environmentsIncomplete = diagnostics.hasErrors

        // Manifests.
        var manifests: [Manifest] = []
        var skipped: [String] = []
        let envDirStandard = URL(fileURLWithPath: environmentsDirectory).standardizedFileURL.path
        for path in paths {
            var isDir: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
                diagnostics.append(.error("\(path): no such file or directory", address: path))
                continue
            }
            let candidates: [(String, Bool)] = isDir.boolValue
                ? Self.walk(path).filter { !URL(fileURLWithPath: $0).standardizedFileURL.path.hasPrefix(envDirStandard + "/") }.map { ($0, false) }
                : [(path, true)]
            for (file, explicit) in candidates {
                let (loaded, problems, input, isManifest) = loadManifestFile(path: file, explicit: explicit)
                if !isManifest { skipped.append(file); continue }
                diagnostics += problems
                manifests += loaded
                if let input { files.append(input) }
            }
        }
        if manifests.isEmpty && !diagnostics.hasErrors {
            diagnostics.append(.error("no manifests (apiVersion: credops/v1, kind: CredentialSet) found in \(paths.joined(separator: ", "))",
                                      address: paths.first ?? "."))
        }

        diagnostics += CrossChecks(manifests: manifests, environments: environments, schemas: schemas,
                                   environmentsIncomplete: environmentsIncomplete).run()
        guard !diagnostics.hasErrors else { return (nil, diagnostics.sortedForDisplay()) }
        let inputs = Inputs(manifests: manifests, environments: environments, files: files, skippedFiles: skipped)
        return (inputs, diagnostics.sortedForDisplay())
    }

    /// Loads only the environment files of `directory` (for commands that take no manifest).
    public func loadEnvironments(directory: String) -> (environments: [EnvironmentConfig], diagnostics: [Diagnostic]) {
        var diagnostics: [Diagnostic] = []
        let (environments, _) = loadEnvironments(directory: directory, diagnostics: &diagnostics)
        return (environments, diagnostics.sortedForDisplay())
    }

    private func loadEnvironments(directory environmentsDirectory: String, diagnostics: inout [Diagnostic]) -> ([EnvironmentConfig], [InputFile]) {
        var files: [InputFile] = []
        var environments: [EnvironmentConfig] = []
        let envDir = Self.displayPath(environmentsDirectory)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: environmentsDirectory, isDirectory: &isDirectory), isDirectory.boolValue {
            let names = ((try? FileManager.default.contentsOfDirectory(atPath: environmentsDirectory)) ?? [])
                .filter { Self.isYAML($0) && !$0.hasPrefix(".") }.sorted()
            for name in names {
                let path = Self.join(envDir, name)
                let stem = String(name[..<name.lastIndex(of: ".")!])
                let (configs, problems, file) = loadEnvironmentFile(path: path, defaultName: stem)
                diagnostics += problems
                environments += configs
                if let file { files.append(file) }
            }
            if names.isEmpty {
                diagnostics.append(.error("no environment files (*.yaml) in \(envDir); add one per target server", address: envDir))
            }
        } else {
            diagnostics.append(.error("environments directory \(envDir) does not exist; pass --environments DIR", address: envDir))
        }
        var byName: [EnvironmentName: EnvironmentConfig] = [:]
        for env in environments {
            if let first = byName[env.name] {
                diagnostics.append(.error("environment '\(env.name)' is defined twice (also in \(first.file)); names must be unique", at: env.location))
            } else {
                byName[env.name] = env
            }
        }
        return (byName.values.sorted { $0.name < $1.name }, files)
    }

    // MARK: Files

    /// The file's bytes, read through one descriptor with the size limit applied to what is
    /// read: a symbolic link to a huge file costs no more than the limit, and a FIFO or device
    /// is refused instead of read.
    func read(_ path: String) -> Result<[UInt8], Diagnostic> {
        let start = SourceLocation(file: path, line: 1, column: 1)
        let limit = options.limits.maxFileBytes
        switch SecureFiles.readRegularFile(path, limit: limit) {
        case .success(let file):
            return .success(file.bytes)
        case .failure(.tooLarge(let size)):
            return .failure(.error("the file is \(size / 1024 / 1024) MiB, over the \(limit / 1024 / 1024) MiB limit; split it", at: start))
        case .failure(.notRegular):
            return .failure(.error("not a regular file (a directory, FIFO or device); name a YAML file", at: start))
        case .failure(.system(let code)):
            return .failure(.error("cannot read the file (\(String(cString: strerror(code))))", at: start))
        }
    }

    func compose(_ bytes: [UInt8], path: String) -> Result<[YAMLNode], Diagnostic> {
        do throws(YAMLError) {
            return .success(try YAMLComposer.compose(bytes, limits: options.limits))
        } catch {
            return .failure(.error(error.message, at: SourceLocation(file: path, line: error.line, column: error.column)))
        }
    }

    private func loadEnvironmentFile(path: String, defaultName: String) -> ([EnvironmentConfig], [Diagnostic], InputFile?) {
        let bytes: [UInt8]
        switch read(path) {
        case .success(let b): bytes = b
        case .failure(let d): return ([], [d], nil)
        }
        let file = InputFile(path: path, kind: .environment, sha256: Self.sha256(bytes))
        let documents: [YAMLNode]
        switch compose(bytes, path: path) {
        case .success(let d): documents = d
        case .failure(let d): return ([], [d], file)
        }
        guard documents.count == 1 else {
            let message = documents.isEmpty ? "the environment file is empty" : "an environment file holds one document; found \(documents.count)"
            return ([], [.error(message, at: SourceLocation(file: path, line: 1, column: 1))], file)
        }
        let reader = NodeReader(file: path)
        let parser = EnvironmentParser(reader: reader, options: options, directory: (path as NSString).deletingLastPathComponent,
                                       providers: schemas.keys.sorted(), emulatorSettings: schemas.mapValues(\.emulatorSettings),
                                       authKinds: schemas.compactMapValues(\.authKinds), defaultName: defaultName)
        let config = parser.parse(documents[0])
        return (config.map { [$0] } ?? [], reader.diagnostics, file)
    }

    private func loadManifestFile(path: String, explicit: Bool) -> ([Manifest], [Diagnostic], InputFile?, Bool) {
        let bytes: [UInt8]
        switch read(path) {
        case .success(let b): bytes = b
        case .failure(let d): return ([], [d], nil, true)
        }
        let file = InputFile(path: path, kind: .manifest, sha256: Self.sha256(bytes))
        let documents: [YAMLNode]
        switch compose(bytes, path: path) {
        case .success(let d): documents = d
        case .failure(let d): return ([], [d], file, true)
        }
        // Inside a directory, YAML that is not ours (a CI pipeline, a Helm chart) is skipped;
        // a file named on the command line is always read as a manifest.
        // Provider profiles (read from providers/ by `loadProfiles`) are skipped the same way.
        if !explicit && (!documents.contains(where: Self.looksLikeManifest) || documents.allSatisfy(Self.isProfile)) {
            return ([], [], nil, false)
        }
        if documents.isEmpty {
            return ([], [.error("the file holds no manifest", at: SourceLocation(file: path, line: 1, column: 1))], file, true)
        }
        let reader = NodeReader(file: path)
        let parser = ManifestParser(reader: reader, schemas: schemas, options: options,
                                    directory: (path as NSString).deletingLastPathComponent)
        let manifests = documents.compactMap { parser.parse($0) }
        return (manifests, reader.diagnostics, file, true)
    }

    static func looksLikeManifest(_ document: YAMLNode) -> Bool {
        guard case .mapping(let pairs) = document.content else { return false }
        return pairs.contains { ["apiVersion", "kind"].contains($0.key.scalar?.value ?? "") }
    }

    /// True when the document says `kind: ProviderProfile` or `kind: Policies` (read from
    /// `providers/` and `policies/`, not as manifests).
    static func isProfile(_ document: YAMLNode) -> Bool {
        guard case .mapping(let pairs) = document.content else { return false }
        return pairs.contains { $0.key.scalar?.value == "kind" && [ProfileParser.kind, PolicyParser.kind].contains($0.value.scalar?.value ?? "") }
    }

    static func isYAML(_ name: String) -> Bool { name.hasSuffix(".yaml") || name.hasSuffix(".yml") }

    /// Every YAML file below `directory`, sorted, hidden files and folders skipped.
    static func walk(_ directory: String) -> [String] {
        var result: [String] = []
        let root = displayPath(directory)
        guard let enumerator = FileManager.default.enumerator(atPath: directory) else { return [] }
        while let relative = enumerator.nextObject() as? String {
            let last = (relative as NSString).lastPathComponent
            if last.hasPrefix(".") {
                if (enumerator.fileAttributes?[.type] as? FileAttributeType) == .typeDirectory { enumerator.skipDescendants() }
                continue
            }
            if isYAML(last), (enumerator.fileAttributes?[.type] as? FileAttributeType) != .typeDirectory {
                result.append(join(root, relative))
            }
        }
        return result.sorted()
    }

    static func displayPath(_ path: String) -> String {
        var p = path
        while p.count > 1 && p.hasSuffix("/") { p.removeLast() }
        return p
    }

    static func join(_ directory: String, _ name: String) -> String {
        directory == "." ? name : (directory.hasSuffix("/") ? directory + name : directory + "/" + name)
    }

    static func sha256(_ bytes: [UInt8]) -> String {
        Hex.encode(SHA256.hash(data: bytes))
    }
}
