/*
 * fusec.c - the command-line tool: a thin user of include/fusec.h (parse,
 * print, compile, run) plus runtime/npy.h (the .npy files of spec section 7).
 *
 *   fusec check FILE                        parse and verify; silent on success
 *   fusec print FILE [-o OUT]               canonical text
 *   fusec run FILE (--inputs DIR | --random-inputs SEED) [--outputs DIR]
 *                  [--backend interp|plan|cpu|cuda] [--func NAME] [-v]
 *   fusec opt FILE [--passes=A,B] [--print-after=NAME|all] [--time-passes] [--stats]
 *   fusec plan FILE [-o OUT]                the fused, memory-planned plan
 *   fusec bench FILE [--backend cuda|cpu|plan|interp] [--iters N] [--warmup N]
 *                    [--inputs DIR | --random-inputs SEED] [--json]
 *                                           compile once, time the runs
 *   fusec passes                            the passes and the default pipeline
 *   fusec cache stats|clear                 the kernel cache
 *
 * Exit status: 0 success; 1 a user error (bad IR, a missing or malformed
 * input file, a run-time error); 2 a usage error (unknown command or option,
 * missing argument), which prints "fusec: error: ..." and a pointer to
 * --help.  Diagnostics go to stderr, results to stdout.
 *
 * Options are read with getopt_long (GNU permutation, so they may come before
 * or after FILE); an option that does not belong to the command is a usage
 * error rather than silently ignored.
 *
 * Inputs.  Parameter %NAME is read from DIR/NAME.npy, or DIR/NAME.bf16.npy
 * for a bf16 parameter (bf16 travels as '<u2' bit patterns, spec section 7).
 * If only the other spelling exists it is read anyway, so that a file of the
 * wrong dtype is reported as a type mismatch naming the parameter, the
 * expected type and the file's, rather than as a missing file.
 *
 * Random inputs come from splitmix64, seeded per parameter from the SEED and
 * the parameter's position, so one parameter's values do not depend on the
 * shapes of the others: floats are standard normal (Box-Muller), integers
 * uniform in [0, 4) (small and non-negative, so that index operands are
 * likely in range), bools 50/50.  The same SEED gives the same inputs on
 * every machine: the generator is integer arithmetic and the dtype rounding
 * is fusec's own.
 *
 * Benchmarks.  `bench` hands the graph and its inputs (random, seed 0,
 * unless --inputs or --random-inputs say otherwise) to rt_bench
 * (runtime/bench.h, which says what is measured and how) and prints what
 * comes back: a table, or with --json one JSON object, written here by hand
 * (a dozen fields do not need a library).  The default backend is cuda:
 * timing the GPU is what the command is for.
 *
 * Every file the tool writes (result .npy files, print -o) is written to a
 * temporary file in the same folder and renamed into place, so an error never
 * leaves a half-written output.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fusec.h"
#include "runtime/bench.h"
#include "runtime/fileio.h"
#include "runtime/kcache.h"
#include "runtime/npy.h"

enum { EXIT_OK = 0, EXIT_USER = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: fusec COMMAND [OPTIONS] FILE\n"
    "\n"
    "Commands:\n"
    "  check FILE    parse and verify FILE (silent on success)\n"
    "  print FILE    print the graph in canonical text\n"
    "  run FILE      run the graph and summarize each output\n"
    "  opt FILE      run passes over the graph and print the result\n"
    "  plan FILE     optimize, fuse and plan memory; print the plan\n"
    "  bench FILE    compile once, then time the graph and each kernel\n"
    "  passes        list the passes and the default pipeline\n"
    "  cache stats   the kernel cache: folder, entries, bytes\n"
    "  cache clear   remove every entry of the kernel cache\n"
    "FILE is a text IR file (docs/ir.md), or - for standard input.\n"
    "The kernel cache is $FUSEC_CACHE_DIR, else $XDG_CACHE_HOME/fusec, else ~/.cache/fusec.\n"
    "\n"
    "Options:\n"
    "  --func NAME           use function @NAME (default: @main, else the first)\n"
    "  -o, --output PATH     print: write the text to PATH instead of stdout\n"
    "  --inputs DIR          run, bench: read parameter %NAME from DIR/NAME.npy\n"
    "                        (bf16 parameters from DIR/NAME.bf16.npy, as '<u2' bits)\n"
    "  --random-inputs SEED  run, bench: seeded random inputs instead: floats\n"
    "                        ~ N(0, 1), integers in [0, 4), bools 50/50 (bench:\n"
    "                        seed 0 unless --inputs or --random-inputs is given)\n"
    "  --outputs DIR         run: also write output i to DIR/result<i>.npy\n"
    "                        (result<i>.bf16.npy for bf16); DIR is created if needed\n"
    "  --backend NAME        run: interp (default), plan (the fused plan, executed\n"
    "                        on the CPU element by element), cpu or cuda;\n"
    "                        bench: the same, cuda by default\n"
    "  --iters N             bench: timed runs (default 100)\n"
    "  --warmup N            bench: untimed runs before them (default 10)\n"
    "  --json                bench: print one JSON object instead of a table\n"
    "  --passes=A,B,C        opt: the passes to run (default: the default pipeline)\n"
    "  --print-after=NAME    opt: print the IR after pass NAME (or 'all') to stderr\n"
    "  --time-passes         opt: print each pass's time to stderr\n"
    "  --stats               opt: print what each pass did to stderr\n"
    "  -v, --verbose         run: also summarize the inputs\n"
    "  -h, --help            show this help\n"
    "  --version             show the version\n"
    "\n"
    "Exit status: 0 success, 1 error in the input or while running,\n"
    "2 usage error (unknown command or option, missing argument).\n";

/* ---- messages ---------------------------------------------------------- */

