/*
 * test_rt_cuda.c - the parts of the CUDA runtime (runtime/cuda.c) that need
 * no GPU: the clean failure without a driver, the choice of the target
 * architecture, NVRTC compilation to an sm_90 CUBIN and to PTX (a
 * hand-written kernel and the generated kernels of a few graphs), and the
 * NVRTC error path (the log, the saved source, the injected failure).
 * Everything that needs a device is in tests/gpu/gpu_test.c.
 *
 * The driver-less case runs in a child process with FUSEC_CUDA_DRIVER
 * naming a library that does not exist, so it holds on a GPU machine too
 * (the runtime loads the driver once per process).
 */
#define _GNU_SOURCE
#include <stdbool.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codegen/cuda.h"
#include "frontend/parse.h"
#include "passes/fuse.h"
#include "passes/memplan.h"
#include "passes/pass.h"
#include "runtime/cuda.h"
#include "test.h"

#ifdef FUSEC_HAVE_CUDA

static const char *const graph_ew =
    "func @ew(%x: f32[64, 100], %b: f32[100]) -> f32[64, 100] {\n"
    "  %y = add(%x, %b)\n"
    "  %z = tanh(%y)\n"
    "  return %z\n"
    "}\n";

static const char *const graph_softmax =
    "func @sm(%x: f16[8, 300]) -> f16[8, 300] {\n"
    "  %s = softmax(%x) {axis = -1}\n"
    "  return %s\n"
    "}\n";

static const char *const graph_mix =
    "func @mix(%x: f32[4, 16], %w: f32[16, 8], %i: i64[3]) -> (f32[4, 8], f32[3, 16], i64[4]) {\n"
    "  %m = matmul(%x, %w)\n"
    "  %r = relu(%m)\n"
    "  %g = index_select(%x, %i) {axis = 0}\n"
    "  %a = argmax(%x) {axis = 1}\n"
    "  return %r, %g, %a\n"
    "}\n";

static const char *const tiny_kernel =
    "extern \"C\" __global__ void fc_scale(float *y, const float *x, int n) {\n"
    "    int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "    if (i < n) y[i] = 2.0f * x[i];\n"
    "}\n";

/* ---- without a driver ------------------------------------------------------ */

/* In a child: no driver, so CUDA fails cleanly and the interpreter runs. */
static int driverless_child(void) {
    setenv("FUSEC_CUDA_DRIVER", "/nonexistent/fusec-test/libcuda.so.1", 1);
    int bad = 0;
    fusec_graph *g = NULL;
    char *err = NULL;
    if (fusec_graph_parse(graph_ew, strlen(graph_ew), "ew.ir", NULL, &g, &err) != FUSEC_OK) return 10;
    fusec_free(err);
    fusec_module *m = NULL;
    fusec_status st = fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err);
    if (st != FUSEC_ERR_BACKEND || m) bad |= 1;
    if (!err || !strstr(err, "no CUDA driver found (/nonexistent/fusec-test/libcuda.so.1): ")) bad |= 2;
    if (bad && err) fprintf(stderr, "child got: %s", err);
    fusec_free(err);
    /* asked again: the same answer, not a second attempt */
    st = fusec_compile(g, FUSEC_BACKEND_CUDA, &m, &err);
    if (st != FUSEC_ERR_BACKEND || !err || !strstr(err, "no CUDA driver found")) bad |= 4;
    fusec_free(err);
    /* the rest of fusec still works */
    if (fusec_compile(g, FUSEC_BACKEND_INTERP, &m, &err) != FUSEC_OK) bad |= 8;
    fusec_module_destroy(m);
    /* the device summary is not available */
    if (rt_cuda_device_summary() != NULL) bad |= 16;
    fusec_graph_destroy(g);
    return bad;
}

TEST(driverless) {
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) _exit(driverless_child());
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
    CHECK_EQ_INT(WEXITSTATUS(status), 0);
}

/* ---- choosing the architecture ------------------------------------------------ */

