/*
 * cuda.c - the process-wide half of the CUDA runtime: loading the driver,
 * the one check every driver and NVRTC call goes through, the lost-context
 * state, choosing the target architecture, and compiling a translation
 * unit with NVRTC through the kernel cache.  Compiled plans and their runs
 * are in cuda_exec.c.
 *
 * Loading the driver.  libcuda.so.1 is opened with dlopen the first time
 * anything needs it (rt_cuda_init, run once under pthread_once), and every
 * function fusec uses is looked up under the name <cuda.h> binds it to
 * (cuda_impl.h explains the table).  Without a driver a fusec binary still
 * starts and runs its other backends; asking for CUDA then reports "no
 * CUDA driver found (libcuda.so.1): <why>".  The outcome of the first
 * initialization, success or failure, is kept and repeated to every later
 * caller: the driver is never half-loaded and never loaded twice.  NVRTC is
 * linked normally: it comes with the toolkit fusec is built against and
 * needs no GPU, so kernels compile (and their tests run) on any machine.
 *
 * Checking.  CU_CHECK / NVRTC_CHECK wrap every call.  A failure is written
 * to the caller's ir_diag with the call's text, file:line and the error's
 * name and description.  The errors after which CUDA documents the
 * context as unusable (an illegal or misaligned address, an illegal
 * instruction, a failed launch, an uncorrectable ECC error, ...) also set
 * the runtime's `lost` flag with that first message; from then on every
 * entry point fails fast with "the CUDA context is lost after an earlier
 * error: ...".  Nothing is retried: a sticky error is only cured by a new
 * process.
 *
 * Architecture.  The device's compute capability, when NVRTC supports it,
 * is compiled to a CUBIN (sm_XY).  A device newer than this NVRTC gets PTX
 * for the newest architecture NVRTC knows below it (compute_XY), which the
 * driver compiles for the device at load time; older than everything NVRTC
 * supports is an error.  rt_cuda_pick_arch is that rule as a pure function.
 *
 * Compiling.  A translation unit is looked up in the kernel cache
 * (runtime/kcache.h) under the hash of its source, options, NVRTC and
 * driver versions and target; on a miss NVRTC compiles it and the result
 * is stored.  A compile error returns NVRTC's log and saves the source to
 * $TMPDIR/fusec-nvrtc-<pid>-<n>-<kernel>.cu, named in the message.  A
 * cached entry the driver refuses to load is recompiled once from source
 * (the cache can only be wrong about the bytes, never about the source).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "runtime/cuda.h"

/* ---- pure pieces (built with or without the toolkit) --------------------- */

bool rt_cuda_pick_arch(int cc, const int *supported, int n, int *arch, bool *ptx, ir_diag *d) {
    int best = -1, lo = INT_MAX, hi = -1;
    for (int i = 0; i < n; i++) {
        int a = supported[i];
        if (a == cc) {
            *arch = cc;
            *ptx = false;
            return true;
        }
        if (a < cc && a > best) best = a;
        if (a < lo) lo = a;
        if (a > hi) hi = a;
    }
    if (best > 0) {
        *arch = best;
        *ptx = true;
        return true;
    }
    if (n <= 0)
        ir_error(d, (ir_loc){0}, "NVRTC reports no supported GPU architecture");
    else
        ir_error(d, (ir_loc){0},
                 "the GPU's compute capability %d.%d is older than every architecture this NVRTC "
                 "supports (%d.%d to %d.%d)",
                 cc / 10, cc % 10, lo / 10, lo % 10, hi / 10, hi % 10);
    return false;
}

void rt_cuda_arch_option(int arch, bool ptx, char opt[48], char shortname[16]) {
    snprintf(shortname, 16, "%s_%d", ptx ? "compute" : "sm", arch);
    snprintf(opt, 48, "--gpu-architecture=%s", shortname);
}

#ifdef FUSEC_HAVE_CUDA

