/*
 * kcache.c - the kernel cache: compiled kernels in memory and on disk,
 * keyed by XXH3-128 of everything that went into compiling them.
 *
 * The key.  XXH3-128 over, in this order: the source, the compile options
 * sorted, the NVRTC version, the driver version, the arch string and the
 * fusec version.  Every field goes in with its length in front (8 bytes,
 * little-endian), and the options with their count in front, so that no two
 * different sets of parts can produce the same byte stream ("ab"+"c" versus
 * "a"+"bc", or one option "-a -b" versus two).  The options are fed in
 * sorted order by repeated selection of the next larger string (a handful
 * of options, so O(n^2) comparisons cost nothing and need no allocation),
 * which makes the key independent of the order the caller lists them in.
 * xxHash is not a cryptographic hash: the full key is stored inside each
 * entry and compared on read, and trust comes from the directory belonging
 * to us with mode 0700, not from the hash.
 *
 * Memory.  An open-addressing hash table indexed by the first 8 bytes of
 * the key (already uniformly distributed), linear probing, grown at 3/4
 * load; it owns a copy of each payload and hands out copies, so a caller
 * never holds a pointer that a concurrent put could free.  One mutex guards
 * the table, the statistics and the warning text; disk I/O runs outside it,
 * so independent kernels compiled on several threads do not serialize on
 * each other's fsync.
 *
 * Disk.  One file per entry, DIR/<hh>/<32 hex>.bin:
 *
 *     offset  size  field
 *          0     8  magic "FUSECKC1"
 *          8     4  format version (u32, little-endian)
 *         12    16  the full key
 *         28     8  payload length (u64, little-endian)
 *         36     8  XXH3-64 of the payload (u64, little-endian)
 *         44     n  payload
 *
 * A read opens with O_NOFOLLOW (a planted symlink is refused) and
 * O_NONBLOCK (a planted FIFO cannot hang us), requires a regular file whose
 * size is exactly 44 + the recorded length, then checks magic, version, key
 * and payload hash.  Any failure is a miss, and the file is removed - but
 * only if the path still names the very file we read (same device and
 * inode), so that we do not delete a good entry another process has just
 * renamed into place.  A write goes through rt_write_file_atomic
 * (runtime/fileio.c): a fresh temporary file next to the final name,
 * written whole, fsynced and closed (each checked), renamed over the final
 * name, the folder fsynced.  rename() is atomic, so readers in any process
 * see no file, an older complete entry or the new complete entry; two
 * processes writing the same key just replace one valid file with another.
 * A write that fails at any step leaves no temporary file, counts a failure
 * and records one warning; the caller has its compiled kernel either way.
 *
 * The directory is accepted only if it is a directory owned by the
 * effective user and not writable by group or others (another user who can
 * write there could plant a kernel we would load and run).  Otherwise the
 * cache keeps working in memory and says why.
 */
#define _GNU_SOURCE
#include "runtime/kcache.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fusec.h"
#include "runtime/fileio.h"

/* Header-only use of xxHash: no library to link or ship, and the functions
 * stay private to this file. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#define KC_MAGIC "FUSECKC1"
#define KC_HEADER 44

/* ---- little-endian fields --------------------------------------------- */

static void put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++) p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* ---- the key ------------------------------------------------------------ */

static void hash_field(XXH3_state_t *s, const void *p, size_t n) {
    unsigned char len[8];
    put_le(len, n, 8);
    XXH3_128bits_update(s, len, sizeof len);
    if (n) XXH3_128bits_update(s, p, n);
}

static void hash_str(XXH3_state_t *s, const char *str) {
    hash_field(s, str ? str : "", str ? strlen(str) : 0);
}

static void hash_int(XXH3_state_t *s, int64_t v) {
    unsigned char b[8];
    put_le(b, (uint64_t)v, 8);
    hash_field(s, b, sizeof b);
}

static int opt_cmp(const char *a, const char *b) { return strcmp(a ? a : "", b ? b : ""); }

/* Feed the options in sorted order, duplicates included: each round picks
 * the smallest option greater than the previous round's and feeds it as
 * many times as it occurs. */
