import Foundation
import GRDB
import Synchronization

/// Read-only connections used synchronously on the calling thread, for the request path's point reads.
///
/// A read by primary key takes microseconds; handing it to a dispatch queue and resuming the task
/// afterwards costs more than the read itself (two thread switches per request, measured as most
/// of a read request's CPU). These connections are checked out, used on the caller's thread and
/// given back: a closure run here never awaits, so holding a connection can never wait on the
/// cooperative pool, and WAL readers never wait on the writer.
///
/// When every connection is in use and `maximum` are open, the caller gets `nil` and uses the
/// pool's asynchronous read instead: no thread ever blocks here waiting for a connection.
final class ReadConnections: Sendable {
    private let path: String
    private let configuration: Configuration
    private let maximum: Int
    private let idle = Mutex<(connections: [DatabaseQueue], open: Int)>(([], 0))

    init(path: String, maximum: Int, cacheBytes: Int) {
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(10)
        configuration.label = "domicile.read"
        // Larger than SQLite's default 2 MiB: random customers are read back from the OS less often.
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA cache_size = -\(cacheBytes / 1024)") }
        self.path = path
        self.configuration = configuration
        self.maximum = maximum
    }

    /// Runs `work` on this thread, or returns nil when no connection is free.
    ///
    /// No enclosing transaction: each statement reads a consistent snapshot of its own, which is
    /// all a point read needs, and it spares two statements (begin, commit) per read. Callers that
    /// need several statements to agree use the pool's reads.
    func read<T>(_ work: (Database) throws -> T) throws -> T? {
        let taken: DatabaseQueue?
        let mayOpen: Bool
        (taken, mayOpen) = idle.withLock { state -> (DatabaseQueue?, Bool) in
            if let connection = state.connections.popLast() { return (connection, false) }
            guard state.open < maximum else { return (nil, false) }
            state.open += 1
            return (nil, true)
        }
        var connection = taken
        if connection == nil {
            guard mayOpen else { return nil }
            do {
                connection = try DatabaseQueue(path: path, configuration: configuration)
            } catch {
                idle.withLock { $0.open -= 1 }
                throw error
            }
        }
        let queue = connection!
        defer { idle.withLock { $0.connections.append(queue) } }
        return try queue.unsafeRead(work)
    }
}
