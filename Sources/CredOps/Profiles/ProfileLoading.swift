import Foundation

extension InputLoader {
    /// Reads every provider profile (`kind: ProviderProfile`) under `directory` (`providers/`),
    /// checking each as strictly as a manifest. A missing directory holds no profile.
    ///
    /// - Parameter builtIn: the built-in providers' names, which a profile may not take.
    /// - Returns: the profiles that checked out, and every diagnostic.
    public func loadProfiles(directory: String, builtIn: Set<String>) -> (profiles: [ProviderProfile], diagnostics: [Diagnostic]) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDir), isDir.boolValue else { return ([], []) }
        var profiles: [ProviderProfile] = []
        var diagnostics: [Diagnostic] = []
        for path in Self.walk(directory) {
            let documents: [YAMLNode]
            switch read(path).flatMap({ compose($0, path: path) }) {
            case .success(let d): documents = d
            case .failure(let d):
                diagnostics.append(d)
                continue
            }
            let reader = NodeReader(file: path)
            let parser = ProfileParser(reader: reader, builtIn: builtIn)
            for document in documents {
                guard let profile = parser.parse(document) else { continue }
                if let other = profiles.first(where: { $0.name == profile.name }) {
                    reader.error("provider '\(profile.name)' is described twice (first at \(other.location))", at: document)
                } else {
                    profiles.append(profile)
                }
            }
            diagnostics += reader.diagnostics
        }
        return (profiles, diagnostics.sortedForDisplay())
    }
}
