/*
 * test_kcache.c - the kernel cache (runtime/kcache.c): keys, memory and disk
 * round trips, and above all what happens when things go wrong.
 *
 * Corruption: an entry truncated at every byte offset, and every single bit
 * of an entry flipped, must be a miss, be removed, and be rewritten
 * correctly by the next put; so must a wrong format version, another key's
 * entry, foreign files, symlinks, FIFOs, directories and unreadable files at
 * the entry's path.  Directories: one writable by group or others, one owned
 * by another user (needs root: chown to nobody), a regular file and an
 * uncreatable path are all refused with a warning, and the cache then works
 * in memory.  Write failures: an injected one (FUSEC_KCACHE_FAIL_WRITE), a
 * real EFBIG from RLIMIT_FSIZE (no root needed) and a real ENOSPC on a 64 KiB
 * tmpfs mounted in a private mount namespace (skipped where unshare/mount are
 * not permitted): none may leave a temp file or a bad entry behind.
 * Concurrency: forked processes putting and getting the same and different
 * keys in one directory, threads sharing one cache, and writers killed with
 * SIGKILL mid-write; every get must return a miss or exactly the right bytes.
 *
 * Tests that need a child process (privileges, rlimits, namespaces) run it
 * through run_child(): the child's CHECK failures print as usual and its
 * exit status carries the verdict back (77 = skipped).
 *
 * FUSEC_KCACHE_STRESS_PROCS / _OPS / _KEYS scale the multi-process test up
 * and FUSEC_KCACHE_STRESS_KILL_ROUNDS the killed-writer test (3 kills a
 * round); tests/kcache/run.sh --stress uses them.  Test names given as
 * arguments run only those tests.
 */
#define _GNU_SOURCE
#include "runtime/kcache.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fusec.h"
#include "test.h"

#define SKIP_STATUS 77
#define NOBODY 65534

/* ---- helpers ------------------------------------------------------------------ */

static char *path2(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *p = malloc(n);
    snprintf(p, n, "%s/%s", a, b);
    return p;
}

static char *make_tmpdir(void) {
    const char *t = getenv("TMPDIR");
    char *tmpl = path2(t && *t ? t : "/tmp", "fusec-kcache-XXXXXX");
    if (!mkdtemp(tmpl)) {
        perror("mkdtemp");
        exit(2);
    }
    return tmpl;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st;
    (void)flag;
    (void)f;
    remove(p);
    return 0;
}

static void rm_rf(char *dir) {
    if (!dir) return;
    chmod(dir, 0700);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(dir);
}

static rt_kcache_key_t key_of(int i) {
    char src[64];
    snprintf(src, sizeof src, "extern \"C\" __global__ void k%d() {}", i);
    const char *opts[] = {"--std=c++17", "-default-device"};
    rt_kcache_keyparts p = {.source = src, .options = opts, .noptions = 2, .nvrtc_major = 12,
                            .nvrtc_minor = 4, .driver_version = 12040, .arch = "sm_90"};
    return rt_kcache_key(&p);
}

/* Deterministic payload of key i: length and bytes differ per key. */
static unsigned char *payload_of(int i, size_t *len) {
    size_t n = 1 + ((size_t)i * 7919u) % 3000u;
    if (i % 5 == 4) n += 60000; /* some large ones widen the race windows */
    unsigned char *p = malloc(n);
    uint32_t x = 2166136261u ^ (uint32_t)i;
    for (size_t j = 0; j < n; j++) {
        x = x * 1664525u + 1013904223u;
        p[j] = (unsigned char)(x >> 24);
    }
    *len = n;
    return p;
}

static bool payload_is(int i, const void *p, size_t len) {
    size_t n;
    unsigned char *want = payload_of(i, &n);
    bool ok = p && len == n && memcmp(want, p, n) == 0;
    free(want);
    return ok;
}

static char *entry_file(const char *dir, const rt_kcache_key_t *k) {
    char hex[33], rel[64];
    rt_kcache_key_hex(k, hex);
    snprintf(rel, sizeof rel, "%.2s/%s.bin", hex, hex);
    return path2(dir, rel);
}

static unsigned char *read_all(const char *path, size_t *len) {
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        exit(2);
    }
    unsigned char *buf = malloc(1 << 20);
    *len = fread(buf, 1, 1 << 20, f);
    fclose(f);
    return buf;
}

static void write_bytes(const char *path, const void *p, size_t n) {
    unlink(path);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    if (n) fwrite(p, 1, n, f);
    fclose(f);
}

