import Foundation

extension InputLoader {
    /// Reads every provider profile (`kind: ProviderProfile`) in `directory` (`providers/`
    /// beside `environments/`, where every YAML document must be a profile), checking each as
    /// strictly as a manifest. They live beside the environment files, not among the manifests,
    /// because environment files name them whatever manifests a command reads. A missing
    /// directory holds no profile.
    ///
    /// - Parameter builtIn: the built-in providers' names, which a profile may not take.
    /// - Returns: the profiles that checked out, the files they came from (for a saved plan's
    ///   digests), and every diagnostic.
    public func loadProfiles(directory: String, builtIn: Set<String>) -> (profiles: [ProviderProfile], files: [InputFile], diagnostics: [Diagnostic]) {
        var profiles: [ProviderProfile] = []
        var (files, composed, diagnostics) = sideFiles(directory, kind: .profile)
        for (path, documents) in composed {
            let reader = NodeReader(file: path)
            let parser = ProfileParser(reader: reader, builtIn: builtIn)
            for document in documents {
                // A profile with any error is not used, even where the parser could build one.
                let errorsBefore = reader.diagnostics.filter(\.isError).count
                guard let profile = parser.parse(document), reader.diagnostics.filter(\.isError).count == errorsBefore else { continue }
                if let other = profiles.first(where: { $0.name == profile.name }) {
                    reader.error("provider '\(profile.name)' is described twice (first at \(other.location))", at: document)
                } else {
                    profiles.append(profile)
                }
            }
            diagnostics += reader.diagnostics
        }
        return (profiles, files, diagnostics.sortedForDisplay())
    }

    /// The YAML documents of every file in `directory` (none when it does not exist), with the
    /// files' digests for saved plans, and a diagnostic for each file that cannot be read or
    /// composed.
    func sideFiles(_ directory: String, kind: InputFile.Kind) -> (files: [InputFile], composed: [(path: String, documents: [YAMLNode])], diagnostics: [Diagnostic]) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else { return ([], [], []) }
        var files: [InputFile] = []
        var composed: [(path: String, documents: [YAMLNode])] = []
        var diagnostics: [Diagnostic] = []
        for path in Self.walk(directory) {
            switch read(path) {
            case .success(let bytes):
                files.append(InputFile(path: path, kind: kind, sha256: Self.sha256(bytes)))
                switch compose(bytes, path: path) {
                case .success(let documents): composed.append((path, documents))
                case .failure(let d): diagnostics.append(d)
                }
            case .failure(let d):
                diagnostics.append(d)
            }
        }
        return (files, composed, diagnostics)
    }
}
