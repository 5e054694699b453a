import Foundation

/// Turns one composed `kind: ProviderProfile` document into a `ProviderProfile`, reporting every
/// problem at its place, as strictly as manifests are read.
struct ProfileParser {
    static let kind = "ProviderProfile"
    static let topKeys = ["apiVersion", "kind", "name", "description", "auth", "namespace", "paths", "list", "identity", "update",
                          "key", "fields", "secret", "errors", "rateLimit"]
    static let fieldKeys = ["name", "pointer", "type", "required", "default", "minLength", "maxLength", "oneOf", "immutable", "readOnly", "calls", "expiry"]
    static let types: [String: FieldSpec.Kind] = ["string": .string, "bool": .bool, "stringSet": .stringSet, "instant": .instant]
    /// Keys a manifest credential holds besides the profile's fields.
    static let reservedNames = Set(["environments", "overrides", "access"] + ResourceSchema.deliveryKeys)

    let reader: NodeReader
    /// Names taken by the built-in providers: a profile may not shadow one.
    let builtIn: Set<String>

    func parse(_ root: YAMLNode) -> ProviderProfile? {
        guard let top = reader.mapping(root, what: "the profile") else { return nil }
        reader.rejectUnknownKeys(top, allowed: Self.topKeys)
        reader.checkHeader(top, root: root, kind: Self.kind)

        var name: String?
        if let node = required(top, "name", in: root, hint: "the name environment files and manifests use: provider: NAME"),
           let v = reader.string(node, field: "name") {
            if !EnvironmentParser.isValidName(v) || v.contains(".") {
                reader.error("name must be letters, digits, - and _ (it names the provider in files), found '\(TextSafety.escaped(v))'", at: node)
            } else if builtIn.contains(v) {
                reader.error("name '\(v)' is a built-in provider's; choose another", at: node)
            } else {
                name = v
            }
        }
        let description = top["description"].flatMap { reader.string($0, field: "description") }
        let auth = top["auth"].flatMap(parseAuth) ?? (top["auth"] == nil ? ProviderProfile.Auth(kinds: [.bearer], tokenPath: nil, tokenBody: .form, apiKeyHeader: nil) : nil)
        let namespace = top["namespace"].map(parseNamespace) ?? ProviderProfile.Namespace.none
        let paths = required(top, "paths", in: root, hint: "paths: { collection: /credentials, item: /credentials/{id} }").flatMap { parsePaths($0, namespace: namespace) }
        let list = top["list"].map(parseList) ?? ProviderProfile.Listing(items: JSONPointer("")!, paging: .none)
        let identity = required(top, "identity", in: root, hint: "identity: { id: /id, keyIsID: false }").flatMap(parseIdentity)
        var update = ProviderProfile.UpdateStyle.putFull
        if let node = top["update"], let v = reader.string(node, field: "update") {
            if let style = ProviderProfile.UpdateStyle(rawValue: v) { update = style } else { reader.oneOf(v, ["put", "patch"], field: "update", at: node) }
        }
        let key = required(top, "key", in: root, hint: "key: { name: description, pointer: /description }").flatMap { parseField($0, isKey: true) }
        var fields: [ProviderProfile.Field] = []
        if let node = top["fields"] {
            if case .sequence(let items) = node.content {
                for item in items { if let field = parseField(item, isKey: false) { fields.append(field) } }
            } else {
                reader.error("fields must be a list of { name, pointer, type, ... }, found \(node.kindDescription)", at: node)
            }
        }
        let secret = top["secret"].flatMap(parseSecret) ?? (top["secret"] == nil ? ProviderProfile.SecretSpec.none : nil)
        var errorMessage: JSONPointer?
        if let node = top["errors"], let map = reader.mapping(node, what: "errors") {
            reader.rejectUnknownKeys(map, allowed: ["message"])
            errorMessage = map["message"].flatMap { pointer($0, field: "errors.message") }
        }
        var retryAfter = "Retry-After"
        if let node = top["rateLimit"], let map = reader.mapping(node, what: "rateLimit") {
            reader.rejectUnknownKeys(map, allowed: ["retryAfterHeader"])
            if let h = map["retryAfterHeader"], let v = headerName(h, field: "retryAfterHeader") { retryAfter = v }
        }

        // Names must tell fields, the key and the secret apart, and leave manifests their own keys.
        var seen: [String: SourceLocation] = [:]
        var all = fields
        if let key { all.insert(key, at: 0) }
        let secretNames: [String] = switch secret {
        case .declared(let n, _, _)?: [n]
        case .generated(let values, _)?: values.map(\.name)
        default: []
        }
        for field in all {
            if Self.reservedNames.contains(field.name) || secretNames.contains(field.name) {
                reader.error("field name '\(field.name)' is taken (\(Self.reservedNames.contains(field.name) ? "manifests use it" : "it names the secret")); choose another", at: field.location)
            } else if let first = seen[field.name] {
                reader.error("field '\(field.name)' is declared twice (first at line \(first.line))", at: field.location)
            } else {
                seen[field.name] = field.location
            }
        }
        for field in fields {
            guard let calls = field.calls else { continue }
            for template in [calls.on, calls.off] where template.placeholders.contains("namespace") != (namespace == .pathSegment) {
                reader.error(namespace == .pathSegment ? "calls of \(field.name) must hold {namespace} like the other paths (namespace: pathSegment)"
                                                       : "calls of \(field.name) hold {namespace}, but namespace is not pathSegment", at: field.location)
                break
            }
        }
        // Nothing read into a plan, a state record or an export may sit at, above or inside a
        // secret: a field at /credentials would carry the password inside it.
        let secretPointers: [(name: String, pointer: JSONPointer)] = switch secret {
        case .declared(let n, let p, _)?: [(n, p)]
        case .generated(let values, let secrets)?: values.filter { secrets.contains($0.name) }
        default: []
        }
        var shown: [(what: String, pointer: JSONPointer, location: SourceLocation)] = all.map { ("field \($0.name)", $0.pointer, $0.location) }
        if let identity, let node = top["identity"] { shown.append(("identity.id", identity.id, reader.location(node))) }
        if case .generated(let values, let secrets)?  = secret, let node = top["secret"] {
            shown += values.filter { !secrets.contains($0.name) }.map { ("the public value \($0.name)", $0.pointer, reader.location(node)) }
        }
        for item in shown {
            guard let hit = secretPointers.first(where: { Self.overlaps($0.pointer, item.pointer) }) else { continue }
            reader.error("\(item.what) is read at \(item.pointer.description.isEmpty ? "the whole object" : item.pointer.description), which holds the secret \(hit.name) (at \(hit.pointer)) or lies inside it: it would show in plans and exports; point it elsewhere",
                         at: item.location)
        }
        if let second = fields.filter(\.expiry).dropFirst().first {
            reader.error("field \(second.name) is the second marked expiry; a credential has one expiry", at: second.location)
        }
        if let key, key.kind != .string || key.readOnly {
            reader.error("the key must be a string field a manifest declares (not read-only)", at: key.location)
        }

        guard let name, let auth, let paths, let identity, let key, let secret else { return nil }
        return ProviderProfile(name: name, location: reader.location(root), description: description, auth: auth, namespace: namespace,
                               paths: paths, list: list, identity: identity, update: update, fields: fields, key: key, secret: secret,
                               errorMessage: errorMessage, retryAfterHeader: retryAfter)
    }

