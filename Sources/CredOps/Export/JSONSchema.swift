import Foundation

/// JSON Schemas (draft-07) of manifests and environment files, for editors
/// (`# yaml-language-server: $schema=...`) and for checks in CI. Built from the providers'
/// credential schemas, so a new field shows up here by itself.
public enum JSONSchemaDocument {
    public enum Kind: String, CaseIterable, Sendable { case manifest, environment, profile, policy }

    /// - Parameter provider: for manifests, the provider whose credentials the schema describes
    ///   (nil: Apinizer, the provider a manifest without `provider:` is for).
    public static func document(_ kind: Kind, schemas: [String: ResourceSchema], provider: String? = nil) -> [String: Any] {
        switch kind {
        case .manifest: return manifest(schemas: schemas, provider: provider)
        case .environment: return environment(schemas: schemas)
        case .profile: return profile()
        case .policy: return policy(schemas: schemas)
        }
    }

    public static func json(_ kind: Kind, schemas: [String: ResourceSchema], provider: String? = nil) -> String {
        let data = (try? JSONSerialization.data(withJSONObject: document(kind, schemas: schemas, provider: provider),
                                                options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? Data()
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static var secretReference: [String: Any] { [
        "description": "A secret's source: an environment variable or a file (relative to the file that names it). Never the value itself.",
        "oneOf": [
            ["type": "object", "additionalProperties": false, "required": ["fromEnv"],
             "properties": ["fromEnv": ["type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$"]]],
            ["type": "object", "additionalProperties": false, "required": ["fromFile"],
             "properties": ["fromFile": ["type": "string", "minLength": 1]]],
        ],
    ] }

    /// One schema per provider (a file each in schema/): editors complete the fields of the
    /// provider a manifest names.
    static func manifest(schemas: [String: ResourceSchema], provider: String?) -> [String: Any] {
        let name = provider ?? "apinizer"
        let schema = schemas[name] ?? schemas.values.first!
        var fields: [String: Any] = [:]
        for spec in schema.declarableFields { fields[spec.name] = property(spec) }
        var credentialProperties = fields
        var identifier: [String: Any] = ["type": "string", "minLength": schema.identifierLength?.lowerBound ?? 1, "description":
            schema.capabilities.identity == .serverAssigned
                ? "The credential's name, matched on the server; credops remembers the id the server gives it."
                : "The credential's name; unique on the server."]
        if let bounds = schema.identifierLength { identifier["maxLength"] = bounds.upperBound }
        credentialProperties[schema.identifierField] = identifier
        let deliveryProperties: [String: Any] = [
            "deliver": ["$ref": "#/definitions/deliver"],
            "rotateAfter": ["$ref": "#/definitions/duration", "description": "Replace the credential when its secret is this old (e.g. 90d)."],
            "overlap": ["$ref": "#/definitions/duration", "description": "Keep a replaced credential this long after its successor is delivered (e.g. 24h)."],
        ]
        let delivers = schema.capabilities.secret != .none
        if delivers { credentialProperties.merge(deliveryProperties) { a, _ in a } }
        if schema.capabilities.secret.isDeclared {
            credentialProperties[schema.secretField] = ["$ref": "#/definitions/secretOrGenerate"]
        }
        if schema.hasGrants { credentialProperties[schema.grantsField] = ["$ref": "#/definitions/access"] }
        credentialProperties["environments"] = ["type": "array", "items": ["type": "string"], "minItems": 1,
                                                "description": "Only these environments (default: wherever the manifest applies)."]
        var overrideProperties = fields
        if schema.capabilities.secret.isDeclared { overrideProperties[schema.secretField] = ["$ref": "#/definitions/secretOrGenerate"] }
        if schema.hasGrants { overrideProperties[schema.grantsField] = ["$ref": "#/definitions/access"] }
        credentialProperties["overrides"] = [
            "type": "object", "description": "Values for one environment, by environment name.",
            "additionalProperties": ["type": "object", "additionalProperties": false, "properties": overrideProperties],
        ]
        var topProperties: [String: Any] = [
            "apiVersion": ["const": "credops/v1"],
            "kind": ["const": "CredentialSet"],
            "provider": ["const": name],
            "project": ["type": "string", "minLength": 1, "description": schema.capabilities.namespace == .none
                ? "credops' own grouping (the API has no projects): prune: managed deletes only what credops manages for it."
                : "The project (namespace) on the server these credentials belong to."],
            "environments": ["type": "array", "items": ["type": "string"], "minItems": 1, "uniqueItems": true],
            "prune": ["enum": PruneMode.allCases.filter { $0 != .all || schema.capabilities.namespace != .none }.map(\.rawValue),
                      "description": "managed (default): delete what credops manages and no longer declared; all: delete every undeclared credential (not where the API has no projects); none: delete nothing."],
            "credentials": ["type": "array", "items": ["$ref": "#/definitions/credential"]],
        ]
        var definitions: [String: Any] = [
            "secretReference": secretReference,
            "access": ["type": "array", "items": [
                "type": "object", "additionalProperties": false, "required": ["name", "type"],
                "properties": ["name": ["type": "string", "minLength": 1], "type": ["enum": schema.grantTypes]],
            ]],
            "credential": ["type": "object", "additionalProperties": false,
                           "required": [schema.identifierField] + schema.fields.filter(\.isRequired).map(\.name),
                           "properties": credentialProperties],
        ]
        if delivers {
            topProperties.merge(deliveryProperties) { a, _ in a }
            definitions["duration"] = ["type": "string", "pattern": "^[0-9]+[dhms]?$"]
            definitions["deliver"] = deliver
        }
        if schema.capabilities.secret.isDeclared {
            definitions["secretOrGenerate"] = ["oneOf": [
                ["$ref": "#/definitions/secretReference"],
                ["type": "object", "additionalProperties": false, "required": ["generate"],
                 "description": "credops makes the secret (CSPRNG, letters and digits) and delivers it to deliver:; it keeps none.",
                 "properties": ["generate": ["type": ["object", "null"], "additionalProperties": false,
                                             "properties": ["length": ["type": "integer", "minimum": 16, "maximum": 256]]]]],
            ]]
        }
        return [
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://credops.dev/schema/manifest\(provider.map { ".\($0)" } ?? "").schema.json",
            "title": "credops manifest (CredentialSet, \(name))",
            "description": "The credentials one project must hold. See README.md.",
            "type": "object",
            "additionalProperties": false,
            "required": ["apiVersion", "kind", "project", "credentials"] + (provider == nil ? [] : ["provider"]),
            "properties": topProperties,
            "definitions": definitions,
        ]
    }

    /// Where a generated secret goes: a private file, or a command that reads it on stdin.
    static var deliver: [String: Any] { [
        "description": "Where the secret the server generates goes: {environment}, {project} and {name} are filled in.",
        "oneOf": [
            ["type": "object", "additionalProperties": false, "required": ["file"],
             "properties": ["file": ["type": "string", "pattern": "\\.(env|json)$",
                                     "description": "A .env or .json file (mode 0600, written atomically), relative to this manifest."]]],
            ["type": "object", "additionalProperties": false, "required": ["command"],
             "properties": ["command": ["type": "array", "items": ["type": "string"], "minItems": 1,
                                        "description": "A program and its arguments (no shell); the pair arrives as one JSON object on stdin."],
                            "timeout": ["type": "string", "pattern": "^[0-9]+[hms]?$"]]],
        ],
    ] }

    static func property(_ spec: FieldSpec) -> [String: Any] {
        switch spec.kind {
        case .string:
            var p: [String: Any] = ["type": spec.isRequired ? "string" : ["string", "null"]]
            if spec.format == .email { p["format"] = "email" }
            if spec.isNonEmpty { p["minLength"] = 1 }
            rules(spec, into: &p)
            return p
        case .bool:
            return ["type": "boolean"]
        case .stringSet:
            var item: [String: Any] = ["type": "string"]
            if spec.format == .ipOrCIDR {
                item["pattern"] = "^([0-9]{1,3}(\\.[0-9]{1,3}){3}(/[0-9]{1,2})?|[0-9A-Fa-f:.]*:[0-9A-Fa-f:.]*(/[0-9]{1,3})?)$"
                item["description"] = "An IPv4 or IPv6 address or CIDR range."
            }
            rules(spec, into: &item)
            return ["type": ["array", "null"], "items": item, "uniqueItems": true]
        case .instant:
            return ["type": ["string", "null"], "format": "date-time", "description": "ISO 8601 with a zone, e.g. 2027-06-30T23:59:59.000Z; null for never."]
        }
    }

    /// Length bounds and allowed values of text (or of each element of a set).
    static func rules(_ spec: FieldSpec, into p: inout [String: Any]) {
        if let min = spec.minLength { p["minLength"] = max(min, p["minLength"] as? Int ?? 0) }
        if let max = spec.maxLength { p["maxLength"] = max }
        if let allowed = spec.oneOf { p["enum"] = allowed }
        if spec.isImmutable { p["description"] = "Cannot change once created: a new value replaces the credential." }
    }

    /// The `sandbox:` settings every provider's emulator takes (their union; the loader checks
    /// them against the environment's own provider).
    static func emulatorProperties(_ schemas: [String: ResourceSchema]) -> [String: Any] {
        var properties: [String: Any] = [:]
        for schema in schemas.values {
            for spec in schema.emulatorSettings {
                switch spec.kind {
                case .strings: properties[spec.name] = ["type": "array", "items": ["type": "string"]]
                case .stringMap: properties[spec.name] = ["type": "object", "additionalProperties": ["type": "string"]]
                case .integer(let range): properties[spec.name] = ["type": "integer", "minimum": range.lowerBound, "maximum": range.upperBound]
                case .bool: properties[spec.name] = ["type": "boolean"]
                }
            }
        }
        return properties
    }

    static func environment(schemas: [String: ResourceSchema]) -> [String: Any] {
        let providers = schemas.keys.sorted()
        return [
            "$schema": "http://json-schema.org/draft-07/schema#",
            "$id": "https://credops.dev/schema/environment.schema.json",
            "title": "credops environment file",
            "description": "One target server and how to reach it. See README.md.",
            "type": "object",
            "additionalProperties": false,
            "required": ["url"],
            "properties": [
                "name": ["type": "string", "pattern": "^[A-Za-z0-9._-]+$"],
                "provider": ["enum": providers],
                "url": ["type": "string", "pattern": "^(https?://|sandbox://)", "description": "The manager URL, or sandbox://NAME for the built-in emulator."],
                "auth": ["type": "object", "additionalProperties": false, "properties": [
                    "bearer": ["$ref": "#/definitions/secretReference"],
                    "oauth2": ["type": "object", "additionalProperties": false, "required": ["clientId", "clientSecret"], "properties": [
                        "clientId": ["oneOf": [["type": "string"], ["$ref": "#/definitions/secretReference"]]],
                        "clientSecret": ["$ref": "#/definitions/secretReference"],
                        "tokenPath": ["type": "string", "pattern": "^/", "description": "The token call's path on this server (default: the provider's)."],
                        "body": ["enum": TokenBodyFormat.allCases.map(\.rawValue), "description": "form (default) or json."],
                    ]],
                    "basic": ["type": "object", "additionalProperties": false, "required": ["username", "password"], "properties": [
                        "username": ["type": "string", "pattern": "^[^:]*$"],
                        "password": ["$ref": "#/definitions/secretReference"],
                    ]],
                    "apiKey": ["$ref": "#/definitions/secretReference"],
                ], "maxProperties": 1],
                "projects": ["type": "object", "additionalProperties": ["type": "string", "minLength": 1],
                             "description": "Manifest project name -> the project's name on this server."],
                "concurrency": ["type": "integer", "minimum": 1, "maximum": 256],
                "timeoutSeconds": ["type": "integer", "minimum": 1, "maximum": 3600],
                "connectTimeoutSeconds": ["type": "integer", "minimum": 1, "maximum": 600],
                "protected": ["type": "boolean"],
                "allowInsecureHTTP": ["type": "boolean"],
                "tls": ["type": "object", "additionalProperties": false, "properties": [
                    "caFile": ["type": "string"], "certFile": ["type": "string"], "keyFile": ["type": "string"],
                    "insecureSkipVerify": ["type": "boolean"],
                ]],
                "retry": ["type": "object", "additionalProperties": false, "properties": [
                    "maxRetries": ["type": "integer", "minimum": 0, "maximum": 10],
                    "initialBackoffMilliseconds": ["type": "integer", "minimum": 1],
                    "maxBackoffMilliseconds": ["type": "integer", "minimum": 1],
                    "retryAfterCapSeconds": ["type": "integer", "minimum": 0, "maximum": 3600],
                ]],
                "sandbox": ["type": "object", "additionalProperties": false, "properties": emulatorProperties(schemas)],
            ],
            "definitions": ["secretReference": secretReference],
        ]
    }
}