static void hash_options(XXH3_state_t *s, const char *const *opts, int n) {
    if (!opts || n < 0) n = 0;
    hash_int(s, n);
    const char *prev = NULL;
    for (int fed = 0; fed < n;) {
        const char *next = NULL;
        for (int i = 0; i < n; i++)
            if ((!prev || opt_cmp(opts[i], prev) > 0) && (!next || opt_cmp(opts[i], next) < 0))
                next = opts[i] ? opts[i] : "";
        FC_ASSERT(next);
        for (int i = 0; i < n; i++)
            if (opt_cmp(opts[i], next) == 0) {
                hash_str(s, next);
                fed++;
            }
        prev = next;
    }
}

rt_kcache_key_t rt_kcache_key(const rt_kcache_keyparts *parts) {
    static const rt_kcache_keyparts none;
    if (!parts) parts = &none;
    XXH3_state_t s;
    XXH3_INITSTATE(&s);
    XXH3_128bits_reset(&s);
    hash_str(&s, parts->source);
    hash_options(&s, parts->options, parts->noptions);
    hash_int(&s, parts->nvrtc_major);
    hash_int(&s, parts->nvrtc_minor);
    hash_int(&s, parts->driver_version);
    hash_str(&s, parts->arch);
    hash_str(&s, parts->fusec_version ? parts->fusec_version : FUSEC_VERSION_STRING);
    XXH128_canonical_t canon;
    XXH128_canonicalFromHash(&canon, XXH3_128bits_digest(&s));
    rt_kcache_key_t k;
    memcpy(k.bytes, canon.digest, sizeof k.bytes);
    return k;
}

void rt_kcache_key_hex(const rt_kcache_key_t *key, char hex[33]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        hex[2 * i] = digits[key->bytes[i] >> 4];
        hex[2 * i + 1] = digits[key->bytes[i] & 15];
    }
    hex[32] = '\0';
}

/* ---- the cache object ---------------------------------------------------- */

typedef struct kc_slot {
    bool used;
    rt_kcache_key_t key;
    unsigned char *payload; /* malloc'd (at least 1 byte, so never NULL when used) */
    size_t len;
} kc_slot;

struct rt_kcache {
    char *dir;       /* NULL: memory only */
    bool fail_write; /* FUSEC_KCACHE_FAIL_WRITE */
    pthread_mutex_t mu;
    kc_slot *slots;  /* capacity a power of two, or 0 */
    size_t cap, count;
    rt_kcache_stats_t st;
    bool warned_write;
    ir_str warn;
};

static void kc_lock(const rt_kcache *c) { pthread_mutex_lock((pthread_mutex_t *)&c->mu); }
static void kc_unlock(const rt_kcache *c) { pthread_mutex_unlock((pthread_mutex_t *)&c->mu); }

/* Append one warning line to the cache's text and, if given, to d's (not
 * as an error: the cache still works).  Call with the mutex held or before
 * the cache is shared. */
static void kc_warn(rt_kcache *c, ir_diag *d, const char *fmt, ...) IR_PRINTF(3, 4);
static void kc_warn(rt_kcache *c, ir_diag *d, const char *fmt, ...) {
    va_list ap;
    ir_str_puts(&c->warn, "warning: kernel cache: ");
    va_start(ap, fmt);
    ir_str_vprintf(&c->warn, fmt, ap);
    va_end(ap);
    ir_str_putc(&c->warn, '\n');
    if (d) {
        ir_str_puts(&d->out, "warning: kernel cache: ");
        va_start(ap, fmt);
        ir_str_vprintf(&d->out, fmt, ap);
        va_end(ap);
        ir_str_putc(&d->out, '\n');
    }
}

/* ---- memory table (mutex held) -------------------------------------------- */

static size_t kc_home(const rt_kcache_key_t *k, size_t cap) {
    return (size_t)get_le(k->bytes, 8) & (cap - 1);
}

static kc_slot *mem_find(const rt_kcache *c, const rt_kcache_key_t *k) {
    if (!c->cap) return NULL;
    for (size_t i = kc_home(k, c->cap);; i = (i + 1) & (c->cap - 1)) {
        kc_slot *s = &c->slots[i];
        if (!s->used) return NULL;
        if (memcmp(s->key.bytes, k->bytes, 16) == 0) return s;
    }
}

static bool mem_grow(rt_kcache *c) {
    size_t ncap = c->cap ? 2 * c->cap : 64;
    kc_slot *ns = calloc(ncap, sizeof *ns);
    if (!ns) return false;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].used) continue;
        size_t j = kc_home(&c->slots[i].key, ncap);
        while (ns[j].used) j = (j + 1) & (ncap - 1);
        ns[j] = c->slots[i];
    }
    free(c->slots);
    c->slots = ns;
    c->cap = ncap;
    return true;
}

