/*
 * test_npy.c - the .npy reader and writer (runtime/npy.c).
 *
 * Round trips every dtype at ranks 0 to 3 (size-0 dims included) through a
 * real file; checks the header we write byte for byte where NumPy fixes it
 * (descr, shape tuple, 64-byte alignment); feeds the reader hand-built files
 * for each malformed case and checks that each gets its own message naming
 * the file; parses every truncation and many corruptions of a valid image to
 * show the reader never reads outside its buffer (run under ASan); and makes
 * the writer fail to show it reports and leaves no temporary file behind.
 * Compatibility with NumPy itself is tested in tests/lit/cli/npy-numpy.test.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdbool.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/npy.h"
#include "test.h"

static char tmpdir[64];

static void make_tmpdir(void) {
    if (tmpdir[0]) return;
    strcpy(tmpdir, "/tmp/fusec-test-npy-XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        exit(1);
    }
}

/* Number of entries in a folder other than . and .. */
static int count_entries(const char *dir) {
    DIR *dd = opendir(dir);
    if (!dd) return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dd)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
    closedir(dd);
    return n;
}

static void remove_tree(const char *dir) {
    DIR *dd = opendir(dir);
    if (!dd) return;
    struct dirent *e;
    char p[512];
    while ((e = readdir(dd))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        struct stat sb;
        if (lstat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) remove_tree(p);
        else unlink(p);
    }
    closedir(dd);
    rmdir(dir);
}

static int64_t numel(const fusec_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->shape[i];
    return n;
}

/* ---- round trips ---------------------------------------------------- */

static const int64_t shapes[][4] = {
    /* rank, dims... */
    {0}, {1, 5}, {1, 0}, {2, 2, 3}, {2, 0, 4}, {2, 1, 1}, {3, 2, 3, 4}, {3, 3, 0, 2},
};

TEST(round_trip_every_dtype_and_rank) {
    make_tmpdir();
    for (int dt = 0; dt < FUSEC_DTYPE_COUNT; dt++) {
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            fusec_tensor t = {.dtype = (fusec_dtype)dt, .rank = (int)shapes[s][0]};
            for (int i = 0; i < t.rank; i++) t.shape[i] = shapes[s][i + 1];
            size_t nb = (size_t)numel(&t) * ir_dtype_size(t.dtype);
            unsigned char *data = malloc(nb + 1);
            /* A byte pattern; bools must be 0/1 to survive unchanged. */
            for (size_t i = 0; i < nb; i++)
                data[i] = dt == FUSEC_DTYPE_BOOL ? (unsigned char)(i % 3 == 0)
                                                 : (unsigned char)(i * 37 + 11);
            t.data = data;
            bool bf16 = dt == FUSEC_DTYPE_BF16;
            char path[128];
            snprintf(path, sizeof path, "%s/t%d_%zu%s", tmpdir, dt, s, bf16 ? ".bf16.npy" : ".npy");
            ir_diag d;
            ir_diag_init(&d, NULL, NULL, 0);
            CHECK_EQ_INT(rt_npy_write(path, &t, &d), FUSEC_OK);
            fusec_tensor r;
            CHECK_EQ_INT(rt_npy_read(path, bf16, &r, &d), FUSEC_OK);
            CHECK_EQ_INT(d.nerr, 0);
            if (d.nerr) fprintf(stderr, "%s", d.out.buf);
            CHECK_EQ_INT(r.dtype, dt);
            CHECK_EQ_INT(r.rank, t.rank);
            for (int i = 0; i < t.rank; i++) CHECK_EQ_INT(r.shape[i], t.shape[i]);
            CHECK(r.data != NULL);
            if (r.data) CHECK(memcmp(r.data, data, nb) == 0);
            /* The data starts at a multiple of 64. */
            struct stat sb;
            CHECK(stat(path, &sb) == 0);
            CHECK_EQ_INT((sb.st_size - (off_t)nb) % 64, 0);
            free(r.data);
            free(data);
            ir_diag_free(&d);
        }
    }
    /* Nothing left behind but the files we wrote. */
    CHECK_EQ_INT(count_entries(tmpdir),
                 FUSEC_DTYPE_COUNT * (int)(sizeof shapes / sizeof shapes[0]));
}

