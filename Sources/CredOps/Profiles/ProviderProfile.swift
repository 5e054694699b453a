import Foundation

/// A provider described in YAML (`kind: ProviderProfile`): how one REST API lays out its
/// credentials, so that the generic engine can manage them without Swift code. Parsed and
/// checked by `ProfileParser`; turned into the engine's `ResourceSchema` by `schema`.
///
/// A profile names paths only, never a host: every request goes to the environment's URL, and
/// nothing in a profile can change where credentials are sent or how TLS is checked.
public struct ProviderProfile: Sendable {
    /// The name environment files and manifests use (`provider: leadexec`).
    public var name: String
    public var location: SourceLocation
    public var description: String?
    /// The auth kinds an environment may use with this API, and the token call's defaults.
    public var auth: Auth
    public var namespace: Namespace
    public var paths: Paths
    public var list: Listing
    public var identity: Identity
    public var update: UpdateStyle
    /// Every field but the key and the secret, in the order plans show them.
    public var fields: [Field]
    /// The key field (what manifests name a credential by).
    public var key: Field
    public var secret: SecretSpec
    /// Where an error answer's message is (a JSON pointer); nil: the whole body, cut short.
    public var errorMessage: JSONPointer?
    /// The header that says how long to wait after a 429 (default `Retry-After`).
    public var retryAfterHeader: String

    public struct Auth: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable { case bearer, basic, apiKey, oauth2 }
        public var kinds: [Kind]
        /// The OAuth2 token call's path and body format, when `oauth2` is allowed.
        public var tokenPath: String?
        public var tokenBody: TokenBodyFormat
        /// The header an API key goes in (`X-API-Key`); nil: as the HTTP Basic password with
        /// the user `API`.
        public var apiKeyHeader: String?
    }

    /// How a request says which namespace it is about.
    public enum Namespace: Sendable, Equatable {
        /// One space per account: `project` is credops' own grouping.
        case none
        /// `{namespace}` in the paths.
        case pathSegment
        /// A header carries it.
        case header(String)
        /// A query parameter carries it.
        case query(String)
        /// A call selects it and the server answers with a cookie sent with later calls
        /// (LeadVibe's `POST /org-units/active` and `activeOu`).
        case select(path: String, bodyField: String, cookie: String)
    }

    public struct Paths: Sendable, Equatable {
        /// The collection: list and create (`/v1/credentials`, `/projects/{namespace}/credentials`).
        public var collection: PathTemplate
        /// One credential: update and delete (holds `{id}`).
        public var item: PathTemplate
    }

    public struct Listing: Sendable, Equatable {
        /// Where the credentials are in a list answer ("" for the whole answer).
        public var items: JSONPointer
        public var paging: Paging
    }

    public enum Paging: Sendable, Equatable {
        case none
        /// `?page=N&size=S` from `first` until a page holds fewer than `size`.
        case pageNumber(parameter: String, sizeParameter: String?, size: Int, first: Int)
        /// `?cursor=C` with C from the answer, until it is absent or empty.
        case cursor(parameter: String, next: JSONPointer)
        /// A full next-page path in the answer (same host only), until absent.
        case nextLink(JSONPointer)
    }

    public struct Identity: Sendable, Equatable {
        /// Where the server's id is in a credential object.
        public var id: JSONPointer
        /// True when the key is the id (names unique, replace deletes first).
        public var keyIsID: Bool
    }

    public enum UpdateStyle: String, Sendable, Equatable {
        /// `PUT` of the whole object.
        case putFull = "put"
        /// `PATCH` of the changed fields.
        case patchChanged = "patch"
    }

    public struct Field: Sendable, Equatable {
        public var name: String
        public var pointer: JSONPointer
        public var kind: FieldSpec.Kind
        public var required: Bool
        public var defaultValue: FieldValue?
        public var minLength: Int?
        public var maxLength: Int?
        public var oneOf: [String]?
        public var immutable: Bool
        public var readOnly: Bool
        /// A switch the API turns with calls of its own (`POST /credentials/{id}/enable`)
        /// instead of in the object: then it is read from the object but never sent in a body.
        public var calls: SwitchCalls?
        /// The time after which the server stops accepting the credential (`credops expiring`).
        public var expiry: Bool = false
        public var location: SourceLocation
    }

    /// The two calls that turn a bool field on and off.
    public struct SwitchCalls: Sendable, Equatable {
        public var method: HTTPMethod
        public var on: PathTemplate
        public var off: PathTemplate
    }

    public enum SecretSpec: Sendable, Equatable {
        case none
        /// Declared in manifests under `name`, sent at `pointer`; `readable` when reads return it.
        case declared(name: String, pointer: JSONPointer, readable: Bool)
        /// Made by the server: each delivered value (`client_secret`) and where the create
        /// answer holds it; `secrets` name the ones that are secret (the rest are public, like a
        /// client id).
        case generated(values: [(name: String, pointer: JSONPointer)], secrets: Set<String>)

        public static func == (a: SecretSpec, b: SecretSpec) -> Bool {
            switch (a, b) {
            case (.none, .none): true
            case let (.declared(n1, p1, r1), .declared(n2, p2, r2)): n1 == n2 && p1 == p2 && r1 == r2
            case let (.generated(v1, s1), .generated(v2, s2)): v1.map(\.name) == v2.map(\.name) && v1.map(\.pointer) == v2.map(\.pointer) && s1 == s2
            default: false
            }
        }
    }

    /// The engine's view of this provider's credentials.
    public var schema: ResourceSchema {
        let specs = fields.map { field in
            FieldSpec(field.name, field.kind, required: field.required, nonEmpty: field.required && field.kind == .string,
                      default: field.defaultValue ?? Self.emptyValue(field.kind), minLength: field.minLength, maxLength: field.maxLength,
                      oneOf: field.oneOf, immutable: field.immutable, readOnly: field.readOnly)
        }
        let secretMode: ProviderCapabilities.SecretMode
        let secretName: String
        switch secret {
        case .none: (secretMode, secretName) = (.none, "secret")
        case .declared(let name, _, let readable): (secretMode, secretName) = (readable ? .declaredReadable : .declaredWriteOnly, name)
        case .generated(let values, let secrets): (secretMode, secretName) = (.generated, values.first { secrets.contains($0.name) }?.name ?? "secret")
        }
        let namespaceMode: ProviderCapabilities.Namespace = namespace == .none ? .none : .named()
        let length = (key.minLength ?? 1)...(key.maxLength ?? 10_000)
        var schema = ResourceSchema(
            identifierField: key.name, secretField: secretName, fields: specs, grantsField: "access", grantTypes: [],
            identifiersAreGlobal: namespace == .none,
            capabilities: ProviderCapabilities(namespace: namespaceMode, secret: secretMode, identity: identity.keyIsID ? .keyIsID : .serverAssigned),
            emulatorSettings: [EmulatorSettingSpec("latencyMilliseconds", .integer(0...60_000)), EmulatorSettingSpec("namespaces", .strings)],
            identifierLength: key.minLength != nil || key.maxLength != nil ? length : nil,
            createdAtField: fields.first { $0.readOnly && ["created_at", "createdAt", "created"].contains($0.name) }?.name)
        schema.authKinds = auth.kinds.map(\.rawValue)
        schema.expiryField = fields.first(where: \.expiry)?.name
        return schema
    }

    /// The value a field of `kind` holds when nothing is given.
    public static func emptyValue(_ kind: FieldSpec.Kind) -> FieldValue {
        switch kind {
        case .string: .string("")
        case .bool: .bool(false)
        case .stringSet: .set([])
        case .instant: .instant(nil)
        }
    }
}