static bool exists(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Files under dir whose names end in suffix (recursively, no symlinks);
 * suffix TEMPS counts temp files (".NAME.XXXXXX", rt_write_file_atomic's). */
#define TEMPS NULL
static const char *count_suffix_;
static int count_;
static int count_one(const char *p, const struct stat *st, int flag, struct FTW *f) {
    (void)st;
    if (flag != FTW_F) return 0;
    if (!count_suffix_) {
        count_ += p[f->base] == '.';
    } else {
        size_t n = strlen(p), m = strlen(count_suffix_);
        count_ += n >= m && strcmp(p + n - m, count_suffix_) == 0;
    }
    return 0;
}
static int count_files(const char *dir, const char *suffix) {
    count_suffix_ = suffix;
    count_ = 0;
    nftw(dir, count_one, 16, FTW_PHYS);
    return count_;
}

/* Get key i through a fresh cache (nothing in memory): 1 = right payload,
 * 0 = miss, -1 = WRONG payload.  *st gets that cache's stats. */
static int fresh_get(const char *dir, int i, rt_kcache_stats_t *st) {
    rt_kcache *c = rt_kcache_open(dir, NULL);
    rt_kcache_key_t k = key_of(i);
    void *p;
    size_t n;
    int r = rt_kcache_get(c, &k, &p, &n) ? (payload_is(i, p, n) ? 1 : -1) : 0;
    if (st) rt_kcache_stats(c, st);
    free(p);
    rt_kcache_close(c);
    return r;
}

static void put_key(rt_kcache *c, int i) {
    size_t n;
    unsigned char *p = payload_of(i, &n);
    rt_kcache_key_t k = key_of(i);
    rt_kcache_put(c, &k, p, n);
    free(p);
}

/* Run fn in a child process; returns its exit status (77: skipped), or
 * 128+signal. */
static int run_child(void (*fn)(void *), void *arg) {
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) return -1;
    if (pid == 0) {
        test_failed_ = 0;
        fn(arg);
        fflush(stdout);
        fflush(stderr);
        _exit(test_failed_ ? 1 : 0);
    }
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void expect_child(int status, const char *what) {
    if (status == SKIP_STATUS) {
        printf("  (skipped: %s)\n", what);
        return;
    }
    if (status != 0) fprintf(stderr, "child for %s ended with status %d\n", what, status);
    CHECK_EQ_INT(status, 0);
}

static int env_int(const char *name, int dflt) {
    const char *e = getenv(name);
    return e && atoi(e) > 0 ? atoi(e) : dflt;
}

/* ---- keys ----------------------------------------------------------------------- */

TEST(key_parts) {
    const char *o1[] = {"--std=c++17", "-default-device", "--fmad=true", "-DNDEBUG"};
    const char *o2[] = {"-DNDEBUG", "--fmad=true", "--std=c++17", "-default-device"};
    rt_kcache_keyparts a = {.source = "src", .options = o1, .noptions = 4, .nvrtc_major = 12,
                            .nvrtc_minor = 4, .driver_version = 12040, .arch = "sm_90"};
    rt_kcache_keyparts b = a;
    b.options = o2;
    rt_kcache_key_t ka = rt_kcache_key(&a), kb = rt_kcache_key(&b);
    CHECK(memcmp(&ka, &kb, 16) == 0); /* option order does not matter */

    rt_kcache_keyparts c = a;
    c.fusec_version = FUSEC_VERSION_STRING; /* NULL means the running version */
    rt_kcache_key_t kc = rt_kcache_key(&c);
    CHECK(memcmp(&ka, &kc, 16) == 0);

    /* Every part changes the key. */
    rt_kcache_keyparts v[8];
    const char *o3[] = {"--std=c++17", "-default-device", "--fmad=false", "-DNDEBUG"};
    for (int i = 0; i < 8; i++) v[i] = a;
    v[0].source = "src ";
    v[1].options = o3;
    v[2].noptions = 3;
    v[3].nvrtc_major = 13;
    v[4].nvrtc_minor = 5;
    v[5].driver_version = 12050;
    v[6].arch = "sm_80";
    v[7].fusec_version = "0.0.0-other";
    rt_kcache_key_t kv[8];
    for (int i = 0; i < 8; i++) {
        kv[i] = rt_kcache_key(&v[i]);
        CHECK(memcmp(&kv[i], &ka, 16) != 0);
        for (int j = 0; j < i; j++) CHECK(memcmp(&kv[i], &kv[j], 16) != 0);
    }

    /* Field boundaries cannot collide. */
    rt_kcache_keyparts s1 = {.source = "ab", .arch = "c"}, s2 = {.source = "a", .arch = "bc"};
    rt_kcache_key_t k1 = rt_kcache_key(&s1), k2 = rt_kcache_key(&s2);
    CHECK(memcmp(&k1, &k2, 16) != 0);
    const char *one[] = {"-a -b"}, *two[] = {"-a", "-b"}, *dup[] = {"-a", "-a"}, *single[] = {"-a"};
    rt_kcache_keyparts p1 = {.options = one, .noptions = 1}, p2 = {.options = two, .noptions = 2};
    rt_kcache_keyparts p3 = {.options = dup, .noptions = 2}, p4 = {.options = single, .noptions = 1};
    k1 = rt_kcache_key(&p1);
    k2 = rt_kcache_key(&p2);
    CHECK(memcmp(&k1, &k2, 16) != 0);
    k1 = rt_kcache_key(&p3);
    k2 = rt_kcache_key(&p4);
    CHECK(memcmp(&k1, &k2, 16) != 0); /* duplicates count */
    rt_kcache_keyparts src_opt = {.source = "-a"}, opt_src = {.options = single, .noptions = 1};
    k1 = rt_kcache_key(&src_opt);
    k2 = rt_kcache_key(&opt_src);
    CHECK(memcmp(&k1, &k2, 16) != 0);

    /* Deterministic, and hex is 32 lower-case digits. */
    rt_kcache_key_t again = rt_kcache_key(&a);
    CHECK(memcmp(&again, &ka, 16) == 0);
    char hex[33];
    rt_kcache_key_hex(&ka, hex);
    CHECK_EQ_INT(strlen(hex), 32);
    for (int i = 0; i < 32; i++) CHECK((hex[i] >= '0' && hex[i] <= '9') || (hex[i] >= 'a' && hex[i] <= 'f'));
}

/* ---- round trips ------------------------------------------------------------------ */

TEST(roundtrip_memory_and_disk) {
    char *dir = make_tmpdir();
    char *cdir = path2(dir, "nested/cache");
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    rt_kcache *c = rt_kcache_open(cdir, &d);
    CHECK(rt_kcache_disk_enabled(c));
    CHECK(rt_kcache_warning(c) == NULL);
    CHECK_EQ_INT(d.nerr, 0);
    CHECK_EQ_INT(d.out.len, 0);
    struct stat st;
    CHECK(stat(cdir, &st) == 0 && (st.st_mode & 0777) == 0700); /* created 0700 */
    char *mid = path2(dir, "nested");
    CHECK(stat(mid, &st) == 0 && (st.st_mode & 0777) == 0700);
    free(mid);

    void *p;
    size_t n;
    rt_kcache_key_t k0 = key_of(0), k4 = key_of(4);
    CHECK(!rt_kcache_get(c, &k0, &p, &n));
    CHECK(p == NULL && n == 0);
    put_key(c, 0);
    put_key(c, 4);
    rt_kcache_put(c, &k4, NULL, 0); /* replace with an empty payload */
    put_key(c, 4);                  /* and back */
    CHECK(rt_kcache_get(c, &k0, &p, &n) && payload_is(0, p, n));
    free(p);
    rt_kcache_stats_t s;
    rt_kcache_stats(c, &s);
    CHECK_EQ_INT(s.hits_mem, 1);
    CHECK_EQ_INT(s.misses, 1);
    CHECK_EQ_INT(s.writes, 4);
    CHECK_EQ_INT(s.write_failures, 0);
    rt_kcache_close(c);

    /* The files: DIR/hh/<hex>.bin, 44 + n bytes, mode 0600 in a 0700 subdir. */
    char *f = entry_file(cdir, &k0);
    size_t n0;
    free(payload_of(0, &n0));
    CHECK(stat(f, &st) == 0 && (size_t)st.st_size == 44 + n0 && (st.st_mode & 0777) == 0600);
    *strrchr(f, '/') = '\0';
    CHECK(stat(f, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 0777) == 0700);
    free(f);
    CHECK_EQ_INT(count_files(cdir, TEMPS), 0);

    /* A new process (fresh cache) finds them on disk, then in memory. */
    c = rt_kcache_open(cdir, NULL);
    CHECK(rt_kcache_get(c, &k4, &p, &n) && payload_is(4, p, n));
    free(p);
    CHECK(rt_kcache_get(c, &k4, &p, &n) && payload_is(4, p, n));
    free(p);
    rt_kcache_stats(c, &s);
    CHECK_EQ_INT(s.hits_disk, 1);
    CHECK_EQ_INT(s.hits_mem, 1);
    CHECK_EQ_INT(s.corrupt, 0);
    uint64_t entries, bytes;
    CHECK(rt_kcache_disk_usage(cdir, &entries, &bytes));
    size_t n4;
    free(payload_of(4, &n4));
    CHECK_EQ_INT(entries, 2);
    CHECK_EQ_INT(bytes, 88 + n0 + n4);
    rt_kcache_close(c);

    /* An empty payload round-trips through the disk too. */
    c = rt_kcache_open(cdir, NULL);
    rt_kcache_key_t k9 = key_of(9);
    rt_kcache_put(c, &k9, "", 0);
    rt_kcache_close(c);
    c = rt_kcache_open(cdir, NULL);
    CHECK(rt_kcache_get(c, &k9, &p, &n) && n == 0 && p != NULL);
    free(p);
    rt_kcache_close(c);

    ir_diag_free(&d);
    free(cdir);
    rm_rf(dir);
}

TEST(null_cache) {
    rt_kcache_key_t k = key_of(1);
    void *p = (void *)1;
    size_t n = 7;
    CHECK(!rt_kcache_get(NULL, &k, &p, &n));
    CHECK(p == NULL && n == 0);
    rt_kcache_put(NULL, &k, "x", 1);
    rt_kcache_stats_t s;
    rt_kcache_stats(NULL, &s);
    CHECK_EQ_INT(s.misses, 0);
    CHECK(rt_kcache_warning(NULL) == NULL);
    CHECK(!rt_kcache_disk_enabled(NULL));
    rt_kcache_close(NULL);
}

/* ---- directory resolution and refusal ------------------------------------------------ */

typedef struct {
    const char *name;
    char *value;
} saved_env;

static void env_save(saved_env *s, const char *name) {
    s->name = name;
    const char *v = getenv(name);
    s->value = v ? strdup(v) : NULL;
}
static void env_restore(saved_env *s) {
    if (s->value) setenv(s->name, s->value, 1);
    else unsetenv(s->name);
    free(s->value);
}

TEST(dir_resolution) {
    saved_env e[3];
    env_save(&e[0], "FUSEC_CACHE_DIR");
    env_save(&e[1], "XDG_CACHE_HOME");
    env_save(&e[2], "HOME");
    char *r;

    setenv("FUSEC_CACHE_DIR", "/a/b", 1);
    setenv("XDG_CACHE_HOME", "/x", 1);
    setenv("HOME", "/h", 1);
    CHECK_STR(r = rt_kcache_dir("/explicit/"), "/explicit");
    free(r);
    CHECK_STR(r = rt_kcache_dir(NULL), "/a/b");
    free(r);
    setenv("FUSEC_CACHE_DIR", "", 1);
    CHECK_STR(r = rt_kcache_dir(""), "/x/fusec");
    free(r);
    unsetenv("FUSEC_CACHE_DIR");
    setenv("XDG_CACHE_HOME", "/x/", 1);
    CHECK_STR(r = rt_kcache_dir(NULL), "/x/fusec");
    free(r);
    setenv("XDG_CACHE_HOME", "relative/x", 1); /* invalid per XDG: ignored */
    CHECK_STR(r = rt_kcache_dir(NULL), "/h/.cache/fusec");
    free(r);
    unsetenv("XDG_CACHE_HOME");
    CHECK_STR(r = rt_kcache_dir(NULL), "/h/.cache/fusec");
    free(r);
    unsetenv("HOME"); /* falls back on the password database */
    r = rt_kcache_dir(NULL);
    CHECK(r && strstr(r, "/.cache/fusec"));
    free(r);

    /* open(NULL) uses $FUSEC_CACHE_DIR. */
    char *dir = make_tmpdir();
    setenv("FUSEC_CACHE_DIR", dir, 1);
    rt_kcache *c = rt_kcache_open(NULL, NULL);
    CHECK(rt_kcache_disk_enabled(c));
    CHECK_STR(rt_kcache_path(c), dir);
    rt_kcache_close(c);
    rm_rf(dir);

    for (int i = 0; i < 3; i++) env_restore(&e[i]);
}

/* The cache refuses dir with a warning mentioning `why` and works in memory. */
static void expect_refused(const char *dir, const char *why) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    rt_kcache *c = rt_kcache_open(dir, &d);
    CHECK(c != NULL);
    CHECK(!rt_kcache_disk_enabled(c));
    CHECK(rt_kcache_path(c) == NULL);
    const char *w = rt_kcache_warning(c);
    CHECK(w && strstr(w, why));
    CHECK(w && strstr(w, "warning: kernel cache:"));
    CHECK(d.out.buf && strstr(d.out.buf, why));
    CHECK_EQ_INT(d.nerr, 0); /* a warning, not an error */
    if (w && !strstr(w, why)) fprintf(stderr, "  warning was: %s", w);
    put_key(c, 3);
    void *p;
    size_t n;
    rt_kcache_key_t k = key_of(3);
    CHECK(rt_kcache_get(c, &k, &p, &n) && payload_is(3, p, n));
    free(p);
    rt_kcache_stats_t s;
    rt_kcache_stats(c, &s);
    CHECK_EQ_INT(s.writes + s.write_failures, 0); /* never touched the disk */
    rt_kcache_close(c);
    ir_diag_free(&d);
}

TEST(dir_refused) {
    char *dir = make_tmpdir();
    char *bad = path2(dir, "shared");
    mkdir(bad, 0700);
    chmod(bad, 0777);
    expect_refused(bad, "writable by group or others");
    CHECK_EQ_INT(count_files(bad, ""), 0);
    chmod(bad, 0720);
    expect_refused(bad, "writable by group or others");
    chmod(bad, 0702);
    expect_refused(bad, "writable by group or others");
    chmod(bad, 0755); /* readable by others is fine */
    rt_kcache *c = rt_kcache_open(bad, NULL);
    CHECK(rt_kcache_disk_enabled(c));
    rt_kcache_close(c);

    char *file = path2(dir, "file");
    write_bytes(file, "x", 1);
    expect_refused(file, "not a directory");
    char *under = path2(file, "sub");
    expect_refused(under, "cannot create");

    free(bad);
    free(file);
    free(under);
    rm_rf(dir);
}

TEST(dir_owned_by_other_user) {
    if (geteuid() != 0) {
        printf("  (skipped: chown to nobody needs root)\n");
        return;
    }
    char *dir = make_tmpdir();
    char *other = path2(dir, "other");
    mkdir(other, 0700);
    CHECK(chown(other, NOBODY, NOBODY) == 0);
    expect_refused(other, "owned by uid 65534");
    free(other);
    rm_rf(dir);
}

/* ---- corruption ---------------------------------------------------------------------- */

/* A bad file at key i's entry path must be a miss (counted corrupt) and be
 * removed; a put then rewrites a good entry. */
static void expect_bad_entry(const char *dir, int i, bool rewrite) {
    rt_kcache_stats_t s;
    CHECK_EQ_INT(fresh_get(dir, i, &s), 0);
    CHECK_EQ_INT(s.misses, 1);
    CHECK_EQ_INT(s.corrupt, 1);
    rt_kcache_key_t k = key_of(i);
    char *f = entry_file(dir, &k);
    CHECK(!exists(f));
    if (rewrite) {
        rt_kcache *c = rt_kcache_open(dir, NULL);
        put_key(c, i);
        rt_kcache_close(c);
        CHECK_EQ_INT(fresh_get(dir, i, &s), 1);
        CHECK_EQ_INT(s.hits_disk, 1);
    }
    free(f);
}

static void put_fresh(const char *dir, int i) {
    rt_kcache *c = rt_kcache_open(dir, NULL);
    put_key(c, i);
    rt_kcache_close(c);
}

TEST(truncation_at_every_offset) {
    char *dir = make_tmpdir();
    const int key = 61; /* a payload of 1 + 61*7919 % 3000 = 60 bytes: a 104-byte entry */
    put_fresh(dir, key);
    rt_kcache_key_t k = key_of(key);
    char *f = entry_file(dir, &k);
    size_t size;
    unsigned char *good = read_all(f, &size);
    CHECK(size > 44);
    int fails = test_failed_;
    for (size_t cut = 0; cut < size && test_failed_ == fails; cut++) {
        write_bytes(f, good, cut);
        expect_bad_entry(dir, key, true); /* recompiled and rewritten each time */
        if (test_failed_ != fails) fprintf(stderr, "  truncated at %zu of %zu\n", cut, size);
    }
    /* Longer than it says is as bad as shorter. */
    unsigned char *longer = malloc(size + 1);
    memcpy(longer, good, size);
    longer[size] = 0;
    write_bytes(f, longer, size + 1);
    expect_bad_entry(dir, key, true);
    free(longer);
    CHECK_EQ_INT(count_files(dir, TEMPS), 0);
    free(good);
    free(f);
    rm_rf(dir);
}

TEST(bit_flips_everywhere) {
    char *dir = make_tmpdir();
    const int key = 11;
    put_fresh(dir, key);
    rt_kcache_key_t k = key_of(key);
    char *f = entry_file(dir, &k);
    size_t size;
    unsigned char *good = read_all(f, &size);
    int fails = test_failed_;
    /* Every bit of the 44-byte header, and every bit of the payload too. */
    for (size_t i = 0; i < size && test_failed_ == fails; i++) {
        for (int bit = 0; bit < 8 && test_failed_ == fails; bit++) {
            good[i] ^= (unsigned char)(1u << bit);
            write_bytes(f, good, size);
            good[i] ^= (unsigned char)(1u << bit);
            expect_bad_entry(dir, key, false);
            if (test_failed_ != fails) fprintf(stderr, "  flipped bit %d of byte %zu\n", bit, i);
        }
    }
    write_bytes(f, good, size); /* the original is still good */
    CHECK_EQ_INT(fresh_get(dir, key, NULL), 1);
    free(good);
    free(f);
    rm_rf(dir);
}

TEST(wrong_version_key_and_foreign_files) {
    char *dir = make_tmpdir();
    put_fresh(dir, 1);
    rt_kcache_key_t k1 = key_of(1), k2 = key_of(2);
    char *f1 = entry_file(dir, &k1), *f2 = entry_file(dir, &k2);
    size_t size;
    unsigned char *good = read_all(f1, &size);

    /* A future (or past) format version with an otherwise valid entry. */
    unsigned char *v = malloc(size);
    memcpy(v, good, size);
    v[8] = RT_KCACHE_FORMAT_VERSION + 1;
    write_bytes(f1, v, size);
    expect_bad_entry(dir, 1, true);
    free(v);

    /* Key 1's valid entry placed at key 2's path (a foreign key). */
    char *sub2 = strdup(f2);
    *strrchr(sub2, '/') = '\0';
    mkdir(sub2, 0700);
    write_bytes(f2, good, size);
    expect_bad_entry(dir, 2, true);

    /* Foreign contents: empty, text, a header of another program. */
    write_bytes(f2, "", 0);
    expect_bad_entry(dir, 2, false);
    const char *text = "this is not a kernel\n";
    write_bytes(f2, text, strlen(text));
    expect_bad_entry(dir, 2, false);
    unsigned char junk[300];
    for (int i = 0; i < 300; i++) junk[i] = (unsigned char)(i * 37);
    write_bytes(f2, junk, sizeof junk);
    expect_bad_entry(dir, 2, false);

    /* A symlink to a valid entry is refused (and the link removed). */
    char *elsewhere = path2(dir, "elsewhere.bin");
    write_bytes(elsewhere, good, size);
    unlink(f1);
    CHECK(symlink(elsewhere, f1) == 0);
    expect_bad_entry(dir, 1, true);
    CHECK(exists(elsewhere));

    /* A FIFO must not hang us; a directory is no entry either. */
    unlink(f2);
    CHECK(mkfifo(f2, 0600) == 0);
    expect_bad_entry(dir, 2, true);
    unlink(f2);
    CHECK(mkdir(f2, 0700) == 0);
    rt_kcache_stats_t s;
    CHECK_EQ_INT(fresh_get(dir, 2, &s), 0);
    CHECK_EQ_INT(s.corrupt, 1);
    rmdir(f2);

    /* The <hh> directory replaced by a file: a plain miss, and puts fail softly. */
    rt_kcache_key_t k3 = key_of(3);
    char *f3 = entry_file(dir, &k3);
    *strrchr(f3, '/') = '\0';
    rm_rf(strdup(f3));
    write_bytes(f3, "x", 1);
    CHECK_EQ_INT(fresh_get(dir, 3, &s), 0);
    CHECK_EQ_INT(s.corrupt, 0);
    rt_kcache *c = rt_kcache_open(dir, NULL);
    put_key(c, 3);
    rt_kcache_stats(c, &s);
    CHECK_EQ_INT(s.write_failures, 1);
    CHECK(rt_kcache_warning(c) && strstr(rt_kcache_warning(c), "Not a directory"));
    rt_kcache_close(c);
    unlink(f3);
    free(f3);

    free(elsewhere);
    free(sub2);
    free(good);
    free(f1);
    free(f2);
    rm_rf(dir);
}

/* An entry we may not read.  Root reads anything, so as root the check runs
 * in a child that has become nobody. */
static void unreadable_body(void *arg) {
    (void)arg;
    char *dir = make_tmpdir();
    put_fresh(dir, 5);
    rt_kcache_key_t k = key_of(5);
    char *f = entry_file(dir, &k);
    CHECK(chmod(f, 0) == 0);
    expect_bad_entry(dir, 5, true);
    free(f);
    rm_rf(dir);
}

static void drop_to_nobody(void) {
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0) {
        perror("dropping privileges");
        _exit(SKIP_STATUS);
    }
}