#include "codegen/cuda.h"
#include "runtime/cuda_impl.h"
#include "runtime/fileio.h"
#include "runtime/kcache.h"

rt_cu_api rt_cu;
rt_cuda_state rt_cuda;

double rt_cuda_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

void rt_cuda_diag_merge(ir_diag *d, const ir_diag *from) {
    const char *p = from->out.buf;
    if (!d || !p) return;
    /* Each message starts with "error: " (the diags here carry no file);
     * the lines up to the next such line belong to it. */
    while (*p) {
        if (strncmp(p, "error: ", 7) == 0) p += 7;
        const char *e = p;
        for (;;) {
            const char *nl = strchr(e, '\n');
            if (!nl) {
                e += strlen(e);
                break;
            }
            e = nl + 1;
            if (!*e || strncmp(e, "error: ", 7) == 0) break;
        }
        int n = (int)(e - p);
        if (n > 0 && p[n - 1] == '\n') n--;
        ir_error(d, (ir_loc){0}, "%.*s", n, p);
        p = e;
    }
}

/* ---- checking and the lost state ------------------------------------------ */

static atomic_int lost;
static char lost_msg[1024];
static pthread_mutex_t lost_mu = PTHREAD_MUTEX_INITIALIZER;

/* "runtime/cuda.c" out of whatever path the compiler was given. */
static const char *short_file(const char *file) {
    const char *s = strstr(file, "runtime/");
    return s ? s : file;
}

/* The call as written, without the table prefix. */
static const char *short_expr(const char *expr) {
    return strncmp(expr, "rt_cu.", 6) == 0 ? expr + 6 : expr;
}

bool rt_cu_sticky(CUresult r) {
    switch (r) {
    case CUDA_ERROR_ILLEGAL_ADDRESS:
    case CUDA_ERROR_LAUNCH_FAILED:
    case CUDA_ERROR_LAUNCH_TIMEOUT:
    case CUDA_ERROR_HARDWARE_STACK_ERROR:
    case CUDA_ERROR_ILLEGAL_INSTRUCTION:
    case CUDA_ERROR_MISALIGNED_ADDRESS:
    case CUDA_ERROR_INVALID_ADDRESS_SPACE:
    case CUDA_ERROR_INVALID_PC:
    case CUDA_ERROR_ECC_UNCORRECTABLE:
    case CUDA_ERROR_CONTEXT_IS_DESTROYED: return true;
    default: return false;
    }
}

bool rt_cuda_is_lost(ir_diag *d) {
    if (!atomic_load(&lost)) return false;
    if (d) ir_error(d, (ir_loc){0}, "the CUDA context is lost after an earlier error: %s", lost_msg);
    return true;
}

bool rt_cu_check(CUresult r, const char *expr, const char *file, int line, ir_diag *d) {
    if (r == CUDA_SUCCESS) return true;
    const char *name = NULL, *desc = NULL;
    if (rt_cu.cuGetErrorName) rt_cu.cuGetErrorName(r, &name);
    if (rt_cu.cuGetErrorString) rt_cu.cuGetErrorString(r, &desc);
    char num[32];
    snprintf(num, sizeof num, "CUresult %d", (int)r);
    char msg[sizeof lost_msg];
    snprintf(msg, sizeof msg, "CUDA error %s (%s) in %s at %s:%d", name ? name : num,
             desc ? desc : "no description", short_expr(expr), short_file(file), line);
    bool sticky = rt_cu_sticky(r), first = false;
    if (sticky) {
        pthread_mutex_lock(&lost_mu);
        if (!atomic_load(&lost)) {
            snprintf(lost_msg, sizeof lost_msg, "%s", msg);
            atomic_store(&lost, 1);
            first = true;
        }
        pthread_mutex_unlock(&lost_mu);
    }
    if (d) {
        if (sticky && !first)
            ir_error(d, (ir_loc){0}, "%s (the CUDA context is lost after an earlier error: %s)", msg,
                     lost_msg);
        else
            ir_error(d, (ir_loc){0}, "%s%s", msg,
                     sticky ? "; the CUDA context is now lost: no more CUDA work can run in this "
                              "process"
                            : "");
    }
    return false;
}

