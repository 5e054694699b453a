import Foundation

/// Reads `deliver:` and `rotateAfter:` and checks a sink before anything runs: placeholders,
/// a file's format and that it stays inside the repository (or an allowed root), and that a
/// command can be found.
struct DeliveryParser {
    static let keys = ["file", "command", "timeout", "env"]
    /// Commands that do not say otherwise must finish within a minute.
    static let defaultTimeout = 60

    let reader: NodeReader
    let options: LoadOptions
    /// The manifest's directory: relative paths are relative to it.
    let directory: String

    /// The manifest's directory as an absolute path.
    private var base: String { SecureFiles.absolutePath(directory.isEmpty ? "." : directory) }

    func parse(_ node: YAMLNode) -> DeclaredDelivery? {
        guard let map = reader.mapping(node, what: "deliver") else { return nil }
        reader.rejectUnknownKeys(map, allowed: Self.keys)
        let file = map.entry("file"), command = map.entry("command")
        switch (file, command) {
        case (nil, nil):
            reader.error("deliver needs file: PATH (a .env or .json file) or command: [PROGRAM, ARG...]", at: node)
            return nil
        case (.some, .some):
            reader.error("deliver takes file or command, not both", at: node)
            return nil
        case (let file?, nil):
            if let timeout = map.entry("timeout") { reader.error("timeout is for a command; a file is written at once", at: timeout.keyNode) }
            if let env = map.entry("env") { reader.error("env is for a command", at: env.keyNode) }
            return filePath(file.value).map { DeclaredDelivery(.file(path: $0, directory: base, roots: allowedRoots()), at: reader.location(file.value)) }
        case (nil, let command?):
            var timeout = Self.defaultTimeout
            if let entry = map.entry("timeout") {
                guard let seconds = reader.duration(entry.value, field: "timeout", range: 1...3600) else { return nil }
                timeout = seconds
            }
            var names: [String] = []
            if let env = map.entry("env") {
                guard let items = reader.stringList(env.value, field: "env") else { return nil }
                for (name, node) in items {
                    guard SecretReferenceParser.isVariableName(name) else {
                        reader.error("env lists variable names to pass to the command (letters, digits and _), found '\(TextSafety.escaped(name))'", at: node)
                        return nil
                    }
                    names.append(name)
                }
            }
            return argv(command.value).map {
                DeclaredDelivery(.command(argv: $0, timeoutSeconds: timeout, directory: base, environment: names), at: reader.location(command.value))
            }
        }
    }

    /// `rotateAfter: 90d` in seconds.
    func rotation(_ node: YAMLNode) -> Located<Int>? {
        reader.duration(node, field: "rotateAfter", range: 3600...(3650 * 86_400)).map { Located($0, at: reader.location(node)) }
    }

    /// `overlap: 24h` in seconds (0 to 30 days).
    func overlap(_ node: YAMLNode) -> Located<Int>? {
        reader.duration(node, field: "overlap", range: 0...(30 * 86_400)).map { Located($0, at: reader.location(node)) }
    }

    /// The delivery a credential ends up with: its own or the manifest's; one is required, and
    /// a name or project that a file path would use must be a single path segment.
    /// - Parameter written: a `deliver:` is written for it (perhaps refused already), so a
    ///   missing one is not reported again.
    func check(_ credential: inout ManifestCredential, defaults: DeclaredDelivery?, project: ProjectName?, at node: YAMLNode, written: Bool) {
        guard let delivery = credential.delivery ?? defaults else {
            if written { return }
            reader.error("credential '\(credential.key)' has a secret the server generates and nowhere to deliver it: add "
                         + "deliver: { file: secrets/{environment}/{name}.env } or deliver: { command: [PROGRAM, ...] } to it or to the manifest", at: node)
            return
        }
        credential.delivery = delivery
        guard case .file(let path, _, _) = delivery.template else { return }
        let used = Set(DeliveryTemplate.placeholderNames(in: path).names)
        for (placeholder, value) in [("name", credential.key.rawValue), ("project", project?.rawValue ?? "")] where used.contains(placeholder) {
            if value.contains("/") || value.contains("\\") {
                reader.error("\(placeholder) '\(value)' holds a slash, and deliver.file puts {\(placeholder)} into a path (\(delivery.location)); "
                             + "rename it or write the path without {\(placeholder)}", at: node)
            }
        }
    }