/* Take ownership of copy (len bytes); frees it if it cannot be kept. */
static void mem_insert(rt_kcache *c, const rt_kcache_key_t *k, unsigned char *copy, size_t len) {
    kc_slot *s = mem_find(c, k);
    if (s) {
        free(s->payload);
    } else {
        if ((c->count + 1) * 4 > c->cap * 3 && !mem_grow(c)) {
            free(copy); /* out of memory: the disk copy (if any) still serves */
            return;
        }
        size_t i = kc_home(k, c->cap);
        while (c->slots[i].used) i = (i + 1) & (c->cap - 1);
        s = &c->slots[i];
        s->used = true;
        s->key = *k;
        c->count++;
    }
    s->payload = copy;
    s->len = len;
}

static unsigned char *dup_bytes(const void *p, size_t n) {
    unsigned char *q = malloc(n ? n : 1);
    if (q && n) memcpy(q, p, n);
    return q;
}

/* ---- directory resolution and checks -------------------------------------- */

static char *join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    while (la > 1 && a[la - 1] == '/') la--; /* "x/" + "/y" -> "x/y" */
    char *r = malloc(la + lb + 1);
    if (!r) return NULL;
    memcpy(r, a, la);
    memcpy(r + la, b, lb + 1);
    return r;
}

static char *home_dir_cache(void) {
    const char *home = getenv("HOME");
    if (home && *home) return join(home, "/.cache/fusec");
    /* No HOME: ask the password database (re-entrantly: we are a library). */
    long sz = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t bufsz = sz > 0 ? (size_t)sz : 16384;
    char *buf = malloc(bufsz);
    if (!buf) return NULL;
    struct passwd pw, *res = NULL;
    char *r = NULL;
    if (getpwuid_r(geteuid(), &pw, buf, bufsz, &res) == 0 && res && res->pw_dir && *res->pw_dir)
        r = join(res->pw_dir, "/.cache/fusec");
    free(buf);
    return r;
}

char *rt_kcache_dir(const char *dir_or_null) {
    const char *e;
    if (dir_or_null && *dir_or_null) return join(dir_or_null, "");
    if ((e = getenv("FUSEC_CACHE_DIR")) && *e) return join(e, "");
    /* XDG: a relative XDG_CACHE_HOME is invalid and must be ignored. */
    if ((e = getenv("XDG_CACHE_HOME")) && e[0] == '/') return join(e, "/fusec");
    return home_dir_cache();
}

/* mkdir -p with mode 0700 for every component we create.  True when the
 * whole path exists afterwards (as something: the caller checks what). */
static bool mkdir_p(char *path) {
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char saved = *p;
        *p = '\0';
        int rc = mkdir(path, 0700);
        int err = errno;
        *p = saved;
        if (rc != 0 && err != EEXIST) {
            /* An existing component we may not write to (e.g. "/home")
             * reports EACCES or EROFS; only the final answer matters. */
            struct stat st;
            *p = '\0';
            bool exists = stat(path, &st) == 0;
            *p = saved;
            if (!exists) {
                errno = err;
                return false;
            }
        }
        if (saved == '\0') return true;
    }
}

/* Why dir cannot be used ("it is ..."), written to why; or false when it
 * is fine. */
static bool dir_refused(char *dir, char *why, size_t n) {
    struct stat st;
    if (!mkdir_p(dir)) {
        snprintf(why, n, "cannot create it: %s", strerror(errno));
        return true;
    }
    if (stat(dir, &st) != 0) {
        snprintf(why, n, "cannot access it: %s", strerror(errno));
        return true;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(why, n, "it is not a directory");
        return true;
    }
    if (st.st_uid != geteuid()) {
        snprintf(why, n, "it is owned by uid %ld, not by this user (uid %ld)", (long)st.st_uid,
                 (long)geteuid());
        return true;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(why, n, "it is writable by group or others (mode %04o; chmod 700 it)",
                 (unsigned)(st.st_mode & 07777));
        return true;
    }
    if (access(dir, R_OK | W_OK | X_OK) != 0) {
        snprintf(why, n, "it is not readable and writable: %s", strerror(errno));
        return true;
    }
    return false;
}