static void vmsg(const char *fmt, va_list ap) {
    fputs("fusec: error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
}

/* A user error: print it and give the exit status for it. */
IR_PRINTF(1, 2) static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    return EXIT_USER;
}

/* A usage error: the same, plus where to look. */
IR_PRINTF(1, 2) static int usage_fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vmsg(fmt, ap);
    va_end(ap);
    fputs("Run 'fusec --help' for usage.\n", stderr);
    return EXIT_USAGE;
}

/* Print a message from the library (already "FILE:L:C: error: ..."). */
static void print_lib_msg(const char *m) {
    if (!m || !*m) return;
    fputs(m, stderr);
    if (m[strlen(m) - 1] != '\n') fputc('\n', stderr);
}

/* Print the diagnostics collected in d, then free it. */
static int diag_fail(ir_diag *d) {
    print_lib_msg(d->out.buf);
    ir_diag_free(d);
    return EXIT_USER;
}

/* "f32[2, 3]", as the IR writes types. */
static void type_str(char *buf, size_t cap, const fusec_tensor *t) {
    size_t k = (size_t)snprintf(buf, cap, "%s[", fusec_dtype_name(t->dtype));
    for (int i = 0; i < t->rank && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", t->shape[i]);
    if (k < cap) snprintf(buf + k, cap - k, "]");
}
#define TYPE_BUF (FUSEC_MAX_RANK * 24 + 16)

/* ---- options ------------------------------------------------------------- */

typedef struct options {
    const char *cmd, *file;
    const char *output, *func, *inputs, *outputs, *backend;
    const char *passes, *print_after;
    bool have_seed, verbose, time_passes, stats, json;
    uint64_t seed;
    int iters, warmup; /* bench */
} options;

enum {
    OPT_FUNC = 256,
    OPT_INPUTS,
    OPT_OUTPUTS,
    OPT_RANDOM,
    OPT_BACKEND,
    OPT_PASSES,
    OPT_PRINT_AFTER,
    OPT_TIME_PASSES,
    OPT_STATS,
    OPT_ITERS,
    OPT_WARMUP,
    OPT_JSON,
    OPT_VERSION
};

static const struct option long_opts[] = {
    {"help", no_argument, NULL, 'h'},
    {"version", no_argument, NULL, OPT_VERSION},
    {"output", required_argument, NULL, 'o'},
    {"verbose", no_argument, NULL, 'v'},
    {"func", required_argument, NULL, OPT_FUNC},
    {"inputs", required_argument, NULL, OPT_INPUTS},
    {"outputs", required_argument, NULL, OPT_OUTPUTS},
    {"random-inputs", required_argument, NULL, OPT_RANDOM},
    {"backend", required_argument, NULL, OPT_BACKEND},
    {"passes", required_argument, NULL, OPT_PASSES},
    {"print-after", required_argument, NULL, OPT_PRINT_AFTER},
    {"time-passes", no_argument, NULL, OPT_TIME_PASSES},
    {"stats", no_argument, NULL, OPT_STATS},
    {"iters", required_argument, NULL, OPT_ITERS},
    {"warmup", required_argument, NULL, OPT_WARMUP},
    {"json", no_argument, NULL, OPT_JSON},
    {NULL, 0, NULL, 0},
};

/* Which commands accept an option (the getopt value). */
static bool option_allowed(const char *cmd, int opt) {
    bool run = strcmp(cmd, "run") == 0, bench = strcmp(cmd, "bench") == 0;
    switch (opt) {
    case OPT_FUNC: return strcmp(cmd, "passes") != 0 && strcmp(cmd, "cache") != 0;
    case 'o': return strcmp(cmd, "print") == 0 || strcmp(cmd, "opt") == 0 || strcmp(cmd, "plan") == 0;
    case OPT_PASSES:
    case OPT_PRINT_AFTER:
    case OPT_TIME_PASSES:
    case OPT_STATS: return strcmp(cmd, "opt") == 0;
    case OPT_INPUTS:
    case OPT_RANDOM:
    case OPT_BACKEND: return run || bench;
    case OPT_ITERS:
    case OPT_WARMUP:
    case OPT_JSON: return bench;
    default: return run; /* --outputs, -v */
    }
}

static const char *option_name(int opt) {
    if (opt == 'o') return "-o/--output";
    if (opt == 'v') return "-v/--verbose";
    for (const struct option *o = long_opts; o->name; o++)
        if (o->val == opt) return o->name;
    return "?";
}

/* getopt_long refused `arg`: say why (glibc leaves that to us with
 * opterr = 0: an unknown option, an ambiguous abbreviation, or an argument
 * given to an option that takes none). */
static int bad_option(const char *arg) {
    if (strncmp(arg, "--", 2) != 0) {
        char c = optopt > 0 && optopt < 256 ? (char)optopt : arg[1];
        return usage_fail("unknown option '-%c'", c);
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    size_t n = eq ? (size_t)(eq - name) : strlen(name);
    char list[256] = "";
    int matches = 0;
    const struct option *match = NULL;
    for (const struct option *lo = long_opts; lo->name; lo++) {
        if (strncmp(lo->name, name, n) != 0) continue;
        if (strlen(lo->name) == n) { /* an exact match wins over abbreviations */
            match = lo;
            matches = 1;
            break;
        }
        size_t k = strlen(list);
        snprintf(list + k, sizeof list - k, "%s--%s", matches++ ? ", " : "", lo->name);
        match = lo;
    }
    if (matches > 1) return usage_fail("option '%.*s' is ambiguous (%s)", (int)n + 2, arg, list);
    if (matches == 1 && eq && match->has_arg == no_argument)
        return usage_fail("option '--%s' takes no argument", match->name);
    return usage_fail("unknown option '%s'", arg);
}

/* Run counts: a million runs is far more than any benchmark needs, and
 * keeps iters x kernels of timings in memory. */
#define COUNT_MAX 1000000

/* A decimal count in [lo, COUNT_MAX] into *out; false if arg is not one. */
static bool parse_count(const char *arg, int lo, int *out) {
    char *end;
    errno = 0;
    long v = strtol(arg, &end, 10);
    if (errno || end == arg || *end || v < lo || v > COUNT_MAX) return false;
    *out = (int)v;
    return true;
}

/* Parse argv into *o.  Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, options *o) {
    int seen[OPT_VERSION + 1] = {0};
    bool help = false, version = false;
    const char *seed_arg = NULL, *iters_arg = NULL, *warmup_arg = NULL;
    opterr = 0; /* our own messages */
    int c;
    while ((c = getopt_long(argc, argv, ":ho:v", long_opts, NULL)) != -1) {
        switch (c) {
        case 'h': help = true; continue;
        case OPT_VERSION: version = true; continue;
        case ':':
            return usage_fail("option '%s' needs an argument", argv[optind - 1]);
        case '?': return bad_option(argv[optind - 1]);
        default: break;
        }
        if (seen[c]++ && c != 'v')
            return usage_fail("option '%s%s' given twice", c < 256 ? "" : "--", option_name(c));
        switch (c) {
        case 'o': o->output = optarg; break;
        case 'v': o->verbose = true; break;
        case OPT_FUNC: o->func = optarg; break;
        case OPT_INPUTS: o->inputs = optarg; break;
        case OPT_OUTPUTS: o->outputs = optarg; break;
        case OPT_RANDOM: seed_arg = optarg; break;
        case OPT_BACKEND: o->backend = optarg; break;
        case OPT_PASSES: o->passes = optarg; break;
        case OPT_PRINT_AFTER: o->print_after = optarg; break;
        case OPT_TIME_PASSES: o->time_passes = true; break;
        case OPT_STATS: o->stats = true; break;
        case OPT_ITERS: iters_arg = optarg; break;
        case OPT_WARMUP: warmup_arg = optarg; break;
        case OPT_JSON: o->json = true; break;
        }
    }
    if (help) {
        fputs(usage_text, stdout);
        return EXIT_OK;
    }
    if (version) {
        printf("fusec %s\n", fusec_version());
        return EXIT_OK;
    }
    if (optind >= argc) return usage_fail("no command given (check, print, run, opt, plan, bench, passes or cache)");
    o->cmd = argv[optind++];
    if (strcmp(o->cmd, "check") && strcmp(o->cmd, "print") && strcmp(o->cmd, "run") &&
        strcmp(o->cmd, "opt") && strcmp(o->cmd, "plan") && strcmp(o->cmd, "bench") &&
        strcmp(o->cmd, "passes") && strcmp(o->cmd, "cache"))
        return usage_fail("unknown command '%s' (expected check, print, run, opt, plan, bench, passes or cache)",
                          o->cmd);
    if (strcmp(o->cmd, "cache") == 0) {
        if (optind >= argc || (strcmp(argv[optind], "stats") && strcmp(argv[optind], "clear")))
            return usage_fail("'cache' needs 'stats' or 'clear'");
        o->file = argv[optind++]; /* the subcommand */
    } else if (strcmp(o->cmd, "passes") != 0) {
        if (optind >= argc) return usage_fail("'%s' needs a FILE (or - for stdin)", o->cmd);
        o->file = argv[optind++];
    }
    if (optind < argc) return usage_fail("unexpected argument '%s'", argv[optind]);
    for (int opt = 0; opt <= OPT_VERSION; opt++) {
        if (!seen[opt] || option_allowed(o->cmd, opt)) continue;
        if (opt == 'o' && strcmp(o->cmd, "run") == 0)
            return usage_fail("option '-o/--output' is not valid with 'run' (did you mean "
                              "--outputs DIR?)");
        return usage_fail("option '%s%s' is not valid with '%s'", opt < 256 ? "" : "--",
                          option_name(opt), o->cmd);
    }
    if (seed_arg) {
        char *end;
        errno = 0;
        o->seed = strtoull(seed_arg, &end, 0);
        if (errno || end == seed_arg || *end || seed_arg[0] == '-')
            return usage_fail("--random-inputs needs a non-negative integer seed, not '%s'",
                              seed_arg);
        o->have_seed = true;
    }
    if (o->inputs && o->have_seed)
        return usage_fail("give either --inputs or --random-inputs, not both");
    o->iters = 100;
    o->warmup = 10;
    if (iters_arg && !parse_count(iters_arg, 1, &o->iters))
        return usage_fail("--iters needs a positive integer (at most %d), not '%s'", COUNT_MAX, iters_arg);
    if (warmup_arg && !parse_count(warmup_arg, 0, &o->warmup))
        return usage_fail("--warmup needs a non-negative integer (at most %d), not '%s'", COUNT_MAX, warmup_arg);
    if (o->backend && strcmp(o->backend, "interp") && strcmp(o->backend, "plan") &&
        strcmp(o->backend, "cpu") && strcmp(o->backend, "cuda"))
        return usage_fail("unknown backend '%s' (expected interp, plan, cpu or cuda)", o->backend);
    return -1;
}

/* ---- files ----------------------------------------------------------------- */

/* Read all of FILE (or stdin for "-") into a malloc'd buffer. */
static int read_source(const char *path, char **out, size_t *outlen) {
    bool is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f) return fail("cannot open '%s': %s", path, strerror(errno));
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap);
            if (!nb) {
                free(buf);
                if (!is_stdin) fclose(f);
                return fail("out of memory reading '%s'", path);
            }
            buf = nb;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    bool bad = ferror(f) != 0;
    int e = errno;
    if (!is_stdin) fclose(f);
    if (bad) {
        free(buf);
        return fail("cannot read '%s': %s", is_stdin ? "<stdin>" : path, strerror(e));
    }
    *out = buf;
    *outlen = len;
    return EXIT_OK;
}

