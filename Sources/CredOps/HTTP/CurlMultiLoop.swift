import CCurl
import Foundation

/// One thread that runs every transfer of a client through libcurl's multi interface, and the
/// Swift tasks that prefer it as their executor.
///
/// A thread per request in flight (the design before) paid a thread wake-up on each side of
/// every request, and sixteen threads per environment contended for two cores. Here one thread
/// per client waits (epoll, through libcurl's socket interface) for whichever transfer has data, and finishes several
/// in one wake-up when answers arrive together. At most `maxInFlight` transfers run at once;
/// the rest wait in the queue in order. Easy handles are reused, and the multi handle's
/// connection cache keeps connections open between them.
///
/// It is also a `TaskExecutor`: an environment's work runs here with
/// `withTaskExecutorPreference`, so that a task that sends a request, and the same task resumed
/// by its answer, cost no thread wake-up at all. On an idle machine (a plan waiting on a slow
/// server), wake-ups are most of the CPU a request costs.
///
/// Invariant: `queue`, `head`, `runnable`, `isShutdown`, `isClosed`, `isSleeping` and
/// `cancelRequested` are touched only with `lock` held; `multi`, `idle` and `active` only by
/// the loop thread (`loop` also by `ccurl_loop_wake`, which any thread may call until the loop
/// closes).
final class CurlMultiLoop: TaskExecutor, @unchecked Sendable {
    private let lock = NSLock()
    /// Jobs waiting to start from `head` on; a started job's slot is emptied at once, so a
    /// finished job (and its answer's buffers) is not kept alive by the queue.
    private var queue: [CurlJob?] = []
    private var head = 0
    private var runnable: [UnownedJob] = []
    private var isShutdown = false
    private var isClosed = false
    private var isSleeping = false
    private var cancelRequested = false

    private let loop: OpaquePointer
    private let multi: UnsafeMutableRawPointer
    private let maxInFlight: Int
    private let configuration: HTTPClientConfiguration
    private var idle: [UnsafeMutableRawPointer] = []
    private var active: [Int: (handle: UnsafeMutableRawPointer, job: CurlJob)] = [:]

    init(maxInFlight: Int, configuration: HTTPClientConfiguration) {
        guard let loop = ccurl_loop_create() else { fatalError("libcurl could not make a multi handle (out of memory or file descriptors)") }
        self.loop = loop
        self.multi = ccurl_loop_multi(loop)
        self.maxInFlight = max(1, maxInFlight)
        self.configuration = configuration
        let thread = Thread { [self] in self.run() }
        thread.name = "credops-http"
        // The environment's Swift code runs here too (parsing answers is recursive: a deeply
        // nested one needs the stack a pool thread has), not libcurl alone.
        thread.stackSize = 8 * 1024 * 1024
        thread.start()
    }

    /// Queues a job; it fails at once when the loop was shut down.
    func submit(_ job: CurlJob) {
        lock.lock()
        if isShutdown {
            lock.unlock()
            job.finish(.failure(HTTPClientError(.cancelled, request: job.request.summary, message: "the HTTP client was shut down")))
            return
        }
        queue.append(job)
        wakeLocked()
        lock.unlock()
    }