/* Read a whole file into a malloc'd buffer. */
static unsigned char *slurp(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    unsigned char *b = malloc(1 << 16);
    *len = fread(b, 1, 1 << 16, f);
    fclose(f);
    return b;
}

static void check_header(fusec_dtype dt, int rank, const int64_t *shape, const char *want) {
    make_tmpdir();
    fusec_tensor t = {.dtype = dt, .rank = rank};
    for (int i = 0; i < rank; i++) t.shape[i] = shape[i];
    void *data = calloc((size_t)numel(&t) + 1, 8);
    t.data = data;
    char path[128];
    snprintf(path, sizeof path, "%s/hdr.npy", tmpdir);
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_npy_write(path, &t, &d), FUSEC_OK);
    size_t len = 0;
    unsigned char *b = slurp(path, &len);
    CHECK(b != NULL && len >= 64);
    if (b && len >= 64) {
        CHECK(memcmp(b, "\x93NUMPY\x01\x00", 8) == 0);
        size_t hlen = b[8] | (size_t)b[9] << 8;
        CHECK_EQ_INT((10 + hlen) % 64, 0);
        CHECK(b[10 + hlen - 1] == '\n');
        CHECK(strncmp((char *)b + 10, want, strlen(want)) == 0);
        if (strncmp((char *)b + 10, want, strlen(want)) != 0)
            fprintf(stderr, "  header: %.*s\n  wanted: %s\n", (int)hlen, b + 10, want);
        /* After a whole dict: spaces, then the newline. */
        if (want[strlen(want) - 1] == '}')
            for (size_t i = 10 + strlen(want); i < 10 + hlen - 1; i++) CHECK(b[i] == ' ');
    }
    unlink(path);
    free(b);
    free(data);
    ir_diag_free(&d);
}

TEST(header_as_numpy_writes_it) {
    int64_t s23[] = {2, 3}, s3[] = {3}, s0[] = {0}, s1234[] = {1, 2, 3, 4};
    check_header(FUSEC_DTYPE_F32, 2, s23, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }");
    check_header(FUSEC_DTYPE_F64, 1, s3, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }");
    check_header(FUSEC_DTYPE_F16, 0, NULL, "{'descr': '<f2', 'fortran_order': False, 'shape': (), }");
    check_header(FUSEC_DTYPE_BF16, 1, s0, "{'descr': '<u2', 'fortran_order': False, 'shape': (0,), }");
    check_header(FUSEC_DTYPE_I64, 4, s1234, "{'descr': '<i8', 'fortran_order': False, 'shape': (1, 2, 3, 4), }");
    check_header(FUSEC_DTYPE_I32, 1, s3, "{'descr': '<i4', ");
    check_header(FUSEC_DTYPE_I16, 1, s3, "{'descr': '<i2', ");
    check_header(FUSEC_DTYPE_I8, 1, s3, "{'descr': '|i1', ");
    check_header(FUSEC_DTYPE_U8, 1, s3, "{'descr': '|u1', ");
    check_header(FUSEC_DTYPE_BOOL, 1, s3, "{'descr': '|b1', ");
}

/* ---- reading hand-made files ---------------------------------------- */

/* Build a file image: preamble for version major.0, the header text (padded
 * as given), then `ndata` bytes of data (0, 1, 2, ...). */
static unsigned char *image(int major, const char *header, size_t ndata, size_t *len) {
    size_t hl = strlen(header), pre = major == 1 ? 10 : 12;
    *len = pre + hl + ndata;
    unsigned char *b = malloc(*len);
    memcpy(b, "\x93NUMPY", 6);
    b[6] = (unsigned char)major;
    b[7] = 0;
    b[8] = (unsigned char)(hl & 0xff);
    b[9] = (unsigned char)(hl >> 8);
    if (major != 1) b[10] = b[11] = 0;
    memcpy(b + pre, header, hl);
    for (size_t i = 0; i < ndata; i++) b[pre + hl + i] = (unsigned char)i;
    return b;
}

/* Parse a buffer; returns the status and leaves the message in msg. */
static fusec_status parse_buf(const unsigned char *b, size_t len, bool bf16, fusec_tensor *t,
                              char *msg, size_t cap) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    /* The message must use the .npy name, and the diag's own file name must
     * survive the call. */
    d.file = "model.ir";
    fusec_status st = rt_npy_parse(b, len, "in/x.npy", bf16, t, &d);
    CHECK(strcmp(d.file, "model.ir") == 0);
    snprintf(msg, cap, "%s", d.out.buf ? d.out.buf : "");
    CHECK_EQ_INT(d.nerr, st == FUSEC_OK ? 0 : 1);
    ir_diag_free(&d);
    return st;
}

