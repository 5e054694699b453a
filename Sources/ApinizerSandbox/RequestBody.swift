import Foundation

/// Reading JSON request bodies with Spring-like error answers.
enum RequestBody {
    /// The body as a JSON object.
    ///
    /// - Throws: 400 `bad_request` when it is missing, not JSON, or not an object.
    static func object(_ body: Data?) throws(APIError) -> JSONObject {
        guard let body, !body.allSatisfy({ $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }) else {
            throw .badRequest("Required request body is missing")
        }
        guard let value = JSONValue.parse(body) else {
            throw .badRequest("Malformed JSON request: the body is not valid JSON")
        }
        guard let object = value.objectValue else {
            throw .badRequest("Malformed JSON request: expected an object, found \(value.typeName)")
        }
        return object
    }

    static func string(_ object: JSONObject, _ key: String) throws(APIError) -> String? {
        switch object[key] {
        case nil, .null?: return nil
        case .string(let value)?: return value
        case let other?: throw .badRequest("Malformed JSON request: '\(key)' must be a string, found \(other.typeName)")
        }
    }

    static func bool(_ object: JSONObject, _ key: String) throws(APIError) -> Bool? {
        switch object[key] {
        case nil, .null?: return nil
        case .bool(let value)?: return value
        case let other?: throw .badRequest("Malformed JSON request: '\(key)' must be true or false, found \(other.typeName)")
        }
    }

    static func strings(_ object: JSONObject, _ key: String) throws(APIError) -> [String]? {
        switch object[key] {
        case nil, .null?:
            return nil
        case .array(let values)?:
            var result: [String] = []
            for value in values {
                guard case .string(let string) = value else {
                    throw .badRequest("Malformed JSON request: '\(key)' must be an array of strings, found \(value.typeName) in it")
                }
                result.append(string)
            }
            return result
        case let other?:
            throw .badRequest("Malformed JSON request: '\(key)' must be an array of strings, found \(other.typeName)")
        }
    }
}
