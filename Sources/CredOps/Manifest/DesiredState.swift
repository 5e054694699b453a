/// What one environment should hold, project by project, built from the manifests for it.
public struct DesiredEnvironment: Sendable {
    public var environment: EnvironmentConfig
    /// Sorted by project name.
    public var projects: [DesiredProject]
}

/// The credentials one project should hold in one environment.
public struct DesiredProject: Sendable {
    /// As the manifests name it.
    public var project: ProjectName
    /// As this environment's server names it.
    public var serverProject: ProjectName
    public var prune: PruneMode
    /// Sorted by username.
    public var credentials: [DesiredCredential]
    /// Where the project is declared (the first manifest), for messages.
    public var location: SourceLocation

    public init(project: ProjectName, serverProject: ProjectName, prune: PruneMode, credentials: [DesiredCredential], location: SourceLocation) {
        self.project = project
        self.serverProject = serverProject
        self.prune = prune
        self.credentials = credentials
        self.location = location
    }
}

/// One credential as it should be in one environment: defaults and overrides applied.
public struct DesiredCredential: Sendable {
    public var resource: Resource
    /// Where the declared secret comes from (nil where the server generates it).
    public var secret: SecretReference?
    /// Where a generated secret goes, placeholders filled for this environment.
    public var delivery: Delivery?
    /// Seconds after which a generated secret is replaced.
    public var rotateAfter: Int?
    /// Declared access grants, sorted; nil when the credential does not declare `access`.
    public var grants: [AccessGrant]?
    /// Where the credential is declared.
    public var location: SourceLocation

    public var key: CredentialKey { resource.id }

    public init(resource: Resource, secret: SecretReference?, grants: [AccessGrant]?, location: SourceLocation,
                delivery: Delivery? = nil, rotateAfter: Int? = nil) {
        self.delivery = delivery
        self.rotateAfter = rotateAfter
        self.resource = resource
        self.secret = secret
        self.grants = grants
        self.location = location
    }
}

extension Inputs {
    /// The desired state of `environment`: every manifest and credential that applies to it,
    /// with overrides for it laid over the base values and schema defaults filled in.
    public func desired(for environment: EnvironmentConfig, schema: ResourceSchema) -> DesiredEnvironment {
        var byProject: [ProjectName: DesiredProject] = [:]
        for manifest in manifests where manifest.provider == environment.provider && manifest.applies(to: environment.name) {
            var project = byProject[manifest.project] ?? DesiredProject(
                project: manifest.project, serverProject: environment.serverProject(for: manifest.project),
                prune: .managed, credentials: [], location: manifest.projectLocation)
            if manifest.pruneLocation != nil { project.prune = manifest.prune }
            for credential in manifest.credentials where credential.applies(to: environment.name) {
                let values = credential.overrides[environment.name].map { credential.values.overlaid(with: $0) } ?? credential.values
                var fields = values.fields
                for spec in schema.fields where spec.isDeclarable && fields[spec.name] == nil { fields[spec.name] = spec.defaultValue }
                // Cross checks guarantee a password for every environment a credential applies to,
                // and the parser a delivery for every generated secret.
                let generated = schema.capabilities.secret == .generated || values.generateLength != nil
                if schema.capabilities.secret.isDeclared && values.password == nil && values.generateLength == nil { continue }
                let delivery = generated ? (credential.delivery ?? manifest.delivery) : nil
                if generated && delivery == nil { continue }
                var sink = delivery?.template.resolve(environment: environment.name, project: manifest.project, name: credential.key)
                sink?.overlapSeconds = (credential.overlap ?? manifest.overlap)?.value ?? 0
                sink?.secretLength = values.generateLength
                project.credentials.append(DesiredCredential(
                    resource: Resource(id: credential.key, fields: fields), secret: values.password,
                    grants: values.grants, location: credential.location,
                    delivery: sink,
                    rotateAfter: (credential.rotateAfter ?? manifest.rotateAfter)?.value))
            }
            byProject[manifest.project] = project
        }
        let projects = byProject.values.map { p -> DesiredProject in
            var p = p
            p.credentials.sort { $0.key < $1.key }
            return p
        }.sorted { $0.project < $1.project }
        return DesiredEnvironment(environment: environment, projects: projects)
    }
}
