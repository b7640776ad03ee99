#ifndef DOMICILE_SQLITE_PAGE_CACHE_H
#define DOMICILE_SQLITE_PAGE_CACHE_H

/// Whether SQLite's page caches go through Domicile's wrapper of its default page cache
/// (installed when the process loads; see page_cache.c). 0 when SQLite refused it.
int domicile_page_cache_installed(void);

/// Whether SQLite keeps no memory statistics (turned off when the process loads; see page_cache.c).
/// Counters since the process started (for tests): cache truncations skipped.
unsigned long long domicile_page_cache_truncates_skipped(void);
/// How many pages B-tree balancing moved through the temporary page number.
unsigned long long domicile_page_cache_temporary_rekeys(void);

/// The wrapper's `sqlite3_pcache_methods2`, for tests that drive it directly; NULL when not installed.
const void *domicile_page_cache_methods(void);

#endif