    // MARK: Pieces

    private func filePath(_ node: YAMLNode) -> String? {
        guard let path = reader.string(node, field: "file") else { return nil }
        guard !path.isEmpty, checkPlaceholders(path, node: node) else {
            if path.isEmpty { reader.error("file must name a file", at: node) }
            return nil
        }
        let lower = path.lowercased()
        guard lower.hasSuffix(".env") || lower.hasSuffix(".json") else {
            reader.error("file must end in .env (CLIENT_ID=... lines) or .json (one object), found '\(TextSafety.escaped(String(path.suffix(40))))'", at: node)
            return nil
        }
        // Placeholders filled with a plain word: a path that leaves the roots with them would
        // leave them with any value (values never hold a slash, checked per credential).
        let sample = DeliveryTemplate.fill(path, ["environment": "e", "project": "p", "name": "n"])
        let absolute = ((sample.hasPrefix("/") ? sample : (base as NSString).appendingPathComponent(sample)) as NSString).standardizingPath
        let roots = allowedRoots()
        guard roots.contains(where: { SecureFiles.isInside(absolute, directory: $0) }) else {
            reader.error("file must be inside the repository (\(roots[0])), the working directory, or a directory named in CREDOPS_DELIVERY_ROOTS; "
                         + "'\(TextSafety.escaped(path))' is not", at: node)
            return nil
        }
        return path
    }

    private func argv(_ node: YAMLNode) -> [String]? {
        guard let items = reader.stringList(node, field: "command") else { return nil }
        guard let first = items.first else {
            reader.error("command must name a program: [PROGRAM, ARG...]", at: node)
            return nil
        }
        var ok = true
        for (text, itemNode) in items where !checkPlaceholders(text, node: itemNode) { ok = false }
        guard ok else { return nil }
        let program = first.value
        if program.contains("{") {
            reader.error("the program of a command cannot hold a placeholder", at: first.node)
            return nil
        }
        var argv = items.map(\.value)
        if program.contains("/") {
            let absolute = ((program.hasPrefix("/") ? program : (base as NSString).appendingPathComponent(program)) as NSString).standardizingPath
            guard FileManager.default.isExecutableFile(atPath: absolute) else {
                reader.error("command '\(TextSafety.escaped(program))' is not an executable file (\(absolute))", at: first.node)
                return nil
            }
            argv[0] = absolute
        } else if Self.findOnPath(program) == nil {
            reader.error("command '\(TextSafety.escaped(program))' is not found on PATH; install it or give its path", at: first.node)
            return nil
        }
        return argv
    }

    private func checkPlaceholders(_ text: String, node: YAMLNode) -> Bool {
        let (names, balanced) = DeliveryTemplate.placeholderNames(in: text)
        guard balanced else {
            reader.error("'\(TextSafety.escaped(text))' has a brace without its pair; placeholders are {environment}, {project} and {name}", at: node)
            return false
        }
        for name in names where !DeliveryTemplate.placeholders.contains(name) {
            var message = "unknown placeholder {\(TextSafety.escaped(name))}"
            if let s = Suggestion.closest(to: name, among: DeliveryTemplate.placeholders) { message += " (did you mean {\(s)}?)" }
            reader.error(message + "; placeholders are {environment}, {project} and {name}", at: node)
            return false
        }
        return true
    }

    /// The repository holding the manifest (the nearest directory with `.git`, else the
    /// manifest's own directory), the working directory, then the roots the user allowed.
    private func allowedRoots() -> [String] {
        let start = base
        var dir = start
        var repository = start
        while true {
            if FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent(".git")) {
                repository = dir
                break
            }
            let parent = (dir as NSString).deletingLastPathComponent
            if parent == dir || parent.isEmpty { break }
            dir = parent
        }
        return [repository, SecureFiles.absolutePath(".")] + options.deliveryRoots.filter { !$0.isEmpty }.map(SecureFiles.absolutePath)
    }

    static func findOnPath(_ program: String, path: String? = ProcessInfo.processInfo.environment["PATH"]) -> String? {
        for dir in (path ?? "/usr/bin:/bin").split(separator: ":") where !dir.isEmpty {
            let candidate = "\(dir)/\(program)"
            if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
        }
        return nil
    }
}
