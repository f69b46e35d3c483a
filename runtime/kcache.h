/*
 * kcache.h - the kernel cache: compiled kernels (CUBIN or PTX bytes, or any
 * other payload) keyed by an XXH3-128 hash of everything that went into
 * compiling them, kept in memory and in a directory on disk.
 *
 * Typical use by the CUDA runtime:
 *
 *     rt_kcache *c = rt_kcache_open(NULL, d);        // once per process
 *     rt_kcache_key_t key = rt_kcache_key(&parts);   // source, options, versions, arch
 *     void *bin; size_t len;
 *     if (!rt_kcache_get(c, &key, &bin, &len)) {
 *         ... compile with NVRTC into bin/len ...
 *         rt_kcache_put(c, &key, bin, len);
 *     }
 *     ... load bin ..., free(bin);
 *     rt_kcache_close(c);
 *
 * The cache never fails hard.  A directory that is missing and cannot be
 * created, is not a directory, is owned by another user or is writable by
 * group or others is not used: the cache then lives in memory only and says
 * why in rt_kcache_warning().  A bad entry on disk (truncated, corrupted,
 * foreign, of another format version, unreadable, a symlink) is a miss and
 * is removed; a failed write (disk full, I/O error, permission) leaves no
 * file behind and is a warning.  A get returns either nothing or exactly
 * the bytes that were put under that key.
 *
 * The directory: dir_or_null (unless NULL or ""), else $FUSEC_CACHE_DIR, else
 * $XDG_CACHE_HOME/fusec (when absolute), else $HOME/.cache/fusec (HOME from
 * the password database when unset).  Missing components are created with
 * mode 0700.  One file per entry, DIR/<hh>/<32 hex digits of the key>.bin;
 * writes go through a temp file DIR/<hh>/.<key>.bin.XXXXXX, fsynced and
 * renamed (rt_write_file_atomic).
 *
 * Thread safety: one rt_kcache may be used from several threads at once
 * (get, put and stats take an internal mutex; disk I/O runs outside it).
 * rt_kcache_warning() returns a string that a concurrent failing put may
 * extend: read it when no put is in flight.  Several processes may share
 * one directory: entries appear atomically.  Every function accepts a NULL
 * cache as "no cache" (get misses, put does nothing).
 *
 * Fault injection for tests: FUSEC_KCACHE_FAIL_WRITE=1 (any value but
 * empty or "0") in the environment when the cache is opened makes every
 * disk write fail as if the disk were full (ENOSPC), without touching the
 * disk: the caller-visible behaviour (warning, counters, memory still
 * serving) is that of a real failure.  Real partial writes are tested with
 * RLIMIT_FSIZE and a full tmpfs (tests/unit/test_kcache.c).
 */
#ifndef FUSEC_RUNTIME_KCACHE_H
#define FUSEC_RUNTIME_KCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"

/* The on-disk format version: bump it whenever the entry layout changes. */
#define RT_KCACHE_FORMAT_VERSION 1u
/* Entries (and puts) larger than this are not written to disk. */
#define RT_KCACHE_MAX_PAYLOAD ((uint64_t)1 << 30)

typedef struct rt_kcache rt_kcache;

/* A 128-bit key, in XXH3's canonical (big-endian) byte order. */
typedef struct rt_kcache_key_t {
    unsigned char bytes[16];
} rt_kcache_key_t;

/* Everything a compiled kernel depends on.  NULL strings hash as "". */
typedef struct rt_kcache_keyparts {
    const char *source;           /* the CUDA C translation unit */
    const char *const *options;   /* compile options, any order (sorted before hashing) */
    int noptions;
    int nvrtc_major, nvrtc_minor; /* nvrtcVersion() */
    int driver_version;           /* cuDriverGetVersion() */
    const char *arch;             /* e.g. "sm_90" or "compute_90" */
    const char *fusec_version;    /* NULL = FUSEC_VERSION_STRING (tests vary it) */
} rt_kcache_keyparts;

typedef struct rt_kcache_stats_t {
    uint64_t hits_mem;       /* found in memory */
    uint64_t hits_disk;      /* found on disk (and now in memory too) */
    uint64_t misses;         /* gets that found nothing usable, corrupt ones included */
    uint64_t corrupt;        /* of the misses: a bad entry file was found (and removed) */
    uint64_t writes;         /* entries written to disk */
    uint64_t write_failures; /* disk writes that failed (the entry stayed in memory) */
} rt_kcache_stats_t;

/* The key of a compilation: XXH3-128 over each part, length-prefixed. */
rt_kcache_key_t rt_kcache_key(const rt_kcache_keyparts *parts);
/* The 32 lower-case hex digits of a key, NUL-terminated. */
void rt_kcache_key_hex(const rt_kcache_key_t *key, char hex[33]);

/* The resolved cache directory (see above; malloc'd, free() it), or NULL
 * when none can be named (no HOME) or out of memory.  Nothing is created. */
char *rt_kcache_dir(const char *dir_or_null);

/* Open a cache.  NULL only when out of memory (an error in d).  When the
 * directory is refused, a "warning: kernel cache: ..." line is appended to
 * d's text (d may be NULL; its error count is not touched) and to
 * rt_kcache_warning(), and the cache works in memory only.  Pair with
 * rt_kcache_close(). */
rt_kcache *rt_kcache_open(const char *dir_or_null, ir_diag *d);
void rt_kcache_close(rt_kcache *c);

/* True when entries go to disk (the directory was accepted). */
bool rt_kcache_disk_enabled(const rt_kcache *c);
/* The directory in use, or NULL for a memory-only cache. */
const char *rt_kcache_path(const rt_kcache *c);
/* Warnings so far (directory refused, first failed write), one per line,
 * or NULL when there were none.  Owned by the cache. */
const char *rt_kcache_warning(const rt_kcache *c);

/* Look key up in memory, then on disk.  On a hit *payload is a malloc'd
 * copy (free() it) of *len bytes.  On a miss *payload = NULL, *len = 0. */
bool rt_kcache_get(rt_kcache *c, const rt_kcache_key_t *key, void **payload, size_t *len);
/* Remember payload under key, in memory and (when enabled) on disk.  Never
 * fails visibly: a failed disk write is counted and warned about once. */
void rt_kcache_put(rt_kcache *c, const rt_kcache_key_t *key, const void *payload, size_t len);

void rt_kcache_stats(const rt_kcache *c, rt_kcache_stats_t *out);

/* For `fusec cache stats`: the number of entry files (DIR/<hh>/<key>.bin) and
 * their total size in bytes, with the same directory resolution as
 * rt_kcache_open.  A missing directory is empty (true, 0, 0); false when it
 * exists but cannot be read. */
bool rt_kcache_disk_usage(const char *dir_or_null, uint64_t *entries, uint64_t *bytes);
/* For `fusec cache clear`: remove what looks like ours and nothing else:
 * entry files <hh>/<32 hex>.bin and their temp files <hh>/.<32 hex>.bin.XXXXXX
 * inside two-hex-digit subdirectories, then those subdirectories when empty.  Symlinks are never followed.  *removed (may be
 * NULL) counts removed files.  False if some of it could not be removed or
 * read; a missing directory is already clear (true). */
bool rt_kcache_clear(const char *dir_or_null, uint64_t *removed);

#endif