static int load_graph(const options *o, fusec_graph **g) {
    char *src = NULL;
    size_t len = 0;
    int rc = read_source(o->file, &src, &len);
    if (rc) return rc;
    char *err = NULL;
    const char *name = strcmp(o->file, "-") == 0 ? "<stdin>" : o->file;
    fusec_status st = fusec_graph_parse(src, len, name, o->func, g, &err);
    free(src);
    if (st != FUSEC_OK) {
        if (err && *err) print_lib_msg(err);
        else fail("%s: %s", name, fusec_status_string(st));
        fusec_free(err);
        return EXIT_USER;
    }
    return EXIT_OK;
}

/* Write text to path through a temporary file and a rename (see the top). */
static int write_text_atomic(const char *path, const char *text) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    const void *parts[1] = {text};
    size_t lens[1] = {strlen(text)};
    if (rt_write_file_atomic(path, parts, lens, 1, 0644, &d) != FUSEC_OK) return diag_fail(&d);
    ir_diag_free(&d);
    return EXIT_OK;
}

/* mkdir -p */
static int make_dirs(const char *path) {
    char *p = strdup(path);
    if (!p) return fail("out of memory");
    size_t n = strlen(p);
    for (size_t i = 1; i <= n; i++) {
        if (p[i] != '/' && p[i] != 0) continue;
        char saved = p[i];
        p[i] = 0;
        struct stat sb;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            return fail("cannot create output folder '%s': %s", path, strerror(e));
        }
        if (saved == 0 && (stat(p, &sb) != 0 || !S_ISDIR(sb.st_mode))) {
            free(p);
            return fail("cannot create output folder '%s': it exists and is not a folder", path);
        }
        p[i] = saved;
    }
    free(p);
    return EXIT_OK;
}