TEST(pick_arch) {
    static const int nvrtc13[] = {75, 80, 86, 87, 88, 89, 90, 100, 103, 110, 120, 121};
    const int n = (int)(sizeof nvrtc13 / sizeof nvrtc13[0]);
    int arch = 0;
    bool ptx = true;
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    /* supported: a CUBIN for the device itself */
    CHECK(rt_cuda_pick_arch(90, nvrtc13, n, &arch, &ptx, &d));
    CHECK_EQ_INT(arch, 90);
    CHECK(!ptx);
    CHECK(rt_cuda_pick_arch(75, nvrtc13, n, &arch, &ptx, &d));
    CHECK_EQ_INT(arch, 75);
    CHECK(!ptx);
    /* newer than NVRTC: PTX of the newest below */
    CHECK(rt_cuda_pick_arch(130, nvrtc13, n, &arch, &ptx, &d));
    CHECK_EQ_INT(arch, 121);
    CHECK(ptx);
    /* between two supported ones: PTX of the one below, in any order */
    static const int shuffled[] = {100, 80, 90, 86};
    CHECK(rt_cuda_pick_arch(91, shuffled, 4, &arch, &ptx, &d));
    CHECK_EQ_INT(arch, 90);
    CHECK(ptx);
    CHECK(rt_cuda_pick_arch(89, shuffled, 4, &arch, &ptx, &d));
    CHECK_EQ_INT(arch, 86);
    CHECK(ptx);
    CHECK_EQ_INT(d.nerr, 0);
    /* older than everything: an error naming both ends */
    CHECK(!rt_cuda_pick_arch(70, nvrtc13, n, &arch, &ptx, &d));
    CHECK_EQ_INT(d.nerr, 1);
    CHECK(d.out.buf && strstr(d.out.buf, "compute capability 7.0 is older than every architecture"));
    CHECK(d.out.buf && strstr(d.out.buf, "(7.5 to 12.1)"));
    CHECK(!rt_cuda_pick_arch(90, nvrtc13, 0, &arch, &ptx, &d));
    CHECK_EQ_INT(d.nerr, 2);
    ir_diag_free(&d);
}

TEST(arch_option) {
    char opt[48], sn[16];
    rt_cuda_arch_option(90, false, opt, sn);
    CHECK_STR(opt, "--gpu-architecture=sm_90");
    CHECK_STR(sn, "sm_90");
    rt_cuda_arch_option(121, true, opt, sn);
    CHECK_STR(opt, "--gpu-architecture=compute_121");
    CHECK_STR(sn, "compute_121");
}

TEST(nvrtc_archs) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    int n = 0;
    int *a = rt_cuda_nvrtc_archs(&n, &d);
    CHECK(a != NULL);
    CHECK(n > 0);
    bool has90 = false;
    for (int i = 0; a && i < n; i++) has90 |= a[i] == 90;
    CHECK(has90);
    free(a);
    ir_diag_free(&d);
}

/* ---- compiling ------------------------------------------------------------------ */

static bool is_elf(const void *bin, size_t len) {
    return len > 4 && memcmp(bin, "\177ELF", 4) == 0;
}

TEST(compile_cubin_and_ptx) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    void *bin = NULL;
    size_t len = 0;
    CHECK_EQ_INT(rt_cuda_nvrtc_compile("fc_scale", tiny_kernel, 90, false, NULL, &bin, &len, &d), FUSEC_OK);
    CHECK(is_elf(bin, len));
    free(bin);
    /* PTX, as for a device newer than NVRTC: text for the driver's JIT */
    CHECK_EQ_INT(rt_cuda_nvrtc_compile("fc_scale", tiny_kernel, 80, true, NULL, &bin, &len, &d), FUSEC_OK);
    CHECK(bin && len > 1 && ((char *)bin)[len - 1] == 0);
    CHECK(bin && strstr(bin, ".target sm_80"));
    CHECK(bin && strstr(bin, ".entry fc_scale"));
    free(bin);
    CHECK_EQ_INT(d.nerr, 0);
    if (d.nerr) fprintf(stderr, "%s", d.out.buf);
    ir_diag_free(&d);
}