static void unreadable_as_nobody(void *arg) {
    drop_to_nobody();
    unreadable_body(arg);
}

TEST(unreadable_entry) {
    if (geteuid() == 0) expect_child(run_child(unreadable_as_nobody, NULL), "cannot become nobody");
    else unreadable_body(NULL);
}

/* ---- write failures --------------------------------------------------------------------- */

TEST(injected_write_failure) {
    char *dir = make_tmpdir();
    setenv("FUSEC_KCACHE_FAIL_WRITE", "1", 1);
    rt_kcache *c = rt_kcache_open(dir, NULL);
    unsetenv("FUSEC_KCACHE_FAIL_WRITE");
    CHECK(rt_kcache_disk_enabled(c));
    put_key(c, 1);
    put_key(c, 2);
    rt_kcache_stats_t s;
    rt_kcache_stats(c, &s);
    CHECK_EQ_INT(s.writes, 0);
    CHECK_EQ_INT(s.write_failures, 2);
    const char *w = rt_kcache_warning(c);
    CHECK(w && strstr(w, "No space left on device"));
    CHECK(w && strchr(w, '\n') == w + strlen(w) - 1); /* warned once */
    /* The kernels still come from memory... */
    void *p;
    size_t n;
    rt_kcache_key_t k1 = key_of(1);
    CHECK(rt_kcache_get(c, &k1, &p, &n) && payload_is(1, p, n));
    free(p);
    rt_kcache_close(c);
    /* ...and nothing at all was left on disk. */
    CHECK_EQ_INT(count_files(dir, TEMPS), 0);
    CHECK_EQ_INT(count_files(dir, ".bin"), 0);
    CHECK_EQ_INT(fresh_get(dir, 1, &s), 0);
    CHECK_EQ_INT(s.corrupt, 0);
    /* FUSEC_KCACHE_FAIL_WRITE=0 means off. */
    setenv("FUSEC_KCACHE_FAIL_WRITE", "0", 1);
    put_fresh(dir, 1);
    unsetenv("FUSEC_KCACHE_FAIL_WRITE");
    CHECK_EQ_INT(fresh_get(dir, 1, NULL), 1);
    rm_rf(dir);
}