/* A header that parses to the given shape and dtype. */
static void expect_ok(int major, const char *header, size_t ndata, bool bf16, fusec_dtype dt,
                      int rank, const int64_t *shape) {
    size_t len;
    unsigned char *b = image(major, header, ndata, &len);
    fusec_tensor t;
    char msg[512];
    fusec_status st = parse_buf(b, len, bf16, &t, msg, sizeof msg);
    CHECK_EQ_INT(st, FUSEC_OK);
    if (st) fprintf(stderr, "  header %s: %s", header, msg);
    else {
        CHECK_EQ_INT(t.dtype, dt);
        CHECK_EQ_INT(t.rank, rank);
        for (int i = 0; i < rank; i++) CHECK_EQ_INT(t.shape[i], shape[i]);
        if (dt != FUSEC_DTYPE_BOOL && ndata > 0) CHECK(memcmp(t.data, b + len - ndata, ndata) == 0);
        free(t.data);
    }
    free(b);
}

/* A file that must fail with a message containing `want`. */
static void expect_err_image(const unsigned char *b, size_t len, bool bf16, const char *want) {
    fusec_tensor t;
    char msg[512];
    fusec_status st = parse_buf(b, len, bf16, &t, msg, sizeof msg);
    CHECK(st != FUSEC_OK);
    CHECK(t.data == NULL);
    CHECK(strncmp(msg, "in/x.npy: error: ", 17) == 0);
    CHECK(strstr(msg, want) != NULL);
    if (!strstr(msg, want) || strncmp(msg, "in/x.npy: error: ", 17) != 0)
        fprintf(stderr, "  wanted \"%s\"\n  got    \"%s\"\n", want, msg);
}

static void expect_err(int major, const char *header, size_t ndata, bool bf16, const char *want) {
    size_t len;
    unsigned char *b = image(major, header, ndata, &len);
    expect_err_image(b, len, bf16, want);
    free(b);
}

#define H(descr, order, shape) \
    "{'descr': '" descr "', 'fortran_order': " order ", 'shape': " shape ", }      \n"

TEST(reads_variants) {
    int64_t s23[] = {2, 3}, s3[] = {3}, s5[] = {5};
    expect_ok(1, H("<f4", "False", "(2, 3)"), 24, false, FUSEC_DTYPE_F32, 2, s23);
    /* keys in any order, double quotes, no trailing comma, odd spacing */
    expect_ok(1, "{\"shape\":(2,3),\"descr\":\"<f8\",  'fortran_order' :False}", 48, false,
              FUSEC_DTYPE_F64, 2, s23);
    expect_ok(1, "{'shape': (3,), 'fortran_order': False, 'descr': '<i8'}\n", 24, false,
              FUSEC_DTYPE_I64, 1, s3);
    /* versions 2.0 and 3.0 */
    expect_ok(2, H("<i4", "False", "(3,)"), 12, false, FUSEC_DTYPE_I32, 1, s3);
    expect_ok(3, H("<i2", "False", "(3,)"), 6, false, FUSEC_DTYPE_I16, 1, s3);
    /* byte-order variants NumPy (or other writers) use */
    expect_ok(1, H("|u1", "False", "(5,)"), 5, false, FUSEC_DTYPE_U8, 1, s5);
    expect_ok(1, H("<u1", "False", "(5,)"), 5, false, FUSEC_DTYPE_U8, 1, s5);
    expect_ok(1, H("|i1", "False", "(5,)"), 5, false, FUSEC_DTYPE_I8, 1, s5);
    expect_ok(1, H("|b1", "False", "(5,)"), 5, false, FUSEC_DTYPE_BOOL, 1, s5);
    expect_ok(1, H("=f4", "False", "(3,)"), 12, false, FUSEC_DTYPE_F32, 1, s3);
    expect_ok(1, H("<f2", "False", "(3,)"), 6, false, FUSEC_DTYPE_F16, 1, s3);
    expect_ok(1, H("<u2", "False", "(3,)"), 6, true, FUSEC_DTYPE_BF16, 1, s3);
    /* scalars and empty arrays */
    expect_ok(1, H("<f8", "False", "()"), 8, false, FUSEC_DTYPE_F64, 0, NULL);
    int64_t s020[] = {0, 2, 0};
    expect_ok(1, H("<f8", "False", "(0, 2, 0)"), 0, false, FUSEC_DTYPE_F64, 3, s020);
    /* Python 2 long suffix */
    expect_ok(1, H("<f4", "False", "(2L, 3L)"), 24, false, FUSEC_DTYPE_F32, 2, s23);
    /* Fortran order is accepted where it is the same layout as C order */
    int64_t s131[] = {1, 3, 1};
    expect_ok(1, H("<f4", "True", "(1, 3, 1)"), 12, false, FUSEC_DTYPE_F32, 3, s131);
    expect_ok(1, H("<f4", "True", "(3,)"), 12, false, FUSEC_DTYPE_F32, 1, s3);
}

