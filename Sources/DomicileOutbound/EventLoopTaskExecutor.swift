import NIOCore
import NIOPosix

/// Runs a task's jobs on one NIO event loop. NIO's global-executor hook keeps a job on the loop
/// that enqueued it, so without a preference every delivery the dispatcher starts (and every
/// provider connection it opens) ends up on the dispatcher's loop, one core of two. The server
/// also names the current loop's executor to the SQLite store (`waiterExecutor`), so that a
/// write's task comes back to its connection's loop after the group commit. Hand-written: NIO
/// offers event loops as serial executors, not as task executors.
public final class EventLoopTaskExecutor: TaskExecutor {
    let loop: any EventLoop

    init(loop: any EventLoop) { self.loop = loop }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        loop.execute { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// One for each event loop of NIO's singleton group (the server's and the dispatcher's).
    static let singletonGroup = MultiThreadedEventLoopGroup.singleton.makeIterator().map { EventLoopTaskExecutor(loop: $0) }

    /// The `turn`th of them, round and round: each delivery of the dispatcher runs on one, in turn.
    static func turn(_ turn: Int) -> EventLoopTaskExecutor { singletonGroup[turn % singletonGroup.count] }

    /// The executor of the singleton group's loop this thread runs, if it runs one.
    public static var current: EventLoopTaskExecutor? { singletonGroup.first { $0.loop.inEventLoop } }

    /// Whether this executor's jobs run on `loop`.
    public func runs(_ loop: any EventLoop) -> Bool { self.loop === loop }
}
