/// The embedded store's memory and checkpoint settings: the ones that depend on the machine, each
/// a node option printed on `serve`'s first line.
///
/// The writer's cache stays 64 MiB by default, whatever the memory. Sized from the machine (an
/// eighth of 24 GiB, 3 GiB) it was measured over a ten-million-customer import (scripts/bench-scale,
/// docs/performance.md): from the fourth million on, bulk imports ran at the same rate (7,300–8,500
/// against 6,700–8,700 customers/s), because what bounds them is the pages written per customer,
/// not the pages read, while the server's memory grew to 3.3 GiB.
public struct SQLiteTuning: Sendable, Hashable, CustomStringConvertible {
    /// The writer connection's page cache.
    public var writerCacheBytes: Int
    /// Each read connection's page cache (up to 8 read connections, plus the pool's readers).
    public var readerCacheBytes: Int
    /// Write-ahead log pages after which a commit checkpoints: fewer, larger checkpoints stall the
    /// group commit less often, and pages written again within one are copied back once.
    public var checkpointPages: Int

    public init(writerCacheBytes: Int = 64 << 20, readerCacheBytes: Int = 8 << 20, checkpointPages: Int = 8_000) {
        self.writerCacheBytes = writerCacheBytes
        self.readerCacheBytes = readerCacheBytes
        self.checkpointPages = checkpointPages
    }

    public var description: String {
        "writer cache \(writerCacheBytes >> 20) MiB, reader cache \(readerCacheBytes >> 20) MiB, checkpoint every \(checkpointPages) pages"
    }
}