TEST(bools_are_normalized) {
    size_t len;
    unsigned char *b = image(1, H("|b1", "False", "(5,)"), 5, &len);
    b[len - 1] = 200; /* data bytes are 0 1 2 3 200 */
    fusec_tensor t;
    char msg[256];
    CHECK_EQ_INT(parse_buf(b, len, false, &t, msg, sizeof msg), FUSEC_OK);
    const unsigned char want[5] = {0, 1, 1, 1, 1};
    CHECK(memcmp(t.data, want, 5) == 0);
    free(t.data);
    free(b);
}

TEST(malformed_files) {
    /* magic, version, header length */
    expect_err_image((const unsigned char *)"PK\x03\x04 this is a zip file", 24, false,
                     "not a NumPy .npy file (bad magic");
    expect_err_image((const unsigned char *)"", 0, false, "bad magic");
    expect_err_image((const unsigned char *)"\x93NUM", 4, false, "truncated header");
    expect_err_image((const unsigned char *)"\x93NUMPY\x01\x00\x50", 9, false, "truncated header");
    size_t len;
    unsigned char *b = image(1, H("<f4", "False", "(2, 3)"), 24, &len);
    b[6] = 4;
    expect_err_image(b, len, false, "unsupported .npy format version 4.0");
    b[6] = 1;
    b[9] = 0x10; /* header length far past the end */
    expect_err_image(b, len, false, "truncated header: it should be");
    free(b);

    /* dtypes */
    expect_err(1, H(">f4", "False", "(2, 3)"), 24, false, "big-endian data ('>f4') is not supported");
    expect_err(1, H("|O", "False", "(2,)"), 16, false, "object arrays ('|O') are not supported");
    expect_err(1, "{'descr': [('a', '<f4'), ('b', '<i4')], 'fortran_order': False, 'shape': (2,), }", 16,
               false, "structured dtypes are not supported");
    expect_err(1, H("<c8", "False", "(2,)"), 16, false, "unsupported dtype complex64 ('<c8')");
    expect_err(1, H("<u4", "False", "(2,)"), 8, false, "unsupported dtype uint32 ('<u4')");
    expect_err(1, H("<U5", "False", "(2,)"), 40, false, "unsupported dtype '<U5' (unicode string)");
    expect_err(1, H("<q8", "False", "(2,)"), 16, false, "unknown dtype '<q8'");
    expect_err(1, H("<f", "False", "(2,)"), 8, false, "unsupported dtype '<f'");
    expect_err(1, H("|f4", "False", "(2,)"), 8, false, "dtype '|f4' has no byte order");
    expect_err(1, H("<u2", "False", "(2,)"), 4, false, "unsupported dtype uint16 ('<u2')");
    expect_err(1, H("<f4", "False", "(2,)"), 8, true,
               "a .bf16.npy file must hold bf16 bit patterns as '<u2', found '<f4'");
    expect_err(1, H(">u2", "False", "(2,)"), 4, true, "big-endian");

    /* layout and shape */
    expect_err(1, H("<f4", "True", "(2, 3)"), 24, false, "Fortran-order arrays are not supported");
    expect_err(1, H("<f4", "False", "(2, -3)"), 24, false, "negative dimension -3 in shape");
    expect_err(1, H("<f4", "False", "(99999999999999999999,)"), 0, false,
               "dimension 0 of the shape does not fit in 64 bits");
    expect_err(1, H("<f4", "False", "(4294967296, 4294967296)"), 0, false,
               "shape (4294967296, 4294967296) is too large");
    expect_err(1, H("<f8", "False", "(1152921504606846976,)"), 0, false, "is too large");
    expect_err(1, H("<f4", "False", "(1, 1, 1, 1, 1, 1, 1, 1, 1)"), 4, false,
               "rank greater than 8 is not supported");
    expect_err(1, H("<f4", "False", "[2, 3]"), 24, false, "'shape' must be a tuple");

    /* data length */
    expect_err(1, H("<f4", "False", "(2, 3)"), 23, false,
               "truncated data: shape (2, 3) of f32 needs 24 bytes, the file has 23");
    expect_err(1, H("<f4", "False", "(2, 3)"), 0, false, "truncated data");
    expect_err(1, H("<f4", "False", "(2, 3)"), 28, false,
               "4 extra bytes after the data (shape (2, 3) of f32 needs 24 bytes)");
    expect_err(1, H("<f4", "False", "(0,)"), 1, false, "1 extra bytes");

    /* dict syntax */
    expect_err(1, "{'descr': '<f4', 'shape': (2,), }", 8, false, "header has no 'fortran_order' key");
    expect_err(1, "{'fortran_order': False, 'shape': (2,), }", 8, false, "header has no 'descr' key");
    expect_err(1, "{'descr': '<f4', 'fortran_order': False}", 8, false, "header has no 'shape' key");
    expect_err(1, "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': (2,)}", 8, false,
               "key 'descr' appears twice in header");
    expect_err(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'extra': 1}", 8, false,
               "unexpected key 'extra' in header");
    expect_err(1, "{'descr' '<f4', 'fortran_order': False, 'shape': (2,)}", 8, false,
               "malformed header: expected ':' after the key at header offset 9, found '''");
    expect_err(1, "{'descr': '<f4, 'fortran_order': False, 'shape': (2,)}", 8, false,
               "unsupported dtype '<f4, '");
    expect_err(1, "{'descr': '<f4' 'fortran_order': False, 'shape': (2,)}", 8, false,
               "malformed header: expected ',' or '}' at header offset 16, found '''");
    expect_err(1, "{'descr': '<f4', 'fortran_order': false, 'shape': (2,)}", 8, false,
               "expected True or False");
    expect_err(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)", 8, false,
               "expected ',' or '}', found the end of the header");
    expect_err(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)} x", 8, false,
               "expected the end of the header after '}'");
    expect_err(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2 3)}", 8, false,
               "expected ',' or ')' in the shape");
    expect_err(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,,)}", 8, false,
               "expected a dimension");
    expect_err(1, "['descr', '<f4']", 8, false, "malformed header: expected '{'");
    expect_err(1, "{'descr': '<f4\x01', 'fortran_order': False, 'shape': (2,)}", 8, false,
               "unsupported dtype '<f4?'");
    expect_err(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,)}\x01", 8, false,
               "found byte 0x01");
    expect_err(1, "", 8, false, "expected '{', found the end of the header");
}