static bool file_exists(const char *path) {
    struct stat sb;
    return stat(path, &sb) == 0;
}

/* "DIR/NAME<suffix>", malloc'd. */
static char *join(const char *dir, const char *name, const char *suffix) {
    size_t dl = strlen(dir), n = dl + strlen(name) + strlen(suffix) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s%s%s", dir, dl == 0 || dir[dl - 1] == '/' ? "" : "/", name, suffix);
    return p;
}

/* ---- inputs ---------------------------------------------------------------- */

/* Read parameter `name` of type *want from DIR into *t (see the top). */
static int read_input(const char *dir, const char *name, const fusec_tensor *want,
                      fusec_tensor *t) {
    bool want_bf16 = want->dtype == FUSEC_DTYPE_BF16;
    char *plain = join(dir, name, ".npy"), *bf = join(dir, name, ".bf16.npy");
    if (!plain || !bf) {
        free(plain);
        free(bf);
        return fail("out of memory");
    }
    char wt[TYPE_BUF];
    type_str(wt, sizeof wt, want);
    const char *path = want_bf16 ? bf : plain, *other = want_bf16 ? plain : bf;
    if (!file_exists(path) && file_exists(other)) path = other;
    int rc = EXIT_OK;
    if (!file_exists(path)) {
        rc = fail("input '%s': missing file %s (expected %s)", name, want_bf16 ? bf : plain, wt);
    } else {
        ir_diag d;
        ir_diag_init(&d, NULL, NULL, 0);
        if (rt_npy_read(path, path == bf, t, &d) != FUSEC_OK) {
            rc = diag_fail(&d);
        } else {
            ir_diag_free(&d);
            bool same = t->dtype == want->dtype && t->rank == want->rank;
            for (int i = 0; same && i < t->rank; i++) same = t->shape[i] == want->shape[i];
            if (!same) {
                char ft[TYPE_BUF];
                type_str(ft, sizeof ft, t);
                rc = fail("input '%s': expected %s, file %s has %s%s", name, wt, path, ft,
                          want_bf16 && path == plain
                              ? " (bf16 inputs are read as '<u2' bit patterns from NAME.bf16.npy)"
                              : "");
                free(t->data);
                t->data = NULL;
            }
        }
    }
    free(plain);
    free(bf);
    return rc;
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    return z ^ (z >> 31);
}

/* Fill t (allocated here) with pseudo-random values for parameter `index`. */
static int random_input(uint64_t seed, int index, fusec_tensor *t) {
    int64_t n = fusec_tensor_numel(t);
    size_t esize = fusec_dtype_size(t->dtype);
    if (n < 0 || (uint64_t)n > SIZE_MAX / esize) return fail("input %d is too large", index);
    t->data = malloc(n ? (size_t)n * esize : 1);
    if (!t->data) return fail("out of memory making random inputs");
    uint64_t st = seed ^ (0xD1B54A32D192ED03u * (uint64_t)(index + 1));
    splitmix64(&st);
    bool is_float = t->dtype == FUSEC_DTYPE_F64 || t->dtype == FUSEC_DTYPE_F32 ||
                    t->dtype == FUSEC_DTYPE_F16 || t->dtype == FUSEC_DTYPE_BF16;
    for (int64_t i = 0; i < n; i++) {
        if (is_float) {
            /* Box-Muller: two uniforms give two independent normals. */
            double u1 = (double)((splitmix64(&st) >> 11) + 1) * 0x1p-53; /* (0, 1] */
            double u2 = (double)(splitmix64(&st) >> 11) * 0x1p-53;       /* [0, 1) */
            double r = sqrt(-2.0 * log(u1));
            ir_store_f(t->dtype, t->data, i, r * cos(2 * M_PI * u2));
            if (++i < n) ir_store_f(t->dtype, t->data, i, r * sin(2 * M_PI * u2));
        } else if (t->dtype == FUSEC_DTYPE_BOOL) {
            ir_store_i(t->dtype, t->data, i, (int64_t)(splitmix64(&st) >> 63));
        } else {
            ir_store_i(t->dtype, t->data, i, (int64_t)(splitmix64(&st) >> 62));
        }
    }
    return EXIT_OK;
}

