import Foundation
import Hummingbird
import ServiceLifecycle
import Logging
import NIOCore
import Prometheus

/// `/metrics` (Prometheus text), `/healthz` (the process answers) and `/readyz` (the state
/// answered the last leadership attempt: a leader can act, a standby can take over).
enum HealthServer {
    static func application(host: String, port: Int, registry: PrometheusCollectorRegistry, reconciler: Reconciler, logger: Logger)
        -> some Service {
        let router = Router()
        router.get("/healthz") { _, _ in "ok\n" }
        router.get("/readyz") { _, _ -> Response in
            let (ready, leading) = (await reconciler.ready, await reconciler.leading)
            let body = ready ? (leading ? "ready (leader)\n" : "ready (standby)\n") : "not ready: the state did not answer\n"
            return Response(status: ready ? .ok : .serviceUnavailable, body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        router.get("/metrics") { _, _ -> Response in
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: registry.emitToBuffer())))
        }
        return Application(router: router, configuration: ApplicationConfiguration(address: .hostname(host, port: port)),
                           onServerRunning: { channel in
                               logger.info("listening", metadata: ["url": "http://\(host.contains(":") ? "[\(host)]" : host):\(channel.localAddress?.port ?? port)"])
                           },
                           logger: logger)
    }
}