bool rt_nvrtc_check(nvrtcResult r, const char *expr, const char *file, int line, ir_diag *d) {
    if (r == NVRTC_SUCCESS) return true;
    if (d)
        ir_error(d, (ir_loc){0}, "NVRTC error %s in %s at %s:%d", nvrtcGetErrorString(r), expr,
                 short_file(file), line);
    return false;
}

/* ---- initialization --------------------------------------------------------- */

static pthread_once_t init_once = PTHREAD_ONCE_INIT;
static fusec_status init_status;
static ir_diag init_diag; /* the first initialization's errors, repeated to later callers */

#define RT_STR_(x) #x
#define RT_XSTR_(x) RT_STR_(x) /* the name after <cuda.h>'s renaming macros */

static bool load_driver(ir_diag *d) {
    const char *lib = getenv("FUSEC_CUDA_DRIVER");
    if (!lib || !*lib) lib = "libcuda.so.1";
    void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *why = dlerror();
        ir_error(d, (ir_loc){0}, "no CUDA driver found (%s): %s", lib, why ? why : "dlopen failed");
        return false;
    }
    /* Look every function up; name the first missing one. */
#define RT_CU_LOOKUP_(fn)                                                                   \
    if (ok) {                                                                               \
        void *sym = dlsym(h, RT_XSTR_(fn));                                                 \
        if (!sym) {                                                                         \
            ir_error(d, (ir_loc){0},                                                        \
                     "the CUDA driver %s has no %s: it is older than the CUDA %d.%d this "  \
                     "fusec was built with (update the driver)",                            \
                     lib, RT_XSTR_(fn), CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);     \
            ok = false;                                                                     \
        } else {                                                                            \
            memcpy(&rt_cu.fn, &sym, sizeof sym);                                            \
        }                                                                                   \
    }
    bool ok = true;
    RT_CU_FUNCS(RT_CU_LOOKUP_)
#undef RT_CU_LOOKUP_
    if (!ok) {
        memset(&rt_cu, 0, sizeof rt_cu);
        dlclose(h);
    }
    return ok; /* the library stays loaded for the life of the process */
}

int *rt_cuda_nvrtc_archs(int *n, ir_diag *d) {
    *n = 0;
    int k = 0;
    if (!NVRTC_CHECK(d, nvrtcGetNumSupportedArchs(&k))) return NULL;
    int *a = malloc(sizeof *a * (size_t)(k > 0 ? k : 1));
    if (!a) {
        ir_error(d, (ir_loc){0}, "out of memory");
        return NULL;
    }
    if (k > 0 && !NVRTC_CHECK(d, nvrtcGetSupportedArchs(a))) {
        free(a);
        return NULL;
    }
    *n = k;
    return a;
}