/* ---- summaries --------------------------------------------------------------- */

#define SHOW_VALUES 8

/* %.6g, but every NaN prints as "nan" whatever its sign bit. */
static void print_f(double v) {
    if (isnan(v)) printf("nan");
    else printf("%.6g", v);
}

/* One line per tensor: type, statistics (as NumPy's nanmin/nanmax/nanmean
 * for floats, with NaN and inf counted), and the first values. */
static void summarize(const char *label, const char *path, const fusec_tensor *t) {
    char ts[TYPE_BUF];
    type_str(ts, sizeof ts, t);
    int64_t n = fusec_tensor_numel(t);
    printf("%s", label);
    if (path) printf(" (%s)", path);
    printf(": %s", ts);
    fusec_dtype dt = t->dtype;
    bool is_float = dt == FUSEC_DTYPE_F64 || dt == FUSEC_DTYPE_F32 || dt == FUSEC_DTYPE_F16 ||
                    dt == FUSEC_DTYPE_BF16;
    if (dt == FUSEC_DTYPE_BOOL) {
        int64_t ntrue = 0;
        for (int64_t i = 0; i < n; i++) ntrue += ir_load_i(dt, t->data, i) != 0;
        printf(" true=%" PRId64 " false=%" PRId64, ntrue, n - ntrue);
    } else if (is_float) {
        int64_t nnan = 0, ninf = 0, cnt = 0;
        double mn = INFINITY, mx = -INFINITY, sum = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = ir_load_f(dt, t->data, i);
            if (isnan(v)) {
                nnan++;
                continue;
            }
            if (isinf(v)) ninf++;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            sum += v;
            cnt++;
        }
        if (cnt) {
            printf(" min=");
            print_f(mn);
            printf(" max=");
            print_f(mx);
            printf(" mean=");
            print_f(sum / (double)cnt);
        }
        printf(" nan=%" PRId64 " inf=%" PRId64, nnan, ninf);
    } else if (n > 0) {
        int64_t mn = INT64_MAX, mx = INT64_MIN;
        double sum = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t v = ir_load_i(dt, t->data, i);
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
            sum += (double)v;
        }
        printf(" min=%" PRId64 " max=%" PRId64 " mean=%.6g", mn, mx, sum / (double)n);
    }
    printf(" [");
    for (int64_t i = 0; i < n && i < SHOW_VALUES; i++) {
        if (i) printf(", ");
        if (dt == FUSEC_DTYPE_BOOL) printf("%s", ir_load_i(dt, t->data, i) ? "true" : "false");
        else if (is_float) print_f(ir_load_f(dt, t->data, i));
        else printf("%" PRId64, ir_load_i(dt, t->data, i));
    }
    printf("%s]\n", n > SHOW_VALUES ? ", ..." : "");
}

/* ---- commands -------------------------------------------------------------- */

static int cmd_check(const options *o) {
    fusec_graph *g;
    int rc = load_graph(o, &g);
    if (rc) return rc;
    fusec_graph_destroy(g);
    return EXIT_OK;
}

static int cmd_print(const options *o) {
    fusec_graph *g;
    int rc = load_graph(o, &g);
    if (rc) return rc;
    char *text = fusec_graph_print(g);
    fusec_graph_destroy(g);
    if (!text) return fail("cannot print the graph (out of memory)");
    if (o->output && strcmp(o->output, "-") != 0) {
        rc = write_text_atomic(o->output, text);
    } else {
        fputs(text, stdout);
        if (fflush(stdout) != 0) rc = fail("cannot write to stdout: %s", strerror(errno));
    }
    fusec_free(text);
    return rc;
}

/* Write text to -o PATH (atomically) or stdout. */
static int emit_text(const options *o, const char *text) {
    if (o->output && strcmp(o->output, "-") != 0) return write_text_atomic(o->output, text);
    fputs(text, stdout);
    if (fflush(stdout) != 0) return fail("cannot write to stdout: %s", strerror(errno));
    return EXIT_OK;
}

static int cmd_opt(const options *o) {
    fusec_graph *g;
    int rc = load_graph(o, &g);
    if (rc) return rc;
    fusec_opt_options oo = {.passes = o->passes, .print_after = o->print_after,
                            .time_passes = o->time_passes, .stats = o->stats};
    char *report = NULL, *err = NULL;
    fusec_status st = fusec_graph_optimize(g, &oo, &report, &err);
    if (report) fputs(report, stderr);
    fusec_free(report);
    if (st != FUSEC_OK) {
        print_lib_msg(err);
        fusec_free(err);
        fusec_graph_destroy(g);
        return EXIT_USER;
    }
    char *text = fusec_graph_print(g);
    fusec_graph_destroy(g);
    if (!text) return fail("cannot print the graph (out of memory)");
    rc = emit_text(o, text);
    fusec_free(text);
    return rc;
}