rt_kcache *rt_kcache_open(const char *dir_or_null, ir_diag *d) {
    rt_kcache *c = calloc(1, sizeof *c);
    if (!c || pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        if (d) ir_error(d, (ir_loc){0, 0}, "kernel cache: out of memory");
        return NULL;
    }
    const char *f = getenv("FUSEC_KCACHE_FAIL_WRITE");
    c->fail_write = f && *f && strcmp(f, "0") != 0;

    char *dir = rt_kcache_dir(dir_or_null);
    char why[256];
    if (!dir) {
        kc_warn(c, d, "no cache directory (set FUSEC_CACHE_DIR or HOME); caching in memory only");
    } else if (dir_refused(dir, why, sizeof why)) {
        kc_warn(c, d, "not using '%s': %s; caching in memory only", dir, why);
        free(dir);
    } else {
        c->dir = dir;
    }
    return c;
}

void rt_kcache_close(rt_kcache *c) {
    if (!c) return;
    for (size_t i = 0; i < c->cap; i++)
        if (c->slots[i].used) free(c->slots[i].payload);
    free(c->slots);
    free(c->dir);
    ir_str_free(&c->warn);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

bool rt_kcache_disk_enabled(const rt_kcache *c) { return c && c->dir; }
const char *rt_kcache_path(const rt_kcache *c) { return c ? c->dir : NULL; }
const char *rt_kcache_warning(const rt_kcache *c) {
    return c && c->warn.len ? c->warn.buf : NULL;
}

void rt_kcache_stats(const rt_kcache *c, rt_kcache_stats_t *out) {
    memset(out, 0, sizeof *out);
    if (!c) return;
    kc_lock(c);
    *out = c->st;
    kc_unlock(c);
}

/* ---- entry files ------------------------------------------------------------- */

/* DIR/hh/<hex><suffix>, malloc'd. */
static char *entry_path(const rt_kcache *c, const rt_kcache_key_t *k, const char *suffix) {
    char hex[33];
    rt_kcache_key_hex(k, hex);
    size_t n = strlen(c->dir) + 4 + 32 + strlen(suffix) + 1;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s/%.2s/%s%s", c->dir, hex, hex, suffix);
    return p;
}

/* Remove a bad entry, but only if path still names the file we examined
 * (seen, when we got that far): never a good one renamed in meanwhile. */
static void remove_bad(const char *path, const struct stat *seen) {
    struct stat now;
    if (seen && (lstat(path, &now) != 0 || now.st_dev != seen->st_dev || now.st_ino != seen->st_ino))
        return;
    (void)unlink(path); /* best effort: a directory or a read-only dir stays */
}

typedef enum { DR_MISS, DR_HIT, DR_BAD } disk_result;

static disk_result disk_read(const rt_kcache *c, const rt_kcache_key_t *k, unsigned char **out,
                             size_t *outlen) {
    char *path = entry_path(c, k, ".bin");
    if (!path) return DR_MISS;
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        disk_result r = DR_MISS;
        /* ENOENT: not cached.  ENOTDIR: something foreign sits where the
         * <hh> directory belongs; nothing of ours to remove. */
        if (errno != ENOENT && errno != ENOTDIR && errno != ENOMEM && errno != EMFILE &&
            errno != ENFILE && errno != EINTR) {
            remove_bad(path, NULL); /* a symlink (ELOOP), unreadable (EACCES), ... */
            r = DR_BAD;
        }
        free(path);
        return r;
    }
    struct stat st;
    unsigned char *buf = NULL;
    disk_result r = DR_BAD;
    if (fstat(fd, &st) != 0) goto done;
    if (!S_ISREG(st.st_mode) || st.st_size < KC_HEADER ||
        (uint64_t)st.st_size - KC_HEADER > RT_KCACHE_MAX_PAYLOAD)
        goto bad;
    size_t size = (size_t)st.st_size;
    buf = malloc(size);
    if (!buf) {
        r = DR_MISS; /* our problem, not the file's */
        goto done;
    }
    for (size_t got = 0; got < size;) {
        ssize_t n = pread(fd, buf + got, size - got, (off_t)got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) goto bad; /* error, or shorter than fstat said */
        got += (size_t)n;
    }
    uint64_t len = get_le(buf + 28, 8);
    if (memcmp(buf, KC_MAGIC, 8) != 0 || get_le(buf + 8, 4) != RT_KCACHE_FORMAT_VERSION ||
        memcmp(buf + 12, k->bytes, 16) != 0 || len != size - KC_HEADER ||
        get_le(buf + 36, 8) != XXH3_64bits(buf + KC_HEADER, (size_t)len))
        goto bad;
    memmove(buf, buf + KC_HEADER, (size_t)len);
    *out = buf;
    *outlen = (size_t)len;
    buf = NULL;
    r = DR_HIT;
    goto done;
bad:
    remove_bad(path, &st);
    r = DR_BAD;
done:
    free(buf);
    close(fd);
    free(path);
    return r;
}