static bool init_device(ir_diag *d) {
    rt_cuda_state *s = &rt_cuda;
    if (!CU_CHECK(d, rt_cu.cuInit(0))) return false;
    if (!CU_CHECK(d, rt_cu.cuDriverGetVersion(&s->driver_version))) return false;
    if (s->driver_version / 1000 < CUDA_VERSION / 1000) {
        ir_error(d, (ir_loc){0},
                 "the CUDA driver supports CUDA %d.%d, older than the CUDA %d.%d this fusec was "
                 "built with: update the driver",
                 s->driver_version / 1000, s->driver_version % 1000 / 10, CUDA_VERSION / 1000,
                 CUDA_VERSION % 1000 / 10);
        return false;
    }
    int count = 0;
    if (!CU_CHECK(d, rt_cu.cuDeviceGetCount(&count))) return false;
    const char *ord = getenv("FUSEC_CUDA_DEVICE");
    s->ordinal = ord && *ord ? atoi(ord) : 0;
    if (count == 0 || s->ordinal < 0 || s->ordinal >= count) {
        ir_error(d, (ir_loc){0}, "no CUDA device %d: the driver sees %d device%s", s->ordinal, count,
                 count == 1 ? "" : "s");
        return false;
    }
    int major = 0, minor = 0, sms = 0;
    char name[256] = "?";
    size_t total = 0;
    if (!CU_CHECK(d, rt_cu.cuDeviceGet(&s->dev, s->ordinal)) ||
        !CU_CHECK(d, rt_cu.cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, s->dev)) ||
        !CU_CHECK(d, rt_cu.cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, s->dev)) ||
        !CU_CHECK(d, rt_cu.cuDeviceGetAttribute(&sms, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, s->dev)) ||
        !CU_CHECK(d, rt_cu.cuDeviceGetName(name, (int)sizeof name, s->dev)) ||
        !CU_CHECK(d, rt_cu.cuDeviceTotalMem(&total, s->dev)))
        return false;
    s->cc = major * 10 + minor;
    /* The primary context: the one the CUDA runtime API uses, so device
     * pointers from cudaMalloc work with fusec_module_run_device. */
    if (!CU_CHECK(d, rt_cu.cuDevicePrimaryCtxRetain(&s->ctx, s->dev))) return false;
    if (!CU_CHECK(d, rt_cu.cuCtxSetCurrent(s->ctx))) return false;

    if (!NVRTC_CHECK(d, nvrtcVersion(&s->nvrtc_major, &s->nvrtc_minor))) return false;
    int narch = 0;
    int *archs = rt_cuda_nvrtc_archs(&narch, d);
    if (!archs) return false;
    bool ok = rt_cuda_pick_arch(s->cc, archs, narch, &s->arch, &s->ptx, d);
    free(archs);
    if (!ok) return false;

    long nc = sysconf(_SC_NPROCESSORS_ONLN);
    s->ncores = nc > 0 ? (int)(nc > 256 ? 256 : nc) : 1;
    const char *gm = getenv("FUSEC_CUDA_GRAPHS");
    s->graph_mode = !gm || !*gm ? RT_GRAPHS_AUTO : strcmp(gm, "0") == 0 ? RT_GRAPHS_OFF : RT_GRAPHS_ALWAYS;
    s->cache = rt_kcache_open(NULL, NULL);
    if (!s->cache) {
        ir_error(d, (ir_loc){0}, "out of memory opening the kernel cache");
        return false;
    }
    snprintf(s->summary, sizeof s->summary,
             "%s (device %d), compute capability %d.%d, %d SMs, %.1f GiB; CUDA driver %d.%d, "
             "NVRTC %d.%d; kernels compiled for %s_%d (%s)",
             name, s->ordinal, major, minor, sms, (double)total / (1 << 30), s->driver_version / 1000,
             s->driver_version % 1000 / 10, s->nvrtc_major, s->nvrtc_minor, s->ptx ? "compute" : "sm",
             s->arch, s->ptx ? "PTX, compiled by the driver" : "CUBIN");
    return true;
}

static void do_init(void) {
    ir_diag_init(&init_diag, NULL, NULL, 0);
    init_status = FUSEC_OK;
    if (!load_driver(&init_diag) || !init_device(&init_diag)) init_status = FUSEC_ERR_BACKEND;
}

fusec_status rt_cuda_init(ir_diag *d) {
    pthread_once(&init_once, do_init);
    if (init_status != FUSEC_OK) {
        rt_cuda_diag_merge(d, &init_diag);
        return init_status;
    }
    if (rt_cuda_is_lost(d)) return FUSEC_ERR_BACKEND;
    return FUSEC_OK;
}

const char *rt_cuda_device_summary(void) {
    pthread_once(&init_once, do_init);
    return init_status == FUSEC_OK ? rt_cuda.summary : NULL;
}