static int cmd_plan(const options *o) {
    fusec_graph *g;
    int rc = load_graph(o, &g);
    if (rc) return rc;
    fusec_module *m = NULL;
    char *err = NULL;
    fusec_status st = fusec_compile(g, FUSEC_BACKEND_PLAN, &m, &err);
    fusec_graph_destroy(g);
    if (st != FUSEC_OK) {
        print_lib_msg(err);
        fusec_free(err);
        return EXIT_USER;
    }
    char *text = fusec_module_describe(m);
    fusec_module_destroy(m);
    if (!text) return fail("cannot describe the plan (out of memory)");
    rc = emit_text(o, text);
    fusec_free(text);
    return rc;
}

static int cmd_passes(void) {
    char *text = fusec_pass_list();
    if (!text) return fail("out of memory");
    fputs(text, stdout);
    fusec_free(text);
    return EXIT_OK;
}

static int cmd_cache(const options *o) {
    char *dir = rt_kcache_dir(NULL);
    if (!dir) return fail("cannot tell where the kernel cache is (no $FUSEC_CACHE_DIR, $XDG_CACHE_HOME or $HOME)");
    uint64_t entries = 0, bytes = 0;
    int rc = EXIT_OK;
    if (strcmp(o->file, "stats") == 0) {
        if (rt_kcache_disk_usage(dir, &entries, &bytes))
            printf("kernel cache %s: %" PRIu64 " entr%s, %" PRIu64 " bytes\n", dir, entries,
                   entries == 1 ? "y" : "ies", bytes);
        else
            printf("kernel cache %s: empty (the folder does not exist)\n", dir);
    } else if (rt_kcache_clear(dir, &entries)) {
        printf("kernel cache %s: removed %" PRIu64 " entr%s\n", dir, entries, entries == 1 ? "y" : "ies");
    } else {
        rc = fail("cannot clear the kernel cache %s", dir);
    }
    free(dir);
    return rc;
}

static void free_tensors(fusec_tensor *ts, int n, bool lib_owned) {
    for (int i = 0; ts && i < n; i++) {
        if (lib_owned) fusec_free(ts[i].data);
        else free(ts[i].data);
    }
    free(ts);
}

/* The backend --backend names (parse_args checked the name). */
static fusec_backend backend_of(const char *name) {
    if (strcmp(name, "plan") == 0) return FUSEC_BACKEND_PLAN;
    if (strcmp(name, "cpu") == 0) return FUSEC_BACKEND_CPU;
    if (strcmp(name, "cuda") == 0) return FUSEC_BACKEND_CUDA;
    return FUSEC_BACKEND_INTERP;
}

/* A failed fusec_compile (what = "compile") or rt_bench ("benchmark"):
 * its message, or that the backend is not built in.  Frees err. */
static int lib_fail(fusec_status st, fusec_backend backend, const char *bname, const char *what, char *err) {
    if (st == FUSEC_ERR_UNSUPPORTED && backend != FUSEC_BACKEND_INTERP)
        fail("backend '%s' is not built into this fusec", bname);
    else if (err && *err)
        print_lib_msg(err);
    else
        fail("cannot %s: %s", what, fusec_status_string(st));
    fusec_free(err);
    return EXIT_USER;
}

/* g's inputs from --inputs DIR, else random from the seed: *inp gets nin
 * (+1) tensors with malloc'd data, *namesp the parameters' names (owned by
 * g).  Both are allocated even on failure: free them with free_tensors and
 * free. */
static int make_inputs(const options *o, const fusec_graph *g, fusec_tensor **inp, const char ***namesp) {
    int nin = fusec_graph_num_inputs(g), rc = EXIT_OK;
    fusec_tensor *in = *inp = calloc((size_t)nin + 1, sizeof *in);
    const char **names = *namesp = calloc((size_t)nin + 1, sizeof *names);
    if (!in || !names) return fail("out of memory");
    if (o->inputs) {
        struct stat sb;
        if (stat(o->inputs, &sb) != 0)
            rc = fail("inputs folder '%s': %s", o->inputs, strerror(errno));
        else if (!S_ISDIR(sb.st_mode))
            rc = fail("inputs folder '%s' is not a folder", o->inputs);
    }
    for (int i = 0; !rc && i < nin; i++) {
        fusec_tensor want;
        fusec_graph_input_info(g, i, &names[i], &want);
        for (int k = 0; k < want.rank; k++)
            if (want.shape[k] < 0)
                rc = fail("input '%s' has a symbolic size; '%s' needs static shapes", names[i], o->cmd);
        if (rc) break;
        if (o->inputs) {
            rc = read_input(o->inputs, names[i], &want, &in[i]);
        } else {
            in[i] = want;
            rc = random_input(o->seed, i, &in[i]);
        }
    }
    return rc;
}