    /// True when one pointer is the other or lies inside it.
    static func overlaps(_ a: JSONPointer, _ b: JSONPointer) -> Bool {
        a.tokens.starts(with: b.tokens) || b.tokens.starts(with: a.tokens)
    }

    // MARK: Parts

    private func required(_ map: Mapping, _ key: String, in root: YAMLNode, hint: String) -> YAMLNode? {
        if let node = map[key] { return node }
        reader.error("missing \(key): \(hint)", at: root)
        return nil
    }

    /// A query parameter's name: letters, digits, `_`, `-` and `.`, sent as it is.
    private func queryName(_ node: YAMLNode, field: String) -> String? {
        guard let v = reader.string(node, field: field) else { return nil }
        guard !v.isEmpty, v.count <= 100, v.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "_-.".unicodeScalars.contains($0)) }) else {
            reader.error("\(field) must be a query parameter name (letters, digits, _, - and .), found '\(TextSafety.escaped(v))'", at: node)
            return nil
        }
        return v
    }

    /// A header name: letters, digits and `-`.
    private func headerName(_ node: YAMLNode, field: String) -> String? {
        guard let v = reader.string(node, field: field) else { return nil }
        guard !v.isEmpty, v.count <= 100, v.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "-") }) else {
            reader.error("\(field) must be a header name (letters, digits and -), found '\(TextSafety.escaped(v))'", at: node)
            return nil
        }
        return v
    }

    /// Headers that say where a request goes, who sends it, or how its body is framed: a
    /// profile that could set one could redirect a request through a proxy, replace the
    /// credentials, or smuggle a second request.
    static let reservedHeaders: Set<String> = [
        "host", "authorization", "proxy-authorization", "proxy-connection", "cookie", "set-cookie", "content-type", "content-length",
        "content-encoding", "transfer-encoding", "connection", "keep-alive", "te", "trailer", "upgrade", "expect", "forwarded", "via",
        "origin", "referer", "accept-encoding", "user-agent",
    ]

    /// A header credops sends with the profile's value: a header name that is not one of
    /// `reservedHeaders` (nor `X-Forwarded-*`, `X-Real-IP` or an HTTP/2 pseudo-header).
    private func sentHeaderName(_ node: YAMLNode, field: String, use: String) -> String? {
        guard let v = headerName(node, field: field) else { return nil }
        let lower = v.lowercased()
        if Self.reservedHeaders.contains(lower) || lower.hasPrefix("x-forwarded-") || lower == "x-real-ip" || lower.hasPrefix("proxy-") {
            reader.error("\(field) cannot be \(v): credops sets that header itself; name the API's own header for \(use)", at: node)
            return nil
        }
        return v
    }

    /// A JSON member name a call sends: printable, at most 100 characters.
    private func memberName(_ node: YAMLNode, field: String) -> String? {
        guard let v = reader.string(node, field: field) else { return nil }
        guard !v.isEmpty, v.count <= 100, !v.unicodeScalars.contains(where: { $0.value < 32 || $0.value == 127 || TextSafety.isUnsafe($0) }) else {
            reader.error("\(field) must be a JSON member name (1 to 100 printable characters), found '\(TextSafety.escaped(v))'", at: node)
            return nil
        }
        return v
    }

    /// A cookie's name (an RFC 6265 token: letters, digits and `!#$%&'*+-.^_`|~`).
    private func cookieName(_ node: YAMLNode, field: String) -> String? {
        guard let v = reader.string(node, field: field) else { return nil }
        let allowed = "!#$%&'*+-.^_`|~".unicodeScalars
        guard !v.isEmpty, v.count <= 100, v.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || allowed.contains($0)) }) else {
            reader.error("\(field) must be a cookie name (letters, digits and !#$%&'*+-.^_`|~), found '\(TextSafety.escaped(v))'", at: node)
            return nil
        }
        return v
    }

    private func pointer(_ node: YAMLNode, field: String) -> JSONPointer? {
        guard let text = reader.string(node, field: field) else { return nil }
        guard let p = JSONPointer(text) else {
            reader.error("\(field) must be a JSON pointer such as /data or /error/message (\"\" for the whole answer), found '\(TextSafety.escaped(text))'", at: node)
            return nil
        }
        return p
    }

    /// A path template whose placeholders are among `allowed`.
    private func path(_ node: YAMLNode, field: String, allowed: Set<String> = PathTemplate.known) -> PathTemplate? {
        guard let text = reader.string(node, field: field) else { return nil }
        if let problem = PathTemplate.problem(text) {
            reader.error("\(field) '\(TextSafety.escaped(text))' \(problem)", at: node)
            return nil
        }
        guard let template = PathTemplate(text) else { return nil }
        if let extra = template.placeholders.subtracting(allowed).sorted().first {
            reader.error("\(field) '\(TextSafety.escaped(text))' cannot hold {\(extra)}" + (allowed.isEmpty ? "; it is a fixed path" : "; it knows \(allowed.sorted().map { "{\($0)}" }.joined(separator: " and "))"), at: node)
            return nil
        }
        return template
    }

    private func parseAuth(_ node: YAMLNode) -> ProviderProfile.Auth? {
        guard let map = reader.mapping(node, what: "auth") else { return nil }
        reader.rejectUnknownKeys(map, allowed: ["allowed", "tokenPath", "tokenBody", "apiKeyHeader"])
        var kinds: [ProviderProfile.Auth.Kind] = []
        if let list = map["allowed"], let items = reader.stringList(list, field: "auth.allowed") {
            for (text, item) in items {
                if let kind = ProviderProfile.Auth.Kind(rawValue: text) { kinds.append(kind) } else {
                    reader.oneOf(text, ProviderProfile.Auth.Kind.allCases.map(\.rawValue), field: "auth.allowed", at: item)
                    return nil
                }
            }
            if kinds.isEmpty { reader.error("auth.allowed names no kind of auth", at: list) }
        } else if map["allowed"] == nil {
            reader.error("auth needs allowed: [bearer, basic, apiKey, oauth2] (those environment files may use)", at: node)
        }
        let tokenPath = map["tokenPath"].flatMap { path($0, field: "tokenPath", allowed: []) }
        var body = TokenBodyFormat.form
        if let b = map["tokenBody"], let v = reader.string(b, field: "tokenBody") {
            switch v {
            case "form": body = .form
            case "json": body = .json
            default: reader.oneOf(v, ["form", "json"], field: "tokenBody", at: b)
            }
        }
        if tokenPath != nil && !kinds.contains(.oauth2), let t = map["tokenPath"] {
            reader.error("tokenPath is for oauth2, which auth.allowed does not name", at: t)
        }
        var apiKeyHeader: String?
        if let h = map["apiKeyHeader"], let v = sentHeaderName(h, field: "auth.apiKeyHeader", use: "the key (X-API-Key)") {
            if !kinds.contains(.apiKey) { reader.error("apiKeyHeader is for apiKey, which auth.allowed does not name", at: h) }
            apiKeyHeader = v
        }
        guard !kinds.isEmpty else { return nil }
        return ProviderProfile.Auth(kinds: kinds, tokenPath: tokenPath?.text, tokenBody: body, apiKeyHeader: apiKeyHeader)
    }

    private func parseNamespace(_ node: YAMLNode) -> ProviderProfile.Namespace {
        if let s = node.scalar, !reader.isNull(node) {
            switch s.value {
            case "none": return .none
            case "pathSegment": return .pathSegment
            default:
                reader.oneOf(s.value, ["none", "pathSegment", "{ header: NAME }", "{ query: NAME }", "{ select: ... }"], field: "namespace", at: node)
                return .none
            }
        }
        guard let map = reader.mapping(node, what: "namespace") else { return .none }
        reader.rejectUnknownKeys(map, allowed: ["header", "query", "select"])
        if map.entries.count != 1 {
            reader.error("namespace takes one of header, query or select", at: node)
            return .none
        }
        if let h = map["header"], let v = sentHeaderName(h, field: "namespace.header", use: "the namespace (X-Workspace)") { return .header(v) }
        if let q = map["query"], let v = queryName(q, field: "namespace.query") { return .query(v) }
        if let s = map["select"], let sm = reader.mapping(s, what: "namespace.select") {
            reader.rejectUnknownKeys(sm, allowed: ["path", "bodyField", "cookie"])
            let p = sm["path"].flatMap { path($0, field: "namespace.select.path", allowed: []) }
            let field = sm["bodyField"].flatMap { memberName($0, field: "namespace.select.bodyField") }
            let cookie = sm["cookie"].flatMap { cookieName($0, field: "namespace.select.cookie") }
            guard let p, let field, let cookie else {
                let missing = ["path", "bodyField", "cookie"].filter { sm[$0] == nil }
                if !missing.isEmpty { reader.error("namespace.select needs \(missing.joined(separator: ", ")) (path, bodyField and cookie)", at: s) }
                return .none
            }
            return .select(path: p.text, bodyField: field, cookie: cookie)
        }
        return .none
    }

    private func parsePaths(_ node: YAMLNode, namespace: ProviderProfile.Namespace) -> ProviderProfile.Paths? {
        guard let map = reader.mapping(node, what: "paths") else { return nil }
        reader.rejectUnknownKeys(map, allowed: ["collection", "item"])
        let collection = map["collection"].flatMap { path($0, field: "paths.collection") }
        let item = map["item"].flatMap { path($0, field: "paths.item") }
        if map["collection"] == nil { reader.error("paths needs collection (where credentials are listed and created)", at: node) }
        if map["item"] == nil { reader.error("paths needs item (one credential, with {id})", at: node) }
        guard let collection, let item else { return nil }
        var ok = true
        if !item.placeholders.contains("id") {
            reader.error("paths.item must hold {id}", at: map["item"]!)
            ok = false
        }
        if collection.placeholders.contains("id") {
            reader.error("paths.collection cannot hold {id}", at: map["collection"]!)
            ok = false
        }
        let wantsNamespace = namespace == .pathSegment
        for (template, key) in [(collection, "collection"), (item, "item")] where template.placeholders.contains("namespace") != wantsNamespace {
            reader.error(wantsNamespace ? "paths.\(key) must hold {namespace} (namespace: pathSegment)"
                                        : "paths.\(key) holds {namespace}, but namespace is not pathSegment", at: map[key]!)
            ok = false
        }
        return ok ? ProviderProfile.Paths(collection: collection, item: item) : nil
    }

    private func parseList(_ node: YAMLNode) -> ProviderProfile.Listing {
        var listing = ProviderProfile.Listing(items: JSONPointer("")!, paging: .none)
        guard let map = reader.mapping(node, what: "list") else { return listing }
        reader.rejectUnknownKeys(map, allowed: ["items", "paging"])
        if let i = map["items"], let p = pointer(i, field: "list.items") { listing.items = p }
        guard let paging = map["paging"] else { return listing }
        if let s = paging.scalar, s.value == "none" { return listing }
        guard let pm = reader.mapping(paging, what: "list.paging") else { return listing }
        reader.rejectUnknownKeys(pm, allowed: ["pageNumber", "cursor", "nextLink"])
        if pm.entries.count != 1 {
            reader.error("list.paging takes one of pageNumber, cursor or nextLink (or none)", at: paging)
            return listing
        }
        if let n = pm["pageNumber"], let m = reader.mapping(n, what: "pageNumber") {
            reader.rejectUnknownKeys(m, allowed: ["parameter", "sizeParameter", "size", "first"])
            let parameter = m["parameter"].flatMap { queryName($0, field: "parameter") } ?? "page"
            let sizeParameter = m["sizeParameter"].flatMap { queryName($0, field: "sizeParameter") }
            let size = m["size"].flatMap { reader.integer($0, field: "size", range: 1...10_000) } ?? 100
            let first = m["first"].flatMap { reader.integer($0, field: "first", range: 0...1) } ?? 1
            listing.paging = .pageNumber(parameter: parameter, sizeParameter: sizeParameter, size: size, first: first)
        } else if let c = pm["cursor"], let m = reader.mapping(c, what: "cursor") {
            reader.rejectUnknownKeys(m, allowed: ["parameter", "next"])
            if let next = m["next"].flatMap({ pointer($0, field: "cursor.next") }) {
                listing.paging = .cursor(parameter: m["parameter"].flatMap { queryName($0, field: "parameter") } ?? "cursor", next: next)
            } else if m["next"] == nil {
                reader.error("cursor needs next: the pointer to the next cursor in an answer", at: c)
            }
        } else if let l = pm["nextLink"], let p = pointer(l, field: "nextLink") {
            listing.paging = .nextLink(p)
        }
        return listing
    }

    private func parseIdentity(_ node: YAMLNode) -> ProviderProfile.Identity? {
        guard let map = reader.mapping(node, what: "identity") else { return nil }
        reader.rejectUnknownKeys(map, allowed: ["id", "keyIsID"])
        let keyIsID = map["keyIsID"].flatMap { reader.bool($0, field: "keyIsID") } ?? false
        guard let idNode = map["id"] else {
            reader.error("identity needs id: the JSON pointer to the server's id in a credential", at: node)
            return nil
        }
        return pointer(idNode, field: "identity.id").map { ProviderProfile.Identity(id: $0, keyIsID: keyIsID) }
    }

    private func parseField(_ node: YAMLNode, isKey: Bool) -> ProviderProfile.Field? {
        let what = isKey ? "key" : "a field"
        guard let map = reader.mapping(node, what: what) else { return nil }
        reader.rejectUnknownKeys(map, allowed: isKey ? ["name", "pointer", "minLength", "maxLength"] : Self.fieldKeys)
        guard let nameNode = map["name"] else {
            reader.error("\(what) needs a name", at: node)
            return nil
        }
        guard let name = reader.string(nameNode, field: "name") else { return nil }
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }) else {
            reader.error("a field name must be letters, digits and _, found '\(TextSafety.escaped(name))'", at: nameNode)
            return nil
        }
        let pointerValue = map["pointer"].flatMap { pointer($0, field: "pointer") } ?? JSONPointer("/" + name)!
        var kind = FieldSpec.Kind.string
        if !isKey, let t = map["type"], let v = reader.string(t, field: "type") {
            if let k = Self.types[v] { kind = k } else { reader.oneOf(v, Self.types.keys.sorted(), field: "type", at: t) }
        }
        let minLength = map["minLength"].flatMap { reader.integer($0, field: "minLength", range: 0...100_000) }
        let maxLength = map["maxLength"].flatMap { reader.integer($0, field: "maxLength", range: 1...100_000) }
        if let minLength, let maxLength, minLength > maxLength, let n = map["minLength"] {
            reader.error("minLength \(minLength) is more than maxLength \(maxLength)", at: n)
        }
        var allowed: [String]?
        if let o = map["oneOf"], let items = reader.stringList(o, field: "oneOf") {
            if kind != .string && kind != .stringSet { reader.error("oneOf is for string and stringSet fields", at: o) }
            if items.isEmpty { reader.error("oneOf lists no value", at: o) }
            allowed = items.map(\.value)
        }
        var defaultValue: FieldValue?
        if let d = map["default"] {
            defaultValue = FieldReader(reader: reader).read(d, spec: FieldSpec(name, kind, default: ProviderProfile.emptyValue(kind),
                                                                                minLength: minLength, maxLength: maxLength, oneOf: allowed))
        }
        let isRequired = map["required"].flatMap { reader.bool($0, field: "required") } ?? isKey
        let immutable = map["immutable"].flatMap { reader.bool($0, field: "immutable") } ?? false
        let readOnly = map["readOnly"].flatMap { reader.bool($0, field: "readOnly") } ?? false
        if readOnly && (isRequired || immutable || defaultValue != nil), let r = map["readOnly"] {
            reader.error("a read-only field is the server's: it cannot also be required, immutable or have a default", at: r)
        }
        let expiry = map["expiry"].flatMap { reader.bool($0, field: "expiry") } ?? false
        if expiry && kind != .instant, let e = map["expiry"] {
            reader.error("expiry is for an instant field (type: instant): the time the server stops accepting the credential", at: e)
        }
        var calls: ProviderProfile.SwitchCalls?
        if let c = map["calls"] {
            calls = parseCalls(c)
            if kind != .bool || readOnly || immutable {
                reader.error("calls are for a bool switch the API turns with calls of its own (not read-only, not immutable)", at: c)
            }
        }
        return ProviderProfile.Field(name: name, pointer: pointerValue, kind: kind, required: isRequired, defaultValue: defaultValue,
                                     minLength: minLength, maxLength: maxLength, oneOf: allowed, immutable: immutable, readOnly: readOnly,
                                     calls: calls, expiry: expiry && kind == .instant, location: reader.location(nameNode))
    }

    /// `calls: { method: POST, on: /credentials/{id}/enable, off: /credentials/{id}/disable }`.
    private func parseCalls(_ node: YAMLNode) -> ProviderProfile.SwitchCalls? {
        guard let map = reader.mapping(node, what: "calls") else { return nil }
        reader.rejectUnknownKeys(map, allowed: ["method", "on", "off"])
        var method = HTTPMethod.post
        if let m = map["method"], let v = reader.string(m, field: "calls.method") {
            if let known = HTTPMethod(rawValue: v), [.post, .put, .patch].contains(known) { method = known } else { reader.oneOf(v, ["POST", "PUT", "PATCH"], field: "calls.method", at: m) }
        }
        let on = map["on"].flatMap { path($0, field: "calls.on") }
        let off = map["off"].flatMap { path($0, field: "calls.off") }
        for (template, key) in [(on, "on"), (off, "off")] {
            guard let node = map[key] else {
                reader.error("calls needs \(key): the path that turns the switch \(key) (with {id})", at: node)
                continue
            }
            if let template, !template.placeholders.contains("id") { reader.error("calls.\(key) must hold {id}", at: node) }
        }
        guard let on, let off, on.placeholders.contains("id"), off.placeholders.contains("id") else { return nil }
        return ProviderProfile.SwitchCalls(method: method, on: on, off: off)
    }

    private func parseSecret(_ node: YAMLNode) -> ProviderProfile.SecretSpec? {
        if let s = node.scalar, s.value == "none" { return ProviderProfile.SecretSpec.none }
        guard let map = reader.mapping(node, what: "secret") else { return nil }
        reader.rejectUnknownKeys(map, allowed: ["declared", "generated"])
        guard map.entries.count == 1 else {
            reader.error("secret takes one of declared or generated (or none)", at: node)
            return nil
        }
        if let d = map["declared"], let m = reader.mapping(d, what: "secret.declared") {
            reader.rejectUnknownKeys(m, allowed: ["name", "pointer", "readable"])
            let name = m["name"].flatMap { reader.string($0, field: "name") } ?? "password"
            let p = m["pointer"].flatMap { pointer($0, field: "pointer") } ?? JSONPointer("/" + name)
            let readable = m["readable"].flatMap { reader.bool($0, field: "readable") } ?? false
            return p.map { .declared(name: name, pointer: $0, readable: readable) }
        }
        if let g = map["generated"], let m = reader.mapping(g, what: "secret.generated") {
            reader.rejectUnknownKeys(m, allowed: ["values", "secret"])
            var values: [(name: String, pointer: JSONPointer)] = []
            if let v = m["values"], let vm = reader.mapping(v, what: "secret.generated.values") {
                for entry in vm.entries {
                    if let p = pointer(entry.value, field: entry.key) { values.append((entry.key, p)) }
                }
            }
            guard !values.isEmpty else {
                reader.error("secret.generated needs values: where the create answer holds each generated value (client_id: /client_id, ...)", at: g)
                return nil
            }
            var secrets = Set<String>()
            var named = false
            if let s = m["secret"], let items = reader.stringList(s, field: "secret.generated.secret") {
                for (name, item) in items {
                    named = true
                    if values.contains(where: { $0.name == name }) { secrets.insert(name) } else {
                        reader.oneOf(name, values.map(\.name), field: "secret.generated.secret", at: item)
                    }
                }
            }
            if secrets.isEmpty && named { return nil }
            if secrets.isEmpty {
                reader.error("secret.generated needs secret: the values that are secret (the others, like a client id, are not redacted)", at: g)
                return nil
            }
            return .generated(values: values, secrets: secrets)
        }
        return nil
    }
}
