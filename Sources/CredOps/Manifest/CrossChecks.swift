/// Checks that need every file at once: names of environments, duplicate usernames across
/// files, conflicting prune modes, a password for every environment a credential goes to.
struct CrossChecks {
    let manifests: [Manifest]
    let environments: [EnvironmentConfig]
    let schemas: [String: ResourceSchema]
    /// An environment file could not be read: "applies nowhere" would only repeat that.
    var environmentsIncomplete = false

    func run() -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        let names = environments.map(\.name.rawValue)

        func checkKnown(_ env: Located<EnvironmentName>, provider: String, what: String) {
            guard let config = environments.first(where: { $0.name == env.value }) else {
                var message = "\(what) names environment '\(env.value)', which has no environment file"
                if let s = Suggestion.closest(to: env.value.rawValue, among: names) { message += " (did you mean '\(s)'?)" }
                diagnostics.append(.error(message, at: env.location))
                return
            }
            if config.provider != provider {
                diagnostics.append(.error("environment '\(env.value)' uses provider \(config.provider), not \(provider)", at: env.location))
            }
        }

        for manifest in manifests {
            for env in manifest.environments ?? [] { checkKnown(env, provider: manifest.provider, what: "the manifest") }
            let manifestEnvs = applicableEnvironments(of: manifest)
            if manifestEnvs.isEmpty && manifest.environments == nil && !environmentsIncomplete {
                diagnostics.append(.warning("no environment uses provider \(manifest.provider); this manifest applies nowhere", at: manifest.location))
            }
            for credential in manifest.credentials {
                // Formatted only for a message: most credentials have none.
                var what: String { "credential '\(credential.key)'" }
                for env in credential.environments ?? [] {
                    checkKnown(env, provider: manifest.provider, what: what)
                    if let restricted = manifest.environments, !restricted.contains(where: { $0.value == env.value }),
                       environments.contains(where: { $0.name == env.value }) {
                        diagnostics.append(.error("\(what) names environment '\(env.value)', but its manifest applies only to \(restricted.map(\.value.rawValue).joined(separator: ", "))", at: env.location))
                    }
                }
                for (env, location) in credential.overrideLocations.isEmpty ? [] : credential.overrideLocations.sorted(by: { $0.key < $1.key }) {
                    if !environments.contains(where: { $0.name == env }) {
                        var message = "overrides name environment '\(env)', which has no environment file"
                        if let s = Suggestion.closest(to: env.rawValue, among: names) { message += " (did you mean '\(s)'?)" }
                        diagnostics.append(.error(message, at: location))
                    } else if !manifestEnvs.contains(env) || !credential.applies(to: env) {
                        diagnostics.append(.warning("overrides.\(env) has no effect: \(what) does not apply to \(env)", at: location))
                    }
                }
                for env in manifestEnvs where credential.applies(to: env) && schemas[manifest.provider]?.capabilities.secret.isDeclared != false {
                    let hasPassword: Bool
                    if let override = credential.overrides[env] {
                        let values = credential.values.overlaid(with: override)
                        hasPassword = values.password != nil || values.passwordDeclared
                    } else {
                        hasPassword = credential.values.password != nil || credential.values.passwordDeclared
                    }
                    if !hasPassword {
                        diagnostics.append(.error("\(what) has no password for environment \(env): add password: { fromEnv: NAME }, or overrides.\(env).password", at: credential.location))
                    }
                }
            }
        }
        diagnostics += duplicateUsernames()
        diagnostics += conflictingPrune()
        diagnostics += sharedServerProjects()
        diagnostics += sharedDeliveryFiles()
        return diagnostics
    }

    /// Two credentials whose secrets would go to one file: the second overwrites the first, and
    /// the first one's consumers read a secret that is not theirs.
    private func sharedDeliveryFiles() -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for env in environments {
            var first: [String: (CredentialKey, SourceLocation)] = [:]
            for manifest in manifests where manifest.provider == env.provider && manifest.applies(to: env.name) {
                for credential in manifest.credentials where credential.applies(to: env.name) {
                    guard let delivery = credential.delivery ?? manifest.delivery,
                          case .file(let path, _, _) = delivery.template.resolve(environment: env.name, project: manifest.project, name: credential.key).sink
                    else { continue }
                    if let (other, location) = first[path] {
                        diagnostics.append(.error("credential '\(credential.key)' would deliver to the same file as '\(other)' (at \(location)) in environment \(env.name): "
                                                  + "\(path); put {name} (and {project}) in the path", at: credential.location))
                    } else {
                        first[path] = (credential.key, credential.location)
                    }
                }
            }
        }
        return diagnostics
    }

    /// Two manifest projects that reach one project of one server (through `projects:`) would
    /// each see the other's credentials as no longer declared, and delete them in turn.
    private func sharedServerProjects() -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        for env in environments {
            var first: [ProjectName: (ProjectName, SourceLocation)] = [:]
            var firstUnmapped: (ProjectName, SourceLocation)?
            var reported = Set<ProjectName>()
            for manifest in manifests where manifest.provider == env.provider && manifest.applies(to: env.name) {
                let server = env.serverProject(for: manifest.project)
                let unmapped = schemas[env.provider]?.capabilities.unmappedProjectsShareDefault == true && env.projects[manifest.project] == nil
                if unmapped, let (project, location) = firstUnmapped, project != manifest.project, reported.insert(manifest.project).inserted {
                    diagnostics.append(.error("projects \(project) (at \(location)) and \(manifest.project) are mapped to nothing in environment \(env.name) (\(env.file)), "
                                              + "so both go to its default unit, where each would take the other's credentials for unmanaged ones; map them under projects:",
                                              at: manifest.projectLocation))
                    continue
                }
                if unmapped && firstUnmapped == nil { firstUnmapped = (manifest.project, manifest.projectLocation) }
                if let (project, location) = first[server] {
                    if project != manifest.project && reported.insert(manifest.project).inserted {
                        diagnostics.append(.error("projects \(project) (at \(location)) and \(manifest.project) are both \(server) in environment \(env.name) (\(env.file)): each would delete the other's credentials; give them one name, or map them to different projects", at: manifest.projectLocation))
                    }
                } else {
                    first[server] = (manifest.project, manifest.projectLocation)
                }
            }
        }
        return diagnostics
    }

    /// The environments (that exist) a manifest applies to.
    private func applicableEnvironments(of manifest: Manifest) -> [EnvironmentName] {
        environments.filter { $0.provider == manifest.provider && manifest.applies(to: $0.name) }.map(\.name)
    }

    private func duplicateUsernames() -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        // Within a project, anywhere: one name, one declaration.
        struct Key: Hashable {
            var provider: String
            var project: ProjectName
            var username: CredentialKey
        }
        var firstInProject: [Key: SourceLocation] = [:]
        firstInProject.reserveCapacity(manifests.reduce(0) { $0 + $1.credentials.count })
        for manifest in manifests {
            // By index, reading two fields: a `for credential in` copy retains every field.
            for i in manifest.credentials.indices {
                let username = manifest.credentials[i].key
                let key = Key(provider: manifest.provider, project: manifest.project, username: username)
                if let first = firstInProject.updateValue(manifest.credentials[i].location, forKey: key) {
                    firstInProject[key] = first
                    let field = schemas[manifest.provider]?.identifierField ?? "name"
                    diagnostics.append(.error("\(field) '\(username)' is declared twice in project \(manifest.project) (first at \(first)); remove one", at: manifest.credentials[i].location))
                }
            }
        }
        // Across projects, where the provider's usernames are global and both reach one environment.
        for env in environments {
            guard let schema = schemas[env.provider], schema.identifiersAreGlobal else { continue }
            let field = schema.identifierField
            // Where names are not the server's ids (LeadConduit), one account still holds them all.
            let why = schema.capabilities.namespace == .none ? "\(env.provider) has no projects: one account holds every credential"
                : "\(env.provider) \(field)s are unique across projects"
            var first: [CredentialKey: (ProjectName, SourceLocation)] = [:]
            for manifest in manifests where manifest.provider == env.provider && manifest.applies(to: env.name) {
                for credential in manifest.credentials where credential.applies(to: env.name) {
                    if let (project, location) = first[credential.key], project != manifest.project {
                        diagnostics.append(.error("\(field) '\(credential.key)' is declared in projects \(project) (at \(location)) and \(manifest.project), both in environment \(env.name); \(why)", at: credential.location))
                    } else if first[credential.key] == nil {
                        first[credential.key] = (manifest.project, credential.location)
                    }
                }
            }
        }
        return diagnostics
    }

    private func conflictingPrune() -> [Diagnostic] {
        var diagnostics: [Diagnostic] = []
        var first: [String: (PruneMode, SourceLocation)] = [:]
        for manifest in manifests {
            guard let location = manifest.pruneLocation else { continue }
            let key = "\(manifest.provider)\u{0}\(manifest.project)"
            if let (mode, at) = first[key], mode != manifest.prune {
                diagnostics.append(.error("project \(manifest.project) has prune: \(manifest.prune) here but prune: \(mode) at \(at); one project, one prune mode", at: location))
            } else if first[key] == nil {
                first[key] = (manifest.prune, location)
            }
        }
        return diagnostics
    }
}