/* A real short write: RLIMIT_FSIZE makes write() fail with EFBIG past the
 * limit (SIGXFSZ ignored), no root needed. */
static void fsize_body(void *arg) {
    const char *dir = arg;
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl;
    getrlimit(RLIMIT_FSIZE, &rl);
    rl.rlim_cur = 2000;
    if (setrlimit(RLIMIT_FSIZE, &rl) != 0) _exit(SKIP_STATUS);
    rt_kcache *c = rt_kcache_open(dir, NULL);
    put_key(c, 0); /* 1 byte: fits */
    put_key(c, 4); /* 60000+ bytes: does not */
    rt_kcache_stats_t s;
    rt_kcache_stats(c, &s);
    CHECK_EQ_INT(s.writes, 1);
    CHECK_EQ_INT(s.write_failures, 1);
    CHECK(rt_kcache_warning(c) && strstr(rt_kcache_warning(c), "File too large"));
    rt_kcache_close(c);
}

TEST(file_size_limit_write_failure) {
    char *dir = make_tmpdir();
    expect_child(run_child(fsize_body, dir), "setrlimit(RLIMIT_FSIZE) refused");
    CHECK_EQ_INT(count_files(dir, TEMPS), 0);
    CHECK_EQ_INT(count_files(dir, ".bin"), 1);
    CHECK_EQ_INT(fresh_get(dir, 0, NULL), 1);
    rt_kcache_stats_t s;
    CHECK_EQ_INT(fresh_get(dir, 4, &s), 0);
    CHECK_EQ_INT(s.corrupt, 0);
    rm_rf(dir);
}