/* Every generated kernel of a graph compiles to an sm_90 CUBIN. */
static void compile_graph(const char *src) {
    ir_diag d;
    ir_diag_init(&d, "test.ir", src, strlen(src));
    ir_graph *g = fe_parse(src, strlen(src), "test.ir", NULL, &d);
    CHECK(g != NULL);
    if (!g) {
        fprintf(stderr, "%s", d.out.buf ? d.out.buf : "");
        ir_diag_free(&d);
        return;
    }
    pass_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    ctx.diag = &d;
    CHECK(pass_run_pipeline(g, NULL, &ctx));
    plan *p = pass_fuse(g, &d);
    CHECK(p != NULL);
    CHECK(p && pass_memplan(p, &d));
    for (int k = 0; p && k < p->nkernels; k++) {
        cg_cuda_kernel ck;
        bool gen = cg_cuda_generate(p, k, &ck, &d);
        CHECK(gen);
        if (!gen) continue;
        for (const cg_cuda_kernel *n = &ck; n; n = n->next) {
            if (!n->source) continue;
            void *bin = NULL;
            size_t len = 0;
            CHECK_EQ_INT(rt_cuda_nvrtc_compile(n->name, n->source, 90, false, NULL, &bin, &len, &d), FUSEC_OK);
            CHECK(is_elf(bin, len));
            free(bin);
        }
        cg_cuda_kernel_free(&ck);
    }
    if (d.nerr) fprintf(stderr, "%s", d.out.buf);
    CHECK_EQ_INT(d.nerr, 0);
    plan_free(p);
    ir_graph_free(g);
    ir_diag_free(&d);
}

TEST(compile_generated) {
    compile_graph(graph_ew);
    compile_graph(graph_softmax);
    compile_graph(graph_mix);
}

/* ---- the error path ------------------------------------------------------------------ */

static char *read_all(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    ir_str s = {0};
    int c;
    while ((c = fgetc(f)) != EOF) ir_str_putc(&s, (char)c);
    fclose(f);
    if (!s.buf) ir_str_puts(&s, "");
    return ir_str_take(&s);
}

/* The saved source's path, from "its source is saved in PATH\n". */
static char *saved_path(const char *msg) {
    const char *k = msg ? strstr(msg, "its source is saved in ") : NULL;
    if (!k) return NULL;
    k += strlen("its source is saved in ");
    const char *e = strchr(k, '\n');
    return e ? strndup(k, (size_t)(e - k)) : strdup(k);
}

/* Compile `src` expecting failure; check the message and the saved file.
 * `expect_in_file` must be in the saved source. */
static void expect_failure(const char *src, const char *log_piece, const char *expect_in_file) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    void *bin = (void *)1;
    size_t len = 1;
    CHECK_EQ_INT(rt_cuda_nvrtc_compile("k7_broken", src, 90, false, NULL, &bin, &len, &d), FUSEC_ERR_BACKEND);
    CHECK(bin == NULL && len == 0);
    const char *msg = d.out.buf;
    CHECK(msg && strstr(msg, "NVRTC error NVRTC_ERROR_COMPILATION in nvrtcCompileProgram("));
    CHECK(msg && strstr(msg, "NVRTC could not compile kernel k7_broken for sm_90"));
    CHECK(msg && strstr(msg, log_piece));
    char *path = saved_path(msg);
    CHECK(path != NULL);
    char *text = path ? read_all(path) : NULL;
    CHECK(text != NULL);
    CHECK(text && strstr(text, expect_in_file));
    CHECK(path && strstr(path, "k7_broken.cu"));
    struct stat sb;
    CHECK(path && stat(path, &sb) == 0 && (sb.st_mode & 077) == 0); /* private */
    if (path) unlink(path);
    free(path);
    free(text);
    ir_diag_free(&d);
}