/// A JSON pointer (RFC 6901): `""` is the whole document, `/a/b` a member of a member.
public struct JSONPointer: Sendable, Hashable, CustomStringConvertible {
    /// The reference tokens, unescaped.
    public var tokens: [String]

    /// Parses `text`; nil when it is not a pointer (no leading `/`, or a bad `~` escape).
    public init?(_ text: String) {
        if text.isEmpty {
            tokens = []
            return
        }
        guard text.hasPrefix("/") else { return nil }
        var result: [String] = []
        for raw in text.dropFirst().split(separator: "/", omittingEmptySubsequences: false) {
            var token = ""
            var chars = raw.makeIterator()
            while let c = chars.next() {
                guard c == "~" else {
                    token.append(c)
                    continue
                }
                switch chars.next() {
                case "0": token.append("~")
                case "1": token.append("/")
                default: return nil
                }
            }
            result.append(token)
        }
        tokens = result
    }

    public var description: String {
        tokens.map { "/" + $0.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1") }.joined()
    }
}

/// A request path with placeholders (`/projects/{namespace}/credentials/{id}`): a path only,
/// never a host, a query or a fragment.
public struct PathTemplate: Sendable, Hashable, CustomStringConvertible {
    public var text: String
    /// The placeholders it holds.
    public var placeholders: Set<String>

    public static let known: Set<String> = ["id", "namespace"]

    public var description: String { text }

    /// Why `text` cannot be a path template, or nil.
    public static func problem(_ text: String) -> String? {
        guard text.hasPrefix("/") else { return "must start with / (a path on the environment's URL)" }
        if text.hasPrefix("//") || text.contains("://") { return "names a host; a profile names paths only, requests go to the environment's URL" }
        if text.contains("?") || text.contains("#") { return "holds a query or fragment; a path only (query parameters are set by namespace: { query: })" }
        if text.unicodeScalars.contains(where: { $0.value < 33 || $0.value == 127 || $0 == "\\" }) { return "holds a space, control character or backslash" }
        let (names, balanced) = DeliveryTemplate.placeholderNames(in: text)
        guard balanced else { return "has a brace without its pair" }
        if let unknown = names.first(where: { !known.contains($0) }) { return "has an unknown placeholder {\(unknown)}; paths know {id} and {namespace}" }
        // A placeholder is a whole segment: `/x{id}` could be bent into another path.
        for segment in text.split(separator: "/") where segment.contains("{") && !(segment.hasPrefix("{") && segment.hasSuffix("}")) {
            return "has a placeholder inside a segment ('\(segment)'); a placeholder must be a whole segment"
        }
        for segment in text.split(separator: "/") where segment == "." || segment == ".." {
            return "has a '\(segment)' segment"
        }
        return nil
    }

    public init?(_ text: String) {
        guard Self.problem(text) == nil else { return nil }
        self.text = text
        self.placeholders = Set(DeliveryTemplate.placeholderNames(in: text).names)
    }
}