/* A real full disk: a 64 KiB tmpfs in a private mount namespace (a user
 * namespace too when not root), so nothing outlives the child. */
static bool write_proc(const char *path, const char *text) {
    int fd = open(path, O_WRONLY);
    if (fd < 0) return false;
    bool ok = write(fd, text, strlen(text)) == (ssize_t)strlen(text);
    close(fd);
    return ok;
}

static void tmpfs_body(void *arg) {
    const char *mnt = arg;
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (uid != 0 || unshare(CLONE_NEWNS) != 0) {
        char map[64];
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) _exit(SKIP_STATUS);
        snprintf(map, sizeof map, "0 %ld 1", (long)uid);
        if (!write_proc("/proc/self/uid_map", map)) _exit(SKIP_STATUS);
        write_proc("/proc/self/setgroups", "deny");
        snprintf(map, sizeof map, "0 %ld 1", (long)gid);
        if (!write_proc("/proc/self/gid_map", map)) _exit(SKIP_STATUS);
    }
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0 ||
        mount("tmpfs", mnt, "tmpfs", 0, "size=64k,mode=0700") != 0)
        _exit(SKIP_STATUS);

    char *dir = path2(mnt, "cache");
    rt_kcache *c = rt_kcache_open(dir, NULL);
    CHECK(rt_kcache_disk_enabled(c));
    const int nkeys = 16;
    for (int i = 0; i < nkeys; i++) put_key(c, i);          /* mostly small: these fit */
    for (int i = 0; i < nkeys; i++) put_key(c, 54 + 5 * i); /* ~60 KB each: these do not */
    rt_kcache_stats_t s;
    rt_kcache_stats(c, &s);
    CHECK(s.writes >= 1);
    CHECK(s.write_failures >= 1);
    CHECK_EQ_INT(s.writes + s.write_failures, 2 * nkeys);
    CHECK(rt_kcache_warning(c) && strstr(rt_kcache_warning(c), "No space left on device"));
    /* Everything is still served from memory. */
    for (int i = 0; i < nkeys; i++) {
        void *p;
        size_t n;
        rt_kcache_key_t k = key_of(i);
        CHECK(rt_kcache_get(c, &k, &p, &n) && payload_is(i, p, n));
        free(p);
    }
    rt_kcache_close(c);
    /* On disk: no temp file, and each entry either whole or absent. */
    CHECK_EQ_INT(count_files(dir, TEMPS), 0);
    int hits = 0;
    for (int j = 0; j < 2 * nkeys; j++) {
        int i = j < nkeys ? 54 + 5 * j : j - nkeys;
        rt_kcache_stats_t fs;
        int r = fresh_get(dir, i, &fs);
        CHECK(r >= 0);
        CHECK_EQ_INT(fs.corrupt, 0);
        hits += r == 1;
    }
    CHECK_EQ_INT(hits, s.writes);
    printf("  (64 KiB tmpfs: %d of %d entries written, %d writes failed)\n", (int)s.writes,
           2 * nkeys, (int)s.write_failures);
    free(dir);
    umount(mnt);
}

