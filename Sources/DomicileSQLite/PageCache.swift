import CSQLitePageCache
import GRDBSQLite

/// SQLite's page cache as this process configured it: the default one, wrapped so that a commit
/// does not scan the whole writer cache for pages to drop (see Sources/CSQLitePageCache/page_cache.c).
enum PageCache {
    /// False when SQLite refused the wrapper (it was already initialized when the process loaded);
    /// everything still works, commits only cost more CPU.
    static var isWrapped: Bool { domicile_page_cache_installed() != 0 }

    /// Since the process started: cache truncations skipped, and pages that balancing moved
    /// through the temporary page number (what used to make a commit scan).
    static var counters: (skipped: UInt64, temporaryRekeys: UInt64) {
        (UInt64(domicile_page_cache_truncates_skipped()), UInt64(domicile_page_cache_temporary_rekeys()))
    }

    /// The wrapper's methods (for tests that drive a cache directly).
    static var methods: sqlite3_pcache_methods2? {
        domicile_page_cache_methods()?.assumingMemoryBound(to: sqlite3_pcache_methods2.self).pointee
    }
}