/* Every prefix of a valid image fails cleanly; every single-byte corruption
 * of its header either fails cleanly or parses.  Each probe gets a buffer of
 * exactly its length so ASan sees any over-read. */
TEST(no_overread_on_truncation_or_corruption) {
    size_t len;
    unsigned char *b = image(2, H("<f4", "False", "(2, 3)"), 24, &len);
    for (size_t n = 0; n < len; n++) {
        unsigned char *p = malloc(n ? n : 1);
        memcpy(p, b, n);
        fusec_tensor t;
        char msg[512];
        CHECK(parse_buf(p, n, false, &t, msg, sizeof msg) != FUSEC_OK);
        free(p);
    }
    static const unsigned char subst[] = {0, '\'', '"', '(', ')', ',', '}', '{', ':', '-', '9', 'L', 0xff};
    for (size_t i = 0; i < len - 24; i++) {
        for (size_t k = 0; k < sizeof subst; k++) {
            unsigned char *p = malloc(len);
            memcpy(p, b, len);
            p[i] = subst[k];
            fusec_tensor t;
            char msg[512];
            if (parse_buf(p, len, false, &t, msg, sizeof msg) == FUSEC_OK) free(t.data);
            free(p);
        }
    }
    free(b);
}

/* ---- files ---------------------------------------------------------- */