TEST(tmpfs_disk_full) {
    char *dir = make_tmpdir();
    expect_child(run_child(tmpfs_body, dir), "no permission to mount a tmpfs");
    rm_rf(dir);
}

/* ---- concurrency -------------------------------------------------------------------------- */

typedef struct {
    const char *dir;
    int id, ops, keys;
} proc_arg;

/* Each process mixes gets and puts of hot keys (shared by all) and its own
 * keys, reopening its cache often so that most gets go to the disk. */
static void proc_body(void *arg) {
    proc_arg *a = arg;
    unsigned seed = 12345u + (unsigned)a->id * 7u;
    rt_kcache *c = rt_kcache_open(a->dir, NULL);
    int wrong = 0;
    for (int op = 0; op < a->ops; op++) {
        if (rand_r(&seed) % 4 == 0) {
            rt_kcache_close(c);
            c = rt_kcache_open(a->dir, NULL);
        }
        int i = rand_r(&seed) % 2 ? rand_r(&seed) % 4 : rand_r(&seed) % a->keys;
        rt_kcache_key_t k = key_of(i);
        void *p;
        size_t n;
        if (rt_kcache_get(c, &k, &p, &n)) {
            if (!payload_is(i, p, n)) wrong++;
            free(p);
        } else {
            put_key(c, i);
        }
    }
    rt_kcache_stats_t s;
    rt_kcache_stats(c, &s);
    CHECK_EQ_INT(s.write_failures, 0);
    rt_kcache_close(c);
    CHECK_EQ_INT(wrong, 0);
}