TEST(compile_error_log_and_source) {
    char dir[] = "/tmp/fusec-test-rtcuda-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", dir, 1);

    /* a genuine error: the log names the undefined identifier */
    const char *broken = "extern \"C\" __global__ void k(float *y) { y[0] = undefined_thing; }\n";
    expect_failure(broken, "undefined_thing", "undefined_thing");
    CHECK(true);

    /* the injected failure: a valid source, made to fail */
    setenv("FUSEC_CUDA_INJECT_NVRTC_FAILURE", "1", 1);
    expect_failure(tiny_kernel, "error", "FUSEC_CUDA_INJECT_NVRTC_FAILURE");
    unsetenv("FUSEC_CUDA_INJECT_NVRTC_FAILURE");
    /* "0" turns it off */
    setenv("FUSEC_CUDA_INJECT_NVRTC_FAILURE", "0", 1);
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    void *bin = NULL;
    size_t len = 0;
    CHECK_EQ_INT(rt_cuda_nvrtc_compile("fc_scale", tiny_kernel, 90, false, NULL, &bin, &len, &d), FUSEC_OK);
    free(bin);
    ir_diag_free(&d);
    unsetenv("FUSEC_CUDA_INJECT_NVRTC_FAILURE");

    /* a TMPDIR that cannot be written: the message says so, no crash */
    setenv("TMPDIR", "/nonexistent/fusec-test", 1);
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_cuda_nvrtc_compile("k7_broken", broken, 90, false, NULL, &bin, &len, &d), FUSEC_ERR_BACKEND);
    CHECK(d.out.buf && strstr(d.out.buf, "its source is saved in (nowhere"));
    CHECK(d.out.buf && strstr(d.out.buf, "undefined_thing"));
    ir_diag_free(&d);

    if (saved) setenv("TMPDIR", saved, 1);
    else unsetenv("TMPDIR");
    free(saved);
    rmdir(dir);
}

/* An invalid option is an NVRTC error, reported, not a crash (the source
 * is saved as for any failed compile: into a folder removed afterwards). */
TEST(compile_bad_option) {
    char dir[] = "/tmp/fusec-test-rtcuda-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    const char *old = getenv("TMPDIR");
    char *saved = old ? strdup(old) : NULL;
    setenv("TMPDIR", dir, 1);
    static const char *const extra[] = {"--no-such-option", NULL};
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    void *bin = NULL;
    size_t len = 0;
    CHECK_EQ_INT(rt_cuda_nvrtc_compile("fc_scale", tiny_kernel, 90, false, extra, &bin, &len, &d),
                 FUSEC_ERR_BACKEND);
    CHECK(bin == NULL);
    CHECK(d.out.buf && strstr(d.out.buf, "NVRTC error"));
    char *path = saved_path(d.out.buf);
    CHECK(path && strncmp(path, dir, strlen(dir)) == 0);
    if (path) unlink(path);
    free(path);
    ir_diag_free(&d);
    if (saved) setenv("TMPDIR", saved, 1);
    else unsetenv("TMPDIR");
    free(saved);
    CHECK(rmdir(dir) == 0);
}

TEST_MAIN(driverless, pick_arch, arch_option, nvrtc_archs, compile_cubin_and_ptx, compile_generated,
          compile_error_log_and_source, compile_bad_option)

#else /* built without the toolkit: everything says so */

TEST(not_built) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_cuda_init(&d), FUSEC_ERR_UNSUPPORTED);
    CHECK(d.out.buf && strstr(d.out.buf, "not built into this fusec"));
    ir_diag_free(&d);
    int arch = 0;
    bool ptx = false;
    static const int a[] = {80, 90};
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(rt_cuda_pick_arch(90, a, 2, &arch, &ptx, &d) && arch == 90 && !ptx);
    ir_diag_free(&d);
}

TEST_MAIN(not_built)

#endif