/* Write one entry through rt_write_file_atomic (temp file, fsync, rename,
 * fsync the folder).  False with the reason in wd on failure; the writer
 * has then removed its temp file. */
static bool disk_write(const rt_kcache *c, const rt_kcache_key_t *k, const void *payload, size_t len,
                       ir_diag *wd) {
    char *final = entry_path(c, k, ".bin");
    if (!final) {
        ir_error(wd, (ir_loc){0, 0}, "out of memory");
        return false;
    }
    /* DIR/hh: the one folder level below DIR, created 0700 on first use. */
    char *slash = strrchr(final, '/');
    *slash = '\0';
    bool ok = mkdir(final, 0700) == 0 || errno == EEXIST;
    if (!ok) ir_error(wd, (ir_loc){0, 0}, "%s: mkdir: %s", final, strerror(errno));
    *slash = '/';
    if (ok && c->fail_write) { /* FUSEC_KCACHE_FAIL_WRITE: as if the disk were full */
        ir_error(wd, (ir_loc){0, 0}, "%s: write failed: %s (injected)", final, strerror(ENOSPC));
        ok = false;
    }
    if (ok) {
        unsigned char h[KC_HEADER];
        memcpy(h, KC_MAGIC, 8);
        put_le(h + 8, RT_KCACHE_FORMAT_VERSION, 4);
        memcpy(h + 12, k->bytes, 16);
        put_le(h + 28, len, 8);
        put_le(h + 36, XXH3_64bits(payload, len), 8);
        const void *parts[2] = {h, payload};
        size_t lens[2] = {sizeof h, len};
        ok = rt_write_file_atomic(final, parts, lens, 2, 0600, wd) == FUSEC_OK;
    }
    free(final);
    return ok;
}

/* ---- get and put ------------------------------------------------------------ */

bool rt_kcache_get(rt_kcache *c, const rt_kcache_key_t *key, void **payload, size_t *len) {
    *payload = NULL;
    *len = 0;
    if (!c || !key) return false;

    kc_lock(c);
    kc_slot *s = mem_find(c, key);
    if (s) {
        unsigned char *copy = dup_bytes(s->payload, s->len);
        if (copy) {
            *payload = copy;
            *len = s->len;
            c->st.hits_mem++;
            kc_unlock(c);
            return true;
        }
    }
    kc_unlock(c);

    disk_result r = DR_MISS;
    unsigned char *buf = NULL;
    size_t n = 0;
    if (c->dir) r = disk_read(c, key, &buf, &n);
    kc_lock(c);
    if (r == DR_HIT) {
        unsigned char *copy = dup_bytes(buf, n);
        if (copy) mem_insert(c, key, copy, n);
        c->st.hits_disk++;
        *payload = buf;
        *len = n;
    } else {
        c->st.misses++;
        if (r == DR_BAD) c->st.corrupt++;
    }
    kc_unlock(c);
    return r == DR_HIT;
}

void rt_kcache_put(rt_kcache *c, const rt_kcache_key_t *key, const void *payload, size_t len) {
    if (!c || !key || (!payload && len)) return;
    unsigned char *copy = dup_bytes(payload, len);
    kc_lock(c);
    if (copy) mem_insert(c, key, copy, len);
    kc_unlock(c);
    if (!c->dir || (uint64_t)len > RT_KCACHE_MAX_PAYLOAD) return;

    ir_diag wd;
    ir_diag_init(&wd, NULL, NULL, 0);
    bool ok = disk_write(c, key, payload ? payload : "", len, &wd);
    kc_lock(c);
    if (ok) {
        c->st.writes++;
    } else {
        c->st.write_failures++;
        if (!c->warned_write) {
            /* wd reads "[PATH: ]error: STEP: REASON\n"; inside our
             * warning that is a reason, not an error of its own. */
            c->warned_write = true;
            char *why = wd.out.buf ? wd.out.buf : "";
            char *err = strstr(why, "error: ");
            if (err) memmove(err, err + 7, strlen(err + 7) + 1);
            why[strcspn(why, "\n")] = '\0';
            kc_warn(c, NULL, "cannot cache a kernel on disk (%s); continuing without", why);
        }
    }
    kc_unlock(c);
    ir_diag_free(&wd);
}