TEST(many_processes) {
    char *dir = make_tmpdir();
    int nproc = env_int("FUSEC_KCACHE_STRESS_PROCS", 8);
    int ops = env_int("FUSEC_KCACHE_STRESS_OPS", 200);
    int keys = env_int("FUSEC_KCACHE_STRESS_KEYS", 24);
    if (nproc > 256) nproc = 256;
    pid_t pids[256];
    proc_arg args[256];
    fflush(stdout);
    fflush(stderr);
    for (int p = 0; p < nproc; p++) {
        args[p] = (proc_arg){dir, p, ops, keys};
        pids[p] = fork();
        if (pids[p] == 0) {
            test_failed_ = 0;
            proc_body(&args[p]);
            _exit(test_failed_ ? 1 : 0);
        }
        CHECK(pids[p] > 0);
    }
    for (int p = 0; p < nproc; p++) {
        int status = -1;
        if (pids[p] > 0) waitpid(pids[p], &status, 0);
        CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    CHECK_EQ_INT(count_files(dir, TEMPS), 0);
    uint64_t entries, bytes;
    CHECK(rt_kcache_disk_usage(dir, &entries, &bytes));
    int present = 0;
    for (int i = 0; i < keys; i++) {
        rt_kcache_stats_t s;
        int r = fresh_get(dir, i, &s);
        CHECK(r >= 0);
        CHECK_EQ_INT(s.corrupt, 0);
        present += r == 1;
    }
    CHECK_EQ_INT(entries, present);
    CHECK(present >= 4); /* the hot keys at least */
    rm_rf(dir);
}

typedef struct {
    rt_kcache *c;
    int id;
    int wrong;
} thread_arg;

static void *thread_body(void *arg) {
    thread_arg *a = arg;
    unsigned seed = 777u + (unsigned)a->id;
    for (int op = 0; op < 300; op++) {
        int i = rand_r(&seed) % 32;
        rt_kcache_key_t k = key_of(i);
        void *p;
        size_t n;
        if (rt_kcache_get(a->c, &k, &p, &n)) {
            if (!payload_is(i, p, n)) a->wrong++;
            free(p);
        } else {
            put_key(a->c, i);
        }
    }
    return NULL;
}

TEST(threads_share_one_cache) {
    char *dir = make_tmpdir();
    rt_kcache *c = rt_kcache_open(dir, NULL);
    pthread_t t[4];
    thread_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i] = (thread_arg){c, i, 0};
        CHECK(pthread_create(&t[i], NULL, thread_body, &a[i]) == 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(a[i].wrong, 0);
    }
    rt_kcache_stats_t s;
    rt_kcache_stats(c, &s);
    CHECK_EQ_INT(s.hits_mem + s.hits_disk + s.misses, 4 * 300);
    CHECK_EQ_INT(s.corrupt, 0);
    CHECK_EQ_INT(s.write_failures, 0);
    CHECK(s.writes >= 32 && s.writes == s.misses);
    rt_kcache_close(c);
    for (int i = 0; i < 32; i++) CHECK_EQ_INT(fresh_get(dir, i, NULL), 1);
    rm_rf(dir);
}

/* Writers killed with SIGKILL at random moments may leave temp files, never
 * a partial entry. */
static void writer_forever(void *arg) {
    const char *dir = arg;
    rt_kcache *c = rt_kcache_open(dir, NULL);
    for (unsigned i = (unsigned)getpid();; i++) put_key(c, (int)(i % 10) * 5 + 4); /* large */
}

