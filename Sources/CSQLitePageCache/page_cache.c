// A thin wrapper around SQLite's default page cache (pcache1) that skips truncations with
// nothing to remove.
//
// Why: at the end of every write transaction the pager truncates its cache to the database's
// size. pcache1 scans only the hash slots between that size and the largest page number it has
// ever held (`iMaxKey`), or its whole hash table when that range is wider than the table. B-tree
// balancing swaps two pages through a temporary page number, PENDING_BYTE / page size + 1
// (262,145 with 4 KiB pages), so `iMaxKey` jumps there at the first unordered split of every
// transaction. On a database under 1 GiB each commit then scans the writer's whole cache: with
// Domicile's 64 MiB writer cache that is 16,000 chained hash slots, a quarter of the group
// commit's CPU in the upsert benchmark.
//
// The wrapper tracks an upper bound of the page numbers the cache can hold, leaving the
// temporary number out and counting instead how many pages carry it. A truncation that cannot
// remove anything (no page at the temporary number, and the limit above the bound) is skipped;
// every other one is passed on, and then lowers the bound. Everything else goes straight to
// pcache1. The bound only ever over-estimates, so a needed truncation is never skipped.
//
// Installed by a constructor when the process loads, before any thread can touch SQLite:
// sqlite3_config may only run before sqlite3_initialize, and it is not thread-safe.
//
// It matters once the database outgrows the writer's cache, when the cache is full and every
// commit would scan all of it; on a small database pcache1 holds few pages and scans little.
// The measurement is in docs/performance.md.
// Hand-written because no package offers it: it has to sit inside SQLite's C API.

#include <sqlite3.h>
#include <stdatomic.h>

#include "CSQLitePageCache.h"

// SQLite's default: the lock byte sits at 1 GiB (PENDING_BYTE in sqliteInt.h).
#define DOMICILE_PENDING_BYTE 0x40000000u

typedef struct {
    sqlite3_pcache *inner;
    unsigned int temporaryKey;  // the page number balancing swaps through
    unsigned int maximumKey;    // no page other than temporary ones has a larger number
    unsigned int temporaryPages; // pages rekeyed to temporaryKey and not yet away from it
} WrappedCache;

static sqlite3_pcache_methods2 inner;
static int installed;
static atomic_ullong skipped, temporaryRekeys;

static int wrappedInit(void *arg) { return inner.xInit(arg); }
static void wrappedShutdown(void *arg) { if (inner.xShutdown) inner.xShutdown(arg); }

static sqlite3_pcache *wrappedCreate(int pageSize, int extraSize, int purgeable) {
    WrappedCache *cache = sqlite3_malloc(sizeof(WrappedCache));
    if (!cache) return 0;
    cache->inner = inner.xCreate(pageSize, extraSize, purgeable);
    if (!cache->inner) {
        sqlite3_free(cache);
        return 0;
    }
    cache->temporaryKey = DOMICILE_PENDING_BYTE / (unsigned int)pageSize + 1;
    cache->maximumKey = 0;
    cache->temporaryPages = 0;
    return (sqlite3_pcache *)cache;
}

static void wrappedCachesize(sqlite3_pcache *cache, int size) {
    inner.xCachesize(((WrappedCache *)cache)->inner, size);
}

static int wrappedPagecount(sqlite3_pcache *cache) { return inner.xPagecount(((WrappedCache *)cache)->inner); }

static sqlite3_pcache_page *wrappedFetch(sqlite3_pcache *cache, unsigned int key, int create) {
    WrappedCache *wrapped = (WrappedCache *)cache;
    sqlite3_pcache_page *page = inner.xFetch(wrapped->inner, key, create);
    // A fetch of the temporary number itself (never expected) raises the bound past it, so
    // every later truncation is passed on.
    if (page && key > wrapped->maximumKey) wrapped->maximumKey = key;
    return page;
}

static void wrappedUnpin(sqlite3_pcache *cache, sqlite3_pcache_page *page, int discard) {
    inner.xUnpin(((WrappedCache *)cache)->inner, page, discard);
}

static void wrappedRekey(sqlite3_pcache *cache, sqlite3_pcache_page *page, unsigned int from, unsigned int to) {
    WrappedCache *wrapped = (WrappedCache *)cache;
    inner.xRekey(wrapped->inner, page, from, to);
    if (to == wrapped->temporaryKey) {
        wrapped->temporaryPages += 1;
        atomic_fetch_add_explicit(&temporaryRekeys, 1, memory_order_relaxed);
    } else if (to > wrapped->maximumKey) {
        wrapped->maximumKey = to;
    }
    // A temporary page discarded without being rekeyed keeps the count above zero: truncations
    // are then always passed on, as without the wrapper.
    if (from == wrapped->temporaryKey && wrapped->temporaryPages > 0) wrapped->temporaryPages -= 1;
}

static void wrappedTruncate(sqlite3_pcache *cache, unsigned int limit) {
    WrappedCache *wrapped = (WrappedCache *)cache;
    // Removes every page numbered limit or more.
    if (wrapped->temporaryPages == 0 && limit > wrapped->maximumKey) {
        atomic_fetch_add_explicit(&skipped, 1, memory_order_relaxed);
        return;
    }
    inner.xTruncate(wrapped->inner, limit);
    if (limit <= wrapped->temporaryKey) wrapped->temporaryPages = 0;
    if (limit == 0) {
        wrapped->maximumKey = 0;
    } else if (limit - 1 < wrapped->maximumKey) {
        wrapped->maximumKey = limit - 1;
    }
}

static void wrappedDestroy(sqlite3_pcache *cache) {
    WrappedCache *wrapped = (WrappedCache *)cache;
    inner.xDestroy(wrapped->inner);
    sqlite3_free(wrapped);
}

static void wrappedShrink(sqlite3_pcache *cache) { inner.xShrink(((WrappedCache *)cache)->inner); }

static sqlite3_pcache_methods2 wrapper = {
    .iVersion = 1,
    .xShutdown = wrappedShutdown,
    .xCreate = wrappedCreate,
    .xCachesize = wrappedCachesize,
    .xPagecount = wrappedPagecount,
    .xFetch = wrappedFetch,
    .xUnpin = wrappedUnpin,
    .xRekey = wrappedRekey,
    .xTruncate = wrappedTruncate,
    .xDestroy = wrappedDestroy,
    .xShrink = wrappedShrink,
};

__attribute__((constructor)) static void domicile_configure_sqlite(void) {
    if (sqlite3_config(SQLITE_CONFIG_GETPCACHE2, &inner) != SQLITE_OK || inner.iVersion < 1 || !inner.xFetch) return;
    wrapper.pArg = inner.pArg;
    wrapper.xInit = inner.xInit ? wrappedInit : 0;
    installed = sqlite3_config(SQLITE_CONFIG_PCACHE2, &wrapper) == SQLITE_OK;
}

const void *domicile_page_cache_methods(void) { return installed ? &wrapper : 0; }
int domicile_page_cache_installed(void) { return installed; }
unsigned long long domicile_page_cache_truncates_skipped(void) { return atomic_load(&skipped); }
unsigned long long domicile_page_cache_temporary_rekeys(void) { return atomic_load(&temporaryRekeys); }