bool rt_cuda_enter(ir_diag *d) {
    if (rt_cuda_init(d) != FUSEC_OK) return false;
    return CU_CHECK(d, rt_cu.cuCtxSetCurrent(rt_cuda.ctx));
}

/* ---- NVRTC ------------------------------------------------------------------ */

static bool inject_nvrtc_failure(void) {
    const char *e = getenv("FUSEC_CUDA_INJECT_NVRTC_FAILURE");
    return e && *e && strcmp(e, "0") != 0;
}

/* Save a source that failed to compile; the path, or NULL (why in d). */
static char *save_source(const char *name, const char *source, ir_diag *d) {
    static atomic_int seq;
    const char *tmp = getenv("TMPDIR");
    if (!tmp || !*tmp) tmp = "/tmp";
    ir_str path = {0};
    ir_str_printf(&path, "%s/fusec-nvrtc-%ld-%d-", tmp, (long)getpid(), atomic_fetch_add(&seq, 1));
    for (const char *c = name; *c && c - name < 64; c++)
        ir_str_putc(&path, (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                                   *c == '_'
                               ? *c
                               : '_');
    ir_str_puts(&path, ".cu");
    char *p = ir_str_take(&path);
    if (!p) return NULL;
    const void *parts[1] = {source};
    size_t lens[1] = {strlen(source)};
    if (rt_write_file_atomic(p, parts, lens, 1, 0600, d) != FUSEC_OK) {
        free(p);
        return NULL;
    }
    return p;
}

/* cg_cuda_options() + the target + extra: a NULL-terminated malloc'd array. */
static const char **compile_options(const char *target, const char *const *extra, int *n) {
    const char *const *base = cg_cuda_options();
    int nb = 0, ne = 0;
    while (base && base[nb]) nb++;
    while (extra && extra[ne]) ne++;
    const char **o = malloc(sizeof *o * (size_t)(nb + ne + 2));
    if (!o) return NULL;
    int k = 0;
    for (int i = 0; i < nb; i++) o[k++] = base[i];
    o[k++] = target;
    for (int i = 0; i < ne; i++) o[k++] = extra[i];
    o[k] = NULL;
    *n = k;
    return o;
}

fusec_status rt_cuda_nvrtc_compile(const char *name, const char *source, int arch, bool ptx,
                                   const char *const *extra, void **bin, size_t *len, ir_diag *d) {
    *bin = NULL;
    *len = 0;
    char target[48], shortname[16];
    rt_cuda_arch_option(arch, ptx, target, shortname);
    char *injected = NULL;
    if (inject_nvrtc_failure()) {
        ir_str s = {0};
        ir_str_printf(&s, "%s\n/* FUSEC_CUDA_INJECT_NVRTC_FAILURE */\nthis is not CUDA C;\n", source);
        source = injected = ir_str_take(&s);
        if (!source) {
            ir_error(d, (ir_loc){0}, "out of memory");
            return FUSEC_ERR_NOMEM;
        }
    }
    int nopt = 0;
    const char **opts = compile_options(target, extra, &nopt);
    ir_str pname = {0};
    ir_str_printf(&pname, "%s.cu", name);
    fusec_status st = FUSEC_OK;
    nvrtcProgram prog = NULL;
    if (!opts || !pname.buf) {
        ir_error(d, (ir_loc){0}, "out of memory");
        st = FUSEC_ERR_NOMEM;
    } else if (!NVRTC_CHECK(d, nvrtcCreateProgram(&prog, source, pname.buf, 0, NULL, NULL))) {
        st = FUSEC_ERR_BACKEND;
        prog = NULL;
    } else if (!NVRTC_CHECK(d, nvrtcCompileProgram(prog, nopt, opts))) {
        st = FUSEC_ERR_BACKEND;
        size_t loglen = 0;
        char *log = NULL;
        if (NVRTC_CHECK(d, nvrtcGetProgramLogSize(prog, &loglen)) && (log = malloc(loglen + 1))) {
            if (!NVRTC_CHECK(d, nvrtcGetProgramLog(prog, log))) log[0] = 0;
            log[loglen] = 0;
        }
        char *path = save_source(name, source, d);
        size_t ll = log ? strlen(log) : 0;
        while (ll && (log[ll - 1] == '\n' || log[ll - 1] == '\r')) log[--ll] = 0;
        ir_error(d, (ir_loc){0}, "NVRTC could not compile kernel %s for %s; its source is saved in %s\n%s",
                 name, shortname, path ? path : "(nowhere: saving it failed, see above)",
                 log && *log ? log : "(NVRTC gave no log)");
        free(log);
        free(path);
    } else {
        size_t n = 0;
        bool ok = ptx ? NVRTC_CHECK(d, nvrtcGetPTXSize(prog, &n)) : NVRTC_CHECK(d, nvrtcGetCUBINSize(prog, &n));
        char *b = ok ? malloc(n ? n : 1) : NULL;
        if (ok && !b) ir_error(d, (ir_loc){0}, "out of memory");
        if (b) ok = ptx ? NVRTC_CHECK(d, nvrtcGetPTX(prog, b)) : NVRTC_CHECK(d, nvrtcGetCUBIN(prog, b));
        if (b && ok) {
            *bin = b;
            *len = n;
        } else {
            free(b);
            st = FUSEC_ERR_BACKEND;
        }
    }
    if (prog) NVRTC_CHECK(NULL, nvrtcDestroyProgram(&prog));
    ir_str_free(&pname);
    free(opts);
    free(injected);
    return st;
}

/* Load a CUBIN or PTX image; PTX brings the driver's JIT log on failure. */
static bool load_image(const char *name, const void *bin, CUmodule *mod, ir_diag *d) {
    if (!rt_cuda.ptx) return CU_CHECK(d, rt_cu.cuModuleLoadData(mod, bin));
    char log[8192] = "";
    CUjit_option o[2] = {CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES};
    void *v[2] = {log, (void *)(uintptr_t)sizeof log};
    if (CU_CHECK(d, rt_cu.cuModuleLoadDataEx(mod, bin, 2, o, v))) return true;
    if (log[0]) ir_error(d, (ir_loc){0}, "the driver could not compile the PTX of kernel %s:\n%s", name, log);
    return false;
}

bool rt_cuda_build(rt_kcache *cache, const char *name, const char *source, CUmodule *mod, bool *cached,
                   double *ms_compile, double *ms_load, ir_diag *d) {
    *mod = NULL;
    *cached = false;
    *ms_compile = *ms_load = 0;
    char target[48], shortname[16];
    rt_cuda_arch_option(rt_cuda.arch, rt_cuda.ptx, target, shortname);
    int nopt = 0;
    const char **opts = compile_options(target, NULL, &nopt);
    if (!opts) {
        ir_error(d, (ir_loc){0}, "out of memory");
        return false;
    }
    rt_kcache_keyparts kp = {
        .source = source,
        .options = opts,
        .noptions = nopt,
        .nvrtc_major = rt_cuda.nvrtc_major,
        .nvrtc_minor = rt_cuda.nvrtc_minor,
        .driver_version = rt_cuda.driver_version,
        .arch = shortname,
    };
    rt_kcache_key_t key = rt_kcache_key(&kp);
    free(opts);
    /* An injected failure must reach NVRTC: no cache on that path. */
    bool use_cache = !inject_nvrtc_failure();
    void *bin = NULL;
    size_t len = 0;
    if (use_cache && rt_kcache_get(cache, &key, &bin, &len)) {
        double t0 = rt_cuda_now_ms();
        ir_diag tmp;
        ir_diag_init(&tmp, NULL, NULL, 0);
        bool ok = load_image(name, bin, mod, &tmp);
        *ms_load = rt_cuda_now_ms() - t0;
        free(bin);
        bin = NULL;
        if (ok || rt_cuda_is_lost(NULL)) {
            if (!ok) rt_cuda_diag_merge(d, &tmp);
            ir_diag_free(&tmp);
            *cached = ok;
            return ok;
        }
        ir_diag_free(&tmp); /* a cached image the driver refuses: compile it afresh */
    }
    double t0 = rt_cuda_now_ms();
    fusec_status st = rt_cuda_nvrtc_compile(name, source, rt_cuda.arch, rt_cuda.ptx, NULL, &bin, &len, d);
    double t1 = rt_cuda_now_ms();
    *ms_compile = t1 - t0;
    if (st != FUSEC_OK) return false;
    bool ok = load_image(name, bin, mod, d);
    *ms_load = rt_cuda_now_ms() - t1;
    if (ok && use_cache) rt_kcache_put(cache, &key, bin, len);
    free(bin);
    return ok;
}

#else /* !FUSEC_HAVE_CUDA: the toolkit was not found at configure time */

static void not_built(ir_diag *d) {
    ir_error(d, (ir_loc){0},
             "backend 'cuda' is not built into this fusec (it was configured without the CUDA "
             "toolkit)");
}

fusec_status rt_cuda_init(ir_diag *d) {
    not_built(d);
    return FUSEC_ERR_UNSUPPORTED;
}
const char *rt_cuda_device_summary(void) { return NULL; }
fusec_status rt_cuda_load(const plan *p, struct rt_kcache *cache, rt_cuda_module **out, ir_diag *d) {
    (void)p, (void)cache;
    *out = NULL;
    not_built(d);
    return FUSEC_ERR_UNSUPPORTED;
}
void rt_cuda_unload(rt_cuda_module *m) { (void)m; }
fusec_status rt_cuda_run(rt_cuda_module *m, const fusec_tensor *in, int nin, fusec_tensor *out,
                         int nout, ir_diag *d) {
    (void)m, (void)in, (void)nin, (void)out, (void)nout;
    not_built(d);
    return FUSEC_ERR_UNSUPPORTED;
}
fusec_status rt_cuda_run_device(rt_cuda_module *m, const fusec_tensor *in, int nin,
                                fusec_tensor *out, int nout, void *stream, ir_diag *d) {
    (void)m, (void)in, (void)nin, (void)out, (void)nout, (void)stream;
    not_built(d);
    return FUSEC_ERR_UNSUPPORTED;
}
fusec_status rt_cuda_plan_run(const plan *p, const fusec_tensor *in, int nin, fusec_tensor *out,
                              int nout, ir_diag *d) {
    (void)p, (void)in, (void)nin, (void)out, (void)nout;
    not_built(d);
    return FUSEC_ERR_UNSUPPORTED;
}
fusec_status rt_cuda_bench(rt_cuda_module *m, const fusec_tensor *in, int nin, const rt_bench_opts *o,
                           rt_bench_result *r, ir_diag *d) {
    (void)m, (void)in, (void)nin, (void)o, (void)r;
    not_built(d);
    return FUSEC_ERR_UNSUPPORTED;
}
void rt_cuda_describe(const rt_cuda_module *m, ir_str *s) { (void)m, (void)s; }
int *rt_cuda_nvrtc_archs(int *n, ir_diag *d) {
    *n = 0;
    not_built(d);
    return NULL;
}
fusec_status rt_cuda_nvrtc_compile(const char *name, const char *source, int arch, bool ptx,
                                   const char *const *extra, void **bin, size_t *len, ir_diag *d) {
    (void)name, (void)source, (void)arch, (void)ptx, (void)extra;
    *bin = NULL;
    *len = 0;
    not_built(d);
    return FUSEC_ERR_UNSUPPORTED;
}

#endif