static int cmd_run(const options *o) {
    const char *bname = o->backend ? o->backend : "interp";
    fusec_backend backend = backend_of(bname);

    fusec_graph *g;
    int rc = load_graph(o, &g);
    if (rc) return rc;
    int nin = fusec_graph_num_inputs(g), nout = fusec_graph_num_outputs(g);
    if (nin > 0 && !o->inputs && !o->have_seed) {
        fusec_graph_destroy(g);
        return usage_fail("'run' needs --inputs DIR or --random-inputs SEED "
                          "(the graph has %d parameter%s)", nin, nin == 1 ? "" : "s");
    }
    fusec_module *m = NULL;
    char *err = NULL;
    fusec_status st = fusec_compile(g, backend, &m, &err);
    if (st != FUSEC_OK) {
        fusec_graph_destroy(g);
        return lib_fail(st, backend, bname, "compile", err);
    }

    fusec_tensor *in = NULL;
    fusec_tensor *out = calloc((size_t)nout + 1, sizeof *out);
    const char **names = NULL;
    rc = make_inputs(o, g, &in, &names);
    if (!rc && !out) rc = fail("out of memory");
    if (!rc && o->verbose)
        for (int i = 0; i < nin; i++) {
            char label[256];
            snprintf(label, sizeof label, "input %s", names[i]);
            summarize(label, NULL, &in[i]);
        }
    if (!rc) {
        st = fusec_module_run(m, in, nin, out, nout, &err);
        if (st != FUSEC_OK) {
            if (err && *err) print_lib_msg(err);
            else fail("run failed: %s", fusec_status_string(st));
            rc = EXIT_USER;
            for (int i = 0; i < nout; i++) out[i].data = NULL;
        }
        fusec_free(err);
    }
    if (!rc && o->outputs) rc = make_dirs(o->outputs);
    for (int i = 0; !rc && i < nout; i++) {
        char label[32], fname[48];
        snprintf(label, sizeof label, "result%d", i);
        char *path = NULL;
        if (o->outputs) {
            snprintf(fname, sizeof fname, "%s%s", label,
                     out[i].dtype == FUSEC_DTYPE_BF16 ? ".bf16.npy" : ".npy");
            path = join(o->outputs, fname, "");
            if (!path) {
                rc = fail("out of memory");
                break;
            }
            ir_diag d;
            ir_diag_init(&d, NULL, NULL, 0);
            if (rt_npy_write(path, &out[i], &d) != FUSEC_OK) rc = diag_fail(&d);
            else ir_diag_free(&d);
        }
        if (!rc) summarize(label, path, &out[i]);
        free(path);
    }
    free_tensors(in, nin, false);
    free_tensors(out, nout, true);
    free(names);
    fusec_module_destroy(m);
    fusec_graph_destroy(g);
    return rc;
}

/* ---- bench ------------------------------------------------------------------- */

/* 1e9 bytes/s at a median time; 0 when there is no time to divide by. */
static double gbps_of(int64_t bytes, double ms) { return ms > 0 ? (double)bytes / (ms * 1e-3) / 1e9 : 0; }

/* % of the copy roofline, or -1 without a bandwidth to compare with. */
static double roof_of(const rt_bench_result *r, int64_t bytes, double ms) {
    return r->copy_gbps > 0 && ms > 0 ? gbps_of(bytes, ms) / r->copy_gbps * 100 : -1;
}

/* One row of the table: times (or dashes), bytes, GB/s and % of roof. */
static void print_row(const rt_bench_result *r, const char *what, const rt_bench_stat *t, int64_t bytes) {
    printf("%-32s", what);
    if (t) printf(" %11.5f %11.5f %11.5f", t->median_ms, t->min_ms, t->max_ms);
    else printf(" %11s %11s %11s", "-", "-", "-");
    printf(" %13" PRId64, bytes);
    double roof = t ? roof_of(r, bytes, t->median_ms) : -1;
    if (t) printf(" %9.2f", gbps_of(bytes, t->median_ms));
    else printf(" %9s", "-");
    if (roof >= 0) printf(" %7.1f\n", roof);
    else printf(" %7s\n", "-");
}

static void print_bench(const rt_bench_result *r, const char *bname) {
    bool cuda = r->backend == FUSEC_BACKEND_CUDA;
    printf("bench @%s on %s\n", r->graph, bname);
    if (r->device) printf("device: %s\n", r->device);
    printf("runs: %d timed after %d warmup\n", r->iters, r->warmup);
    if (cuda)
        printf("inputs and outputs: rotated over %d cop%s of %" PRId64 " bytes (L2: %" PRId64 " bytes)\n",
               r->copies, r->copies == 1 ? "y" : "ies", r->copy_bytes, r->l2_bytes);
    if (r->copy_gbps > 0)
        printf("copy roofline: %.2f GB/s (%s of %" PRId64 " bytes: 2 x bytes / median time)\n", r->copy_gbps,
               cuda ? "device-to-device copy" : "memcpy", r->copy_test_bytes);
    else
        printf("copy roofline: not measured\n");
    printf("\n%-32s %11s %11s %11s %13s %9s %7s\n", "", "median ms", "min ms", "max ms", "bytes", "GB/s", "% roof");
    print_row(r, "whole graph", &r->whole, r->min_bytes);
    if (r->have_same) print_row(r, "whole graph, same inputs", &r->same, r->min_bytes);
    for (int k = 0; k < r->nkernels; k++)
        print_row(r, r->kernels[k].name, r->kernel_times ? &r->kernels[k].t : NULL, r->kernels[k].bytes);
    if (r->plan_bytes >= 0) print_row(r, "whole graph, the kernels' bytes", &r->whole, r->plan_bytes);
    printf("\n");
    printf("bytes: the graph's inputs and outputs; a kernel's distinct buffers read and written%s\n",
           r->plan_bytes >= 0 ? ", summed" : "");
    if (cuda) {
        int runs = r->iters + r->warmup;
        printf("CUDA graph replay: %d of %d runs on the rotated copies, %d of %d on the same inputs\n",
               r->whole_replays, runs, r->same_replays, runs);
        printf("kernels: each between two events, launched directly, on the rotated copies\n");
        printf("compile: %.1f ms first (with the CUDA driver's initialization), %.1f ms with an empty kernel "
               "cache, %.1f ms with a warm one\n",
               r->compile_ms, r->compile_empty_ms, r->compile_warm_ms);
    } else {
        if (r->nkernels) printf("kernels: not timed one by one on the CPU backends\n");
        printf("compile: %.1f ms (no kernel cache on this backend)\n", r->compile_ms);
    }
}