TEST(killed_writers) {
    char *dir = make_tmpdir();
    struct timespec ts = {0, 0};
    int rounds = env_int("FUSEC_KCACHE_STRESS_KILL_ROUNDS", 4);
    for (int round = 0; round < rounds; round++) {
        pid_t pids[3];
        fflush(stdout);
        fflush(stderr);
        for (int p = 0; p < 3; p++) {
            pids[p] = fork();
            if (pids[p] == 0) writer_forever(dir);
        }
        ts.tv_nsec = (long)(5 + 13 * (round % 5)) * 1000000L;
        nanosleep(&ts, NULL);
        for (int p = 0; p < 3; p++) {
            if (pids[p] > 0) kill(pids[p], SIGKILL);
        }
        for (int p = 0; p < 3; p++) {
            int status;
            if (pids[p] > 0) waitpid(pids[p], &status, 0);
        }
    }
    for (int j = 0; j < 10; j++) {
        rt_kcache_stats_t s;
        CHECK(fresh_get(dir, j * 5 + 4, &s) >= 0);
        CHECK_EQ_INT(s.corrupt, 0);
    }
    /* clear sweeps whatever the killed writers left. */
    uint64_t removed;
    CHECK(rt_kcache_clear(dir, &removed));
    CHECK_EQ_INT(count_files(dir, ""), 0);
    rm_rf(dir);
}

/* ---- stats and clear for the CLI ----------------------------------------------------------- */

TEST(usage_and_clear_touch_only_ours) {
    char *dir = make_tmpdir();
    rt_kcache *c = rt_kcache_open(dir, NULL);
    uint64_t want_bytes = 0;
    for (int i = 0; i < 5; i++) {
        put_key(c, i);
        size_t n;
        free(payload_of(i, &n));
        want_bytes += 44 + n;
    }
    rt_kcache_close(c);

    /* Ours: a temp file left behind by a killed writer. */
    rt_kcache_key_t k0 = key_of(0);
    char hex[33], rel[128];
    rt_kcache_key_hex(&k0, hex);
    snprintf(rel, sizeof rel, "%.2s/.%s.bin.a1B2c3", hex, hex);
    char *tmp = path2(dir, rel);
    write_bytes(tmp, "partial", 7);

    /* Not ours: other names, other folders, and a symlinked folder. */
    char *other = make_tmpdir();
    const char *foreign[] = {"README", "zz/0123456789abcdef0123456789abcdef.bin", "AB/x.bin",
                             "ab/notes.txt", "ab/0123.bin", "cd/ef23456789abcdef0123456789abcdef.bin",
                             "ab/.ab23456789abcdef0123456789abcdef.txt.XXXXXX"};
    enum { NFOREIGN = sizeof foreign / sizeof foreign[0] };
    char *fpaths[NFOREIGN];
    for (int i = 0; i < NFOREIGN; i++) {
        fpaths[i] = path2(dir, foreign[i]);
        char *slash = strrchr(fpaths[i], '/');
        *slash = '\0';
        mkdir(fpaths[i], 0700);
        *slash = '/';
        write_bytes(fpaths[i], "keep", 4);
    }
    char *target = path2(other, "ee0123456789abcdef0123456789abcd.bin");
    write_bytes(target, "keep", 4);
    char *link = path2(dir, "ee");
    CHECK(symlink(other, link) == 0);

    uint64_t entries = 0, bytes = 0, removed = 0;
    CHECK(rt_kcache_disk_usage(dir, &entries, &bytes));
    CHECK_EQ_INT(entries, 5);
    CHECK_EQ_INT(bytes, want_bytes);
    CHECK(rt_kcache_clear(dir, &removed));
    CHECK_EQ_INT(removed, 6);
    CHECK(!exists(tmp));
    for (int i = 0; i < NFOREIGN; i++) {
        CHECK(exists(fpaths[i]));
        free(fpaths[i]);
    }
    CHECK(exists(target));
    CHECK(exists(link));
    CHECK(rt_kcache_disk_usage(dir, &entries, &bytes));
    CHECK_EQ_INT(entries, 0);
    CHECK_EQ_INT(bytes, 0);
    CHECK_EQ_INT(count_files(dir, ".bin"), 4); /* the foreign ones */
    /* Emptied subdirectories are gone too. */
    char sub[3] = {hex[0], hex[1], 0};
    char *subp = path2(dir, sub);
    CHECK(!exists(subp) || strcmp(sub, "ab") == 0 || strcmp(sub, "cd") == 0);

    /* A missing directory is empty and already clear. */
    char *missing = path2(dir, "missing");
    CHECK(rt_kcache_disk_usage(missing, &entries, &bytes) && entries == 0 && bytes == 0);
    CHECK(rt_kcache_clear(missing, &removed) && removed == 0);

    free(missing);
    free(subp);
    free(tmp);
    free(target);
    free(link);
    rm_rf(other);
    rm_rf(dir);
}

/* Like TEST_MAIN, but with test names as arguments only those run
 * (tests/kcache/run.sh runs the concurrency tests alone, scaled up). */
static const test_case_ all_tests[] = {TEST_LIST_(
    key_parts, roundtrip_memory_and_disk, null_cache, dir_resolution, dir_refused,
    dir_owned_by_other_user, truncation_at_every_offset, bit_flips_everywhere,
    wrong_version_key_and_foreign_files, unreadable_entry, injected_write_failure,
    file_size_limit_write_failure, tmpfs_disk_full, many_processes, threads_share_one_cache,
    killed_writers, usage_and_clear_touch_only_ours)};

int main(int argc, char **argv) {
    int n = (int)(sizeof all_tests / sizeof all_tests[0]);
    if (argc < 2) return test_run_(all_tests, n);
    test_case_ chosen[sizeof all_tests / sizeof all_tests[0]];
    int m = 0;
    for (int a = 1; a < argc && m < n; a++) {
        int i = 0;
        while (i < n && strcmp(all_tests[i].name, argv[a]) != 0) i++;
        if (i == n) {
            fprintf(stderr, "test_kcache: no test named '%s'\n", argv[a]);
            return 2;
        }
        chosen[m++] = all_tests[i];
    }
    return test_run_(chosen, m);
}