    /// Runs a task's job on the loop thread; after the loop ended, on the global executor (so a
    /// task that still prefers this executor never hangs).
    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        lock.lock()
        if isClosed {
            lock.unlock()
            globalConcurrentExecutor.enqueue(job)
            return
        }
        runnable.append(job)
        wakeLocked()
        lock.unlock()
    }

    /// Asks the loop to end the running transfers whose jobs were cancelled.
    func checkCancellations() {
        lock.lock()
        cancelRequested = true
        wakeLocked()
        lock.unlock()
    }

    /// Lets the queued and running transfers finish, then ends the thread.
    func shutdown() {
        lock.lock()
        isShutdown = true
        wakeLocked()
        lock.unlock()
    }

    /// Wakes the loop if it waits. A wake-up sent between the loop's last look at the queue and
    /// its wait is not lost: the eventfd keeps it until the wait.
    private func wakeLocked() {
        guard isSleeping, !isClosed else { return }
        isSleeping = false
        ccurl_loop_wake(loop)
    }

    /// What the loop does next, decided under the lock.
    private enum Step {
        case work(jobs: [CurlJob], tasks: [UnownedJob], cancel: Bool)
        case sleep
        case stop
    }

    private func nextStep() -> Step {
        lock.lock()
        defer { lock.unlock() }
        var jobs: [CurlJob] = []
        let room = maxInFlight - active.count
        while jobs.count < room, head < queue.count {
            if let job = queue[head] { jobs.append(job) }
            queue[head] = nil
            head += 1
        }
        // Compact now and then so the array does not grow forever.
        if head == queue.count {
            queue.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024 && head * 2 > queue.count {
            queue.removeFirst(head)
            head = 0
        }
        let cancel = cancelRequested
        cancelRequested = false
        let tasks = runnable
        if !tasks.isEmpty { runnable.removeAll(keepingCapacity: true) }
        if !jobs.isEmpty || !tasks.isEmpty || cancel { return .work(jobs: jobs, tasks: tasks, cancel: cancel) }
        if active.isEmpty && isShutdown && head >= queue.count {
            isClosed = true
            return .stop
        }
        isSleeping = true
        return .sleep
    }

    private func run() {
        defer {
            ccurl_loop_destroy(loop)
            for handle in idle { curl_easy_cleanup(handle) }
        }
        while true {
            switch nextStep() {
            case .work(let jobs, let tasks, let cancel):
                if cancel { endCancelled() }
                for job in jobs { start(job) }
                for task in tasks { task.runSynchronously(on: asUnownedTaskExecutor()) }
                ccurl_loop_wait(loop, 0)
            case .sleep:
                ccurl_loop_wait(loop, 1000)
                lock.lock()
                isSleeping = false
                lock.unlock()
            case .stop:
                return
            }
            harvest()
        }
    }

    private func start(_ job: CurlJob) {
        guard job.start() else { return }  // cancelled while queued
        guard let handle = idle.popLast() ?? curl_easy_init() else {
            job.finish(.failure(HTTPClientError(.other, request: job.request.summary, message: "libcurl could not make a handle (out of memory)")))
            return
        }
        let transfer = CurlTransfer(handle: handle, job: job, configuration: configuration)
        if case .failure(let error) = transfer.prepare() {
            idle.append(handle)
            job.finish(.failure(error))
            return
        }
        guard curl_multi_add_handle(multi, handle) == CURLM_OK else {
            transfer.release()
            idle.append(handle)
            job.finish(.failure(HTTPClientError(.other, request: job.request.summary, message: "libcurl refused the transfer")))
            return
        }
        active[Int(bitPattern: handle)] = (handle, job)
    }

    /// Finishes the transfers libcurl reports done.
    private func harvest() {
        var left: Int32 = 0
        while let message = curl_multi_info_read(multi, &left) {
            guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle else { continue }
            // The message is gone once its handle leaves the multi handle: read it first.
            let code = ccurl_msg_result(message)
            end(handle, code)
        }
    }

    /// Ends running transfers whose job was cancelled, with the code `complete` reports as
    /// "cancelled".
    private func endCancelled() {
        for (handle, job) in active.values where job.isCancelled {
            end(handle, CURLE_ABORTED_BY_CALLBACK)
        }
    }

    private func end(_ handle: UnsafeMutableRawPointer, _ code: CURLcode) {
        guard let (_, job) = active.removeValue(forKey: Int(bitPattern: handle)) else { return }
        curl_multi_remove_handle(multi, handle)
        let result = CurlTransfer(handle: handle, job: job, configuration: configuration).complete(code)
        idle.append(handle)
        job.finish(result)
    }
}
