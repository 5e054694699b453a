import Foundation
import HTTPTypes
import Hummingbird

/// The sandbox's single Hummingbird responder: it routes from the raw request path (see
/// `SandboxRouter`), applies faults, and turns `SandboxAnswer`s into responses.
///
/// A dropped connection is made by promising a body (`Content-Length`), sending its first
/// bytes and then failing the body writer: Hummingbird closes the connection, and the client
/// sees a transfer cut short (curl: "transfer closed with N bytes remaining", a network error,
/// never an HTTP status). Sending the head first matters: a connection closed before any byte
/// of the answer makes libcurl silently re-send the request on a fresh connection.
struct SandboxResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    /// Largest body read on an API call.
    static let apiBodyLimit = 4 * 1024 * 1024
    /// Largest body of the (unauthenticated) token call: a form of three short fields.
    static let tokenBodyLimit = 64 * 1024
    /// Largest body read on a `/__sandbox/` call: a seed of tens of thousands of credentials.
    static let adminBodyLimit = 32 * 1024 * 1024

    let engine: SandboxEngine

    func respond(to request: Request, context: Context) async throws -> Response {
        let rawPath = request.head.path ?? "/"
        let path = SandboxRouter.pathOnly(rawPath)
        if path == "/apiops" || path.hasPrefix("/apiops/") {
            return await respondToAPI(request, rawPath: rawPath)
        }
        if path == "/__sandbox" || path.hasPrefix("/__sandbox/") {
            let match = SandboxRouter.matchAdmin(method: request.method.rawValue, path: rawPath)
            // The token first: no body is read for a caller who is not allowed in.
            if let refused = await engine.authenticationFailure(request.headers[.authorization]) {
                return Self.response(refused)
            }
            var request = request
            let body: Data?
            do {
                body = try await Self.collect(&request, limit: Self.adminBodyLimit)
            } catch {
                return Self.response(error.answer)
            }
            let answer = await engine.handleAdmin(match, authorization: request.headers[.authorization], body: body)
            return Self.response(answer)
        }
        return Self.response(APIError.notFound("No endpoint \(request.method.rawValue) \(path)").answer)
    }

    private func respondToAPI(_ request: Request, rawPath: String) async -> Response {
        // The latency counts from the request's arrival, with no timer slack, so that the
        // sandbox answers as close to it as it can (benchmarks compare against it).
        let arrival = ContinuousClock.now
        let method = request.method.rawValue
        let match = SandboxRouter.matchAPI(method: method, path: rawPath)
        let isWrite = (try? match.outcome.get())?.isWrite ?? false
        let decision = await engine.admit(method: method, template: match.template, isWrite: isWrite)
        if decision.latency > .zero {
            try? await Task.sleep(until: arrival + decision.latency, tolerance: .zero, clock: .continuous)
        }
        switch decision.action {
        case .proceed:
            break
        case .hang:
            while await engine.keepsHanging {
                try? await Task.sleep(for: .milliseconds(20))
                if Task.isCancelled { break }
            }
            return Self.droppedConnection()
        case .drop:
            return Self.droppedConnection()
        case .internalError:
            return Self.response(APIError.internalError("An unexpected error occurred (injected fault: nothing was done)").answer)
        case .rateLimited(let seconds):
            let body: JSONValue = .object(JSONObject([
                (key: "error", value: "rate_limit_exceeded"),
                (key: "error_description", value: .string("Rate limit exceeded; retry after \(seconds) seconds")),
                (key: "retry_after", value: .int(seconds)),
            ]))
            return Self.response(SandboxAnswer(status: 429, body: body, headers: [("Retry-After", String(seconds))]))
        }
        // Every call but the token call is authenticated before its body is read; the token
        // call's body is small by nature and capped accordingly.
        let isTokenCall: Bool
        if case .success(.issueToken) = match.outcome { isTokenCall = true } else { isTokenCall = false }
        if !isTokenCall, let refused = await engine.authenticationFailure(request.headers[.authorization]) {
            return Self.response(refused)
        }
        var request = request
        let body: Data?
        do {
            body = try await Self.collect(&request, limit: isTokenCall ? Self.tokenBodyLimit : Self.apiBodyLimit)
        } catch {
            return Self.response(error.answer)
        }
        var answer = await engine.handle(match.outcome, authorization: request.headers[.authorization],
                                         contentType: request.headers[.contentType], body: body)
        if decision.commitThenFail && answer.committed {
            answer = SandboxAnswer(status: 502, body: APIError.internalError(
                "Bad gateway: the answer was lost (injected fault: the change was stored)").body)
        }
        return Self.response(answer)
    }

    /// The request body; nil when there is none.
    ///
    /// - Throws: 400 `bad_request` when it is larger than `limit` or cannot be read.
    private static func collect(_ request: inout Request, limit: Int) async throws(APIError) -> Data? {
        do {
            let buffer = try await request.collectBody(upTo: limit)
            return buffer.readableBytes == 0 ? nil : Data(buffer.readableBytesView)
        } catch {
            throw .badRequest("The request body is larger than \(limit >= 1024 * 1024 ? "\(limit / 1024 / 1024) MiB" : "\(limit / 1024) KiB") or could not be read")
        }
    }

    /// An HTTP response carrying `answer` as JSON.
    static func response(_ answer: SandboxAnswer) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        for (name, value) in answer.headers {
            if let fieldName = HTTPField.Name(name) { headers[fieldName] = value }
        }
        return Response(status: HTTPResponse.Status(code: answer.status), headers: headers,
                        body: ResponseBody(byteBuffer: ByteBuffer(bytes: answer.body)))
    }

    /// A response whose body breaks off: the connection is closed with the answer incomplete.
    static func droppedConnection() -> Response {
        let promised = 256
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: promised) { writer in
            try await writer.write(ByteBuffer(string: "{\"success\":"))
            // Let the head and the first bytes leave before the connection is torn down.
            try? await Task.sleep(for: .milliseconds(5))
            throw DroppedConnection()
        })
    }

    /// Thrown by a dropped answer's body writer; Hummingbird then closes the connection.
    struct DroppedConnection: Error {}
}