/* A JSON string: quotes, backslashes and control characters escaped. */
static void json_str(const char *s) {
    if (!s) {
        fputs("null", stdout);
        return;
    }
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static void json_int(int64_t v, bool want) {
    if (want) printf("%" PRId64, v);
    else fputs("null", stdout);
}

/* A JSON number; null for what was not measured (want false) or is not finite. */
static void json_num(double v, bool want) {
    if (want && isfinite(v)) printf("%.6g", v);
    else fputs("null", stdout);
}

/* "median_ms": ..., "min_ms": ..., "max_ms": ..., "bytes": ..., "gbps": ..., "roof_pct": ...
 * (the times null when t is NULL: not measured) */
static void json_timing(const rt_bench_result *r, const rt_bench_stat *t, int64_t bytes) {
    printf("\"median_ms\": ");
    json_num(t ? t->median_ms : 0, t);
    printf(", \"min_ms\": ");
    json_num(t ? t->min_ms : 0, t);
    printf(", \"max_ms\": ");
    json_num(t ? t->max_ms : 0, t);
    printf(", \"bytes\": %" PRId64 ", \"gbps\": ", bytes);
    json_num(t ? gbps_of(bytes, t->median_ms) : 0, t);
    double roof = t ? roof_of(r, bytes, t->median_ms) : -1;
    printf(", \"roof_pct\": ");
    json_num(roof, roof >= 0);
}

static void print_bench_json(const rt_bench_result *r, const char *bname) {
    bool cuda = r->backend == FUSEC_BACKEND_CUDA;
    printf("{\"graph\": ");
    json_str(r->graph);
    printf(", \"backend\": ");
    json_str(bname);
    printf(", \"device\": ");
    json_str(r->device);
    printf(",\n \"iters\": %d, \"warmup\": %d, \"copies\": %d, \"copy_bytes\": %" PRId64 ", \"l2_bytes\": ", r->iters,
           r->warmup, r->copies, r->copy_bytes);
    json_int(r->l2_bytes, cuda);
    printf(",\n \"copy_bandwidth_gbps\": ");
    json_num(r->copy_gbps, r->copy_gbps > 0);
    printf(", \"copy_bandwidth_test_bytes\": %" PRId64 ",\n \"whole_graph\": {", r->copy_test_bytes);
    json_timing(r, &r->whole, r->min_bytes);
    printf("},\n \"whole_graph_same_inputs\": ");
    if (r->have_same) {
        putchar('{');
        json_timing(r, &r->same, r->min_bytes);
        putchar('}');
    } else {
        fputs("null", stdout);
    }
    printf(",\n \"cuda_graph_replays\": ");
    if (cuda) printf("{\"rotated\": %d, \"same_inputs\": %d, \"runs\": %d}", r->whole_replays, r->same_replays,
                     r->iters + r->warmup);
    else fputs("null", stdout);
    printf(",\n \"plan_bytes\": ");
    json_int(r->plan_bytes, r->plan_bytes >= 0);
    printf(", \"kernel_times\": %s,\n \"kernels\": [", r->kernel_times ? "true" : "false");
    for (int k = 0; k < r->nkernels; k++) {
        printf("%s\n  {\"name\": ", k ? "," : "");
        json_str(r->kernels[k].name);
        printf(", ");
        json_timing(r, r->kernel_times ? &r->kernels[k].t : NULL, r->kernels[k].bytes);
        putchar('}');
    }
    printf("],\n \"compile_ms\": {\"first\": ");
    json_num(r->compile_ms, true);
    printf(", \"empty_cache\": ");
    json_num(r->compile_empty_ms, r->compile_empty_ms >= 0);
    printf(", \"warm_cache\": ");
    json_num(r->compile_warm_ms, r->compile_warm_ms >= 0);
    printf("}}\n");
}

static int cmd_bench(const options *o) {
    const char *bname = o->backend ? o->backend : "cuda";
    fusec_backend backend = backend_of(bname);
    fusec_graph *g;
    int rc = load_graph(o, &g);
    if (rc) return rc;
    int nin = fusec_graph_num_inputs(g);
    fusec_tensor *in = NULL;
    const char **names = NULL;
    rc = make_inputs(o, g, &in, &names); /* o->seed is 0 unless given */
    if (!rc) {
        rt_bench_opts bo = {.iters = o->iters, .warmup = o->warmup};
        rt_bench_result r;
        char *err = NULL;
        fusec_status st = rt_bench(g, backend, in, nin, &bo, &r, &err);
        if (st != FUSEC_OK) {
            rc = lib_fail(st, backend, bname, "benchmark", err);
        } else {
            fusec_free(err);
            if (o->json) print_bench_json(&r, bname);
            else print_bench(&r, bname);
            rt_bench_result_free(&r);
            if (fflush(stdout) != 0) rc = fail("cannot write to stdout: %s", strerror(errno));
        }
    }
    free_tensors(in, nin, false);
    free(names);
    fusec_graph_destroy(g);
    return rc;
}

int main(int argc, char **argv) {
    options o = {0};
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    if (strcmp(o.cmd, "check") == 0) return cmd_check(&o);
    if (strcmp(o.cmd, "print") == 0) return cmd_print(&o);
    if (strcmp(o.cmd, "opt") == 0) return cmd_opt(&o);
    if (strcmp(o.cmd, "plan") == 0) return cmd_plan(&o);
    if (strcmp(o.cmd, "passes") == 0) return cmd_passes();
    if (strcmp(o.cmd, "cache") == 0) return cmd_cache(&o);
    if (strcmp(o.cmd, "bench") == 0) return cmd_bench(&o);
    return cmd_run(&o);
}