TEST(read_errors_name_the_file) {
    make_tmpdir();
    char path[128];
    snprintf(path, sizeof path, "%s/missing.npy", tmpdir);
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    fusec_tensor t;
    CHECK_EQ_INT(rt_npy_read(path, false, &t, &d), FUSEC_ERR_IO);
    char want[256];
    snprintf(want, sizeof want, "%s: error: cannot open: No such file or directory\n", path);
    CHECK_STR(d.out.buf, want);
    ir_diag_free(&d);

    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(rt_npy_read(tmpdir, false, &t, &d) != FUSEC_OK);
    CHECK(d.out.buf && strstr(d.out.buf, "is a directory"));
    ir_diag_free(&d);

    /* A real file with trailing garbage. */
    snprintf(path, sizeof path, "%s/long.npy", tmpdir);
    size_t len;
    unsigned char *b = image(1, H("<i8", "False", "(1,)"), 9, &len);
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
    free(b);
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK(rt_npy_read(path, false, &t, &d) != FUSEC_OK);
    snprintf(want, sizeof want, "%s: error: 1 extra bytes after the data", path);
    CHECK(d.out.buf && strncmp(d.out.buf, want, strlen(want)) == 0);
    ir_diag_free(&d);
    unlink(path);
}

TEST(write_failures_leave_nothing) {
    make_tmpdir();
    float v[2] = {1, 2};
    fusec_tensor t = {.dtype = FUSEC_DTYPE_F32, .rank = 1, .shape = {2}, .data = v};
    char sub[128], path[160];
    snprintf(sub, sizeof sub, "%s/w", tmpdir);
    mkdir(sub, 0755);

    /* The destination is a folder: the rename fails, the temp file goes. */
    snprintf(path, sizeof path, "%s/dir.npy", sub);
    mkdir(path, 0755);
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_npy_write(path, &t, &d), FUSEC_ERR_IO);
    CHECK(d.out.buf && strstr(d.out.buf, "cannot rename the temporary file into place"));
    CHECK(d.out.buf && strncmp(d.out.buf, path, strlen(path)) == 0);
    CHECK_EQ_INT(count_entries(sub), 1);
    ir_diag_free(&d);

    /* No such folder. */
    snprintf(path, sizeof path, "%s/nope/x.npy", sub);
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_npy_write(path, &t, &d), FUSEC_ERR_IO);
    CHECK(d.out.buf && strstr(d.out.buf, "cannot create a temporary file: No such file"));
    ir_diag_free(&d);

    /* Bad tensors are refused before anything is created. */
    fusec_tensor bad = t;
    bad.shape[0] = -1;
    snprintf(path, sizeof path, "%s/bad.npy", sub);
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_npy_write(path, &bad, &d), FUSEC_ERR_INVALID);
    bad = t;
    bad.data = NULL;
    CHECK_EQ_INT(rt_npy_write(path, &bad, &d), FUSEC_ERR_INVALID);
    CHECK_EQ_INT(d.nerr, 2);
    ir_diag_free(&d);
    CHECK_EQ_INT(count_entries(sub), 1);

    /* Overwriting an existing file replaces it whole; a relative path in
     * the current folder works too. */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(sub) == 0);
    ir_diag_init(&d, NULL, NULL, 0);
    CHECK_EQ_INT(rt_npy_write("rel.npy", &t, &d), FUSEC_OK);
    v[1] = 5;
    CHECK_EQ_INT(rt_npy_write("rel.npy", &t, &d), FUSEC_OK);
    fusec_tensor r;
    CHECK_EQ_INT(rt_npy_read("rel.npy", false, &r, &d), FUSEC_OK);
    CHECK(r.data && ((float *)r.data)[1] == 5);
    free(r.data);
    ir_diag_free(&d);
    CHECK(chdir(cwd) == 0);
    CHECK_EQ_INT(count_entries(sub), 2);
}

TEST(cleanup) {
    if (tmpdir[0]) remove_tree(tmpdir);
}

TEST_MAIN(round_trip_every_dtype_and_rank, header_as_numpy_writes_it, reads_variants,
          bools_are_normalized, malformed_files, no_overread_on_truncation_or_corruption,
          read_errors_name_the_file, write_failures_leave_nothing, cleanup)
