// fuzz-provider-json: bytes -> every reading of a server's answer that credops does.
//
// Apinizer (below), LeadConduit and LeadVibe (their wire objects, ids and error texts), and the
// profile providers (JSONDocument, JSON pointers into it, field values of every kind, ids); and
// the server-text cleaning every provider's errors go through (`Redactor.serverText`).
//
// The whole input is the body of an answer: the list answers (credentials, access grants) and
// their mapping to `Resource`, `errorBody`, `failedGateways`, the body's `retry_after`. Its
// first line is also a `Retry-After` header value, the whole input a raw header block for
// `CurlTransfer.parseHeaders`, and a text to redact with the first line as the secret.
//
// Checks: nothing crashes or takes > 1 s; mapped resources are canonical (sets sorted and
// unique); a server delay is never negative nor over the cap; parsed header names and values
// are trimmed and hold no line break; a redacted text holds no secret of 6+ characters.

import CCurl
@testable import CredOps
@testable import ApinizerProvider
@testable import LeadConduitProvider
@testable import LeadVibeProvider
import FuzzSupport
import Foundation

private let policy = RetryPolicy()
private let now = Date(timeIntervalSince1970: 1_750_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Data(bytes: data, count: size)
    let text = String(decoding: body, as: UTF8.self)
    let firstLine = text.split(separator: "\n", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""

    // List answers, as ApinizerSession.list / grants decode and map them.
    if let answer = try? JSONDecoder().decode(ApinizerWire.ListAnswer<ApinizerWire.WireCredential>.self, from: body) {
        for item in answer.resultList ?? [] {
            let resource = item.resource
            for (name, value) in resource.fields {
                if case .set(let items) = value {
                    fuzzCheck(items == Array(Set(items)).sorted(), "\(name) is not canonical: \(items.map(visible))")
                }
            }
            _ = ApinizerWire.credentialBody(resource, password: Secret("fuzz-password"))
        }
    }
    if let answer = try? JSONDecoder().decode(ApinizerWire.ListAnswer<ApinizerWire.WireGrant>.self, from: body) {
        let grants = Array(Set((answer.resultList ?? []).map { AccessGrant(type: $0.type, name: $0.name) })).sorted()
        _ = ApinizerWire.accessBody(grants)
    }

    // Error answers and write answers.
    if let error = ApinizerWire.errorBody(body) {
        _ = Redactor().redact(error.description)
        for entry in error.validation { _ = Redactor().redact(entry.message) }
    }
    _ = ApinizerWire.failedGateways(body)

    // Retry-After as a header (or, when that is unreadable, the body's retry_after), then the
    // retry decision for an idempotent 5xx without the header (the body's retry_after alone).
    // (An HTTP-date header builds a DateFormatter per call: one call per input keeps the rate up.)
    let limited = HTTPResponse(status: 429, headers: HTTPHeaders([("Retry-After", firstLine)]), body: body)
    if let delay = policy.serverDelay(limited, now: now) {
        fuzzCheck(delay >= .zero && delay <= .seconds(policy.settings.retryAfterCapSeconds),
                  "server delay \(delay) for Retry-After \(visible(firstLine))")
    }
    let unavailable = HTTPResponse(status: 503, body: body)
    switch policy.decide(outcome: .success(unavailable), idempotent: true, retriesSoFar: 0, now: now, jitter: 0.5) {
    case .retry(let delay):
        fuzzCheck(delay >= .zero && delay <= .seconds(max(policy.settings.retryAfterCapSeconds, policy.settings.maxBackoffMilliseconds / 1000 + 1)),
                  "retry after \(delay) for a 503")
    case .stop:
        fuzzCheck(false, "a first 503 of an idempotent request is not retried")
    }

    // LeadConduit: list and write answers; an id goes into a path only when isID says so.
    if let items = try? JSONDecoder().decode([LeadConduitSession.Wire].self, from: body) {
        for item in items where LeadConduitSession.isID(item.id) {
            fuzzCheck(item.id.utf8.count == 24 && item.id.utf8.allSatisfy { $0 < 128 && Character(Unicode.Scalar($0)).isHexDigit }, "LeadConduit id \(visible(item.id))")
        }
    }
    _ = try? JSONDecoder().decode(LeadConduitSession.Wire.self, from: body)
    // LeadVibe: units, credentials (listed and created with their secret), error texts.
    _ = try? JSONDecoder().decode([LeadVibeSession.Unit].self, from: body)
    for item in (try? JSONDecoder().decode([LeadVibeSession.Wire].self, from: body)) ?? [] {
        if LeadVibeSession.isSafeID(item.secretID) {
            fuzzCheck(!item.secretID.contains("/") && !item.secretID.contains(".") && !item.secretID.contains("%"), "LeadVibe id \(visible(item.secretID))")
        }
        if let secret = item.clientSecret, LeadVibeSession.isUsableSecret(secret) {
            fuzzCheck(!secret.utf8.contains(where: { $0 <= 32 || $0 >= 127 }), "usable secret \(visible(secret))")
        }
    }
    if let message = LeadVibeSession.errorText(HTTPResponse(status: 400, body: body)) {
        let shown = Redactor().serverText(message)
        fuzzCheck(!shown.unicodeScalars.contains(where: TextSafety.isUnsafe), "server text left unsafe: \(visible(shown))")
    }
    // Any server text, cleaned for display: no control or invisible characters, bounded.
    let shown = Redactor(secrets: [Secret(firstLine)]).serverText(text, limit: 300)
    fuzzCheck(!shown.unicodeScalars.contains(where: TextSafety.isUnsafe), "server text left unsafe: \(visible(String(shown.prefix(200))))")
    fuzzCheck(shown.count <= 400, "server text of \(shown.count) characters for a limit of 300")

    // Profile providers: the answer as a JSON document, what pointers find in it, each field kind.
    if let document = JSONDocument.parse(body) {
        fuzzCheck(JSONDocument.parse(document.data) == document,
                  "JSONDocument does not read back its own output: \(visible(String(decoding: document.data.prefix(200), as: UTF8.self)))")
        var pointers: [JSONPointer] = []
        if let pointer = JSONPointer(firstLine) { pointers.append(pointer) }
        for key in (document.object?.keys).map(Array.init) ?? [] {
            var pointer = JSONPointer("")!
            pointer.tokens = [key]
            pointers.append(pointer)
        }
        pointers.append(contentsOf: ["/0", "/items", "/data/0/id"].compactMap { JSONPointer($0) })
        for pointer in pointers {
            fuzzCheck(JSONPointer(pointer.description)?.tokens == pointer.tokens, "pointer \(visible(pointer.description)) does not read back")
            let value = document[pointer]
            for kind in [FieldSpec.Kind.string, .bool, .stringSet, .instant] {
                if case .some(.some(let field)) = ProfileSession.fieldValue(value, kind: kind) {
                    if case .set(let items) = field { fuzzCheck(items == Array(Set(items)).sorted(), "profile set not canonical") }
                }
            }
            if let id = ProfileSession.idText(value) {
                fuzzCheck(!id.isEmpty && id.utf8.count <= 200 && id.utf8.allSatisfy { $0 > 32 && $0 < 127 }, "profile id \(visible(id))")
            }
            if let text = value?.string, ProfileSession.isUsableSecret(text) { _ = Secret(text) }
            var copy = document
            copy.set(.string("x"), at: pointer)
            fuzzCheck(copy[pointer] == .string("x"), "set at \(visible(pointer.description)) then read gives \(String(describing: copy[pointer]))")
        }
    }

    // The raw header block curl collects.
    var raw = [CChar](body.map { CChar(bitPattern: $0) })
    let headers = raw.withUnsafeMutableBufferPointer { buffer in
        CurlTransfer.parseHeaders(ccurl_buffer(data: buffer.baseAddress, length: buffer.count, capacity: buffer.count))
    }
    for field in headers {
        for part in [field.name, field.value] {
            fuzzCheck(!part.utf8.contains(10), "header part with a line feed: \(visible(part))")
            fuzzCheck(part.utf8.first != 32 && part.utf8.first != 9 || part == field.name,
                      "header value not trimmed: \(visible(part))")
            fuzzCheck(part.utf8.last != 32 && part.utf8.last != 9, "header part not trimmed: \(visible(part))")
        }
        fuzzCheck(!field.name.utf8.contains(58), "header name with a colon: \(visible(field.name))")
    }
    _ = headers["retry-after"]
    _ = headers.redacted

    // Redaction: the first line is a secret, the text is what a server sent back.
    let redacted = Redactor(secrets: [Secret(firstLine)]).redact(text)
    // A secret can only show up again by being cut out of the marker or the quotes that
    // redaction writes itself; apart from those, it must be gone.
    if firstLine.utf8.count >= 6, firstLine.count >= Redactor.minimumReplaceLength,
       !firstLine.contains(where: { "()\"".contains($0) }), !"redacted".contains(firstLine) {
        fuzzCheck(redacted.utf8.firstRange(of: firstLine.utf8) == nil,
                  "secret \(visible(firstLine)) left in the redacted text \(visible(String(redacted.prefix(200))))")
    }
    return 0
}

/// One-time set-up outside the 1 s budget: the first use of ICU, Foundation's JSON and date
/// formatters, the Swift runtime's metadata caches takes seconds under ASan.
@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>) -> CInt {
    let warmUp = Array("Sun, 06 Nov 1994 08:49:37 GMT\n{\"success\":true,\"resultList\":[{\"username\":\"a\",\"ipList\":[\"10.0.0.1\"],\"expireDate\":\"2027-06-30T23:59:59.000Z\"}],\"error\":\"x\",\"retry_after\":1}".utf8)
    for _ in 0..<2 { _ = warmUp.withUnsafeBufferPointer { fuzz($0.baseAddress!, $0.count) } }
    return 0
}