/* ---- usage and clear ------------------------------------------------------------ */

static bool is_hex(char ch) { return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f'); }

static bool all_hex(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!is_hex(s[i])) return false;
    return true;
}

/* 1: an entry "<32 hex>.bin" whose first two digits are the subdirectory's;
 * 2: the temp file of one, ".<32 hex>.bin.XXXXXX" (rt_write_file_atomic's
 * naming), left behind by a killed writer or being written now; 0: not ours. */
static int entry_kind(const char *sub, const char *name) {
    bool tmp = name[0] == '.';
    const char *h = name + tmp;
    size_t n = strlen(h);
    if (n < 36 || !all_hex(h, 32) || h[0] != sub[0] || h[1] != sub[1] || memcmp(h + 32, ".bin", 4) != 0)
        return 0;
    if (!tmp) return n == 36 ? 1 : 0;
    return n == 36 + 7 && h[36] == '.' ? 2 : 0;
}

/* Visit our files: for each two-hex-digit subdirectory (never through a
 * symlink), call fn on each entry or temp file, then optionally rmdir the
 * subdirectory (it stays if something foreign is left in it). */
typedef bool (*kc_visit_fn)(int subfd, const char *name, int kind, const struct stat *st, void *arg);

static bool kc_walk(const char *dir_or_null, kc_visit_fn fn, void *arg, bool rmdirs) {
    char *dir = rt_kcache_dir(dir_or_null);
    if (!dir) return false;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    free(dir);
    if (dfd < 0) return errno == ENOENT;
    DIR *top = fdopendir(dfd);
    if (!top) {
        close(dfd);
        return false;
    }
    bool ok = true;
    struct dirent *e;
    while ((e = readdir(top))) {
        const char *sname = e->d_name;
        if (strlen(sname) != 2 || !all_hex(sname, 2)) continue;
        int sfd = openat(dfd, sname, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (sfd < 0) {
            if (errno != ENOTDIR && errno != ELOOP && errno != ENOENT) ok = false;
            continue;
        }
        DIR *sub = fdopendir(sfd);
        if (!sub) {
            close(sfd);
            ok = false;
            continue;
        }
        struct dirent *f;
        while ((f = readdir(sub))) {
            int kind = entry_kind(sname, f->d_name);
            struct stat st;
            if (!kind || fstatat(sfd, f->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) continue;
            if (S_ISDIR(st.st_mode)) continue;
            if (!fn(sfd, f->d_name, kind, &st, arg)) ok = false;
        }
        closedir(sub);
        if (rmdirs && unlinkat(dfd, sname, AT_REMOVEDIR) != 0 && errno != ENOTEMPTY &&
            errno != EEXIST && errno != ENOENT)
            ok = false;
    }
    closedir(top);
    return ok;
}

typedef struct {
    uint64_t entries, bytes;
} kc_usage;

static bool usage_visit(int subfd, const char *name, int kind, const struct stat *st, void *arg) {
    (void)subfd;
    (void)name;
    kc_usage *u = arg;
    if (kind == 1 && S_ISREG(st->st_mode)) {
        u->entries++;
        u->bytes += (uint64_t)st->st_size;
    }
    return true;
}

bool rt_kcache_disk_usage(const char *dir_or_null, uint64_t *entries, uint64_t *bytes) {
    kc_usage u = {0, 0};
    bool ok = kc_walk(dir_or_null, usage_visit, &u, false);
    if (entries) *entries = u.entries;
    if (bytes) *bytes = u.bytes;
    return ok;
}

static bool clear_visit(int subfd, const char *name, int kind, const struct stat *st, void *arg) {
    (void)kind;
    (void)st;
    if (unlinkat(subfd, name, 0) != 0) return errno == ENOENT; /* gone already: fine */
    ++*(uint64_t *)arg;
    return true;
}

bool rt_kcache_clear(const char *dir_or_null, uint64_t *removed) {
    uint64_t n = 0;
    bool ok = kc_walk(dir_or_null, clear_visit, &n, true);
    if (removed) *removed = n;
    return ok;
}
