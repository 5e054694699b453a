import Foundation

extension SandboxSeed {
    /// The seed as the data file and `/__sandbox/dump` hold it: one key per line and one
    /// credential per line, in a fixed key order.
    ///
    /// Written with `JSONValue` rather than `JSONEncoder`, which is several times slower on
    /// Linux: the data file is rewritten often, and a large store must stay cheap to save.
    var fileData: Data {
        var clientsObject = JSONObject()
        for (id, secret) in clients.sorted(by: { $0.key < $1.key }) { clientsObject.members.append((key: id, value: .string(secret))) }
        let head: [(String, JSONValue)] = [
            ("projects", .strings(projects)),
            ("roles", .strings(roles)),
            ("apiProxies", .strings(apiProxies)),
            ("apiProxyGroups", .strings(apiProxyGroups)),
            ("gateways", .strings(gateways)),
            ("tokens", .strings(tokens)),
            ("clients", .object(clientsObject)),
            ("tokenTTLSeconds", .int(tokenTTLSeconds)),
        ]
        var out = Data("{\n".utf8)
        for (key, value) in head {
            out.append(contentsOf: "  \"\(key)\": ".utf8)
            out.append(value.serialized)
            out.append(contentsOf: ",\n".utf8)
        }
        out.append(contentsOf: "  \"credentials\": [".utf8)
        for (index, credential) in credentials.enumerated() {
            out.append(contentsOf: (index == 0 ? "\n    " : ",\n    ").utf8)
            out.append(credential.fileJSON.serialized)
        }
        out.append(contentsOf: (credentials.isEmpty ? "]\n}\n" : "\n  ]\n}\n").utf8)
        return out
    }
}

extension SandboxCredential {
    /// Every field, password and grants included, absent optionals as `null`.
    var fileJSON: JSONValue {
        .object(JSONObject([
            (key: "project", value: .string(project)),
            (key: "username", value: .string(username)),
            (key: "password", value: .optional(password)),
            (key: "email", value: .string(email)),
            (key: "fullName", value: .string(fullName)),
            (key: "description", value: .optional(description)),
            (key: "roleNameList", value: .strings(roleNameList)),
            (key: "enabled", value: .bool(enabled)),
            (key: "ipList", value: .strings(ipList)),
            (key: "expireDate", value: .optional(expireDate)),
            (key: "access", value: .array(access.map(\.json))),
        ]))
    }
}
