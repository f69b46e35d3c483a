/*
 * test_parse.c - the text IR parser (frontend/parse.c, frontend/lexer.c)
 * called directly: graphs it builds, the message of each error kind, inputs
 * that are not NUL-terminated, function selection, the error cap, and that
 * print -> parse -> print is stable.
 *
 * Every source handed to fe_parse here is first copied into a malloc'd
 * buffer of exactly its length (no NUL after it), so that a sanitizer build
 * catches any read past `len`.
 */
#define _GNU_SOURCE
#include <locale.h>
#include <math.h>

#include "frontend/parse.h"
#include "test.h"

typedef struct parsed {
    ir_graph *g;
    ir_diag d;
    char *buf; /* the exact-length copy of the source */
} parsed;

static parsed parse_n(const char *src, size_t len, const char *func) {
    parsed r;
    r.buf = malloc(len ? len : 1);
    if (len) memcpy(r.buf, src, len);
    ir_diag_init(&r.d, "t.ir", r.buf, len);
    r.g = fe_parse(r.buf, len, "t.ir", func, &r.d);
    return r;
}

static parsed parse(const char *src) { return parse_n(src, strlen(src), NULL); }

static void done(parsed *r) {
    ir_graph_free(r->g);
    ir_diag_free(&r->d);
    free(r->buf);
}

static const char *msgs(const parsed *r) { return r->d.out.buf ? r->d.out.buf : ""; }

/* Parsing src fails and its diagnostics contain `want`. */
static bool fails_with(const char *src, const char *want) {
    parsed r = parse(src);
    bool ok = r.g == NULL && r.d.nerr > 0 && strstr(msgs(&r), want) != NULL;
    if (!ok) fprintf(stderr, "  source:\n%s\n  diagnostics:\n%s  wanted: %s\n", src, msgs(&r), want);
    done(&r);
    return ok;
}

static char *print_graph(const ir_graph *g) {
    ir_str s = {0};
    ir_print_graph(&s, g);
    return ir_str_take(&s);
}

static const char *valid_src =
    "# a comment\n"
    "func @main(%x: f32[2, 3], %m: bool[2, 3]) -> (f32[2, 3], i64[]) {\n"
    "  %a = mul(%x, 0.125)\n"
    "  %b = where(%m, -inf, %a) : f32[2, 3]\n"
    "  %c = softmax(%b) {axis = -1}\n"
    "  %n.1 = sum(%m)\n"
    "  return %c, %n.1\n"
    "}\n";

TEST(valid_graph) {
    parsed r = parse(valid_src);
    CHECK(r.g != NULL);
    CHECK_EQ_INT(r.d.nerr, 0);
    if (r.g) {
        ir_graph *g = r.g;
        CHECK_STR(g->name, "main");
        CHECK_EQ_INT(g->nparams, 2);
        CHECK_STR(g->params[0]->name, "x");
        CHECK_EQ_INT(g->params[1]->type.dtype, FUSEC_DTYPE_BOOL);
        CHECK_EQ_INT(g->params[0]->type.rank, 2);
        CHECK_EQ_INT(g->params[0]->type.dim[1], 3);
        CHECK_EQ_INT(g->nresults, 2);
        CHECK_STR(g->results[0]->name, "c");
        CHECK_STR(g->results[1]->name, "n.1");
        CHECK_EQ_INT(g->results[1]->type.dtype, FUSEC_DTYPE_I64);
        CHECK_EQ_INT(g->results[1]->type.rank, 0);
        int nodes = 0;
        for (ir_node *n = g->first; n; n = n->next) nodes++;
        CHECK_EQ_INT(nodes, 4);
        /* the literals: 0.125 as a float, -inf as a float, both f32 */
        ir_node *mul = g->first, *where = mul ? mul->next : NULL;
        CHECK(mul && mul->op == IR_OP_MUL && mul->in[1]->kind == IR_VAL_LITERAL);
        if (mul) {
            CHECK(!mul->in[1]->lit_is_int);
            CHECK(mul->in[1]->lit_f == 0.125);
            CHECK_EQ_INT(mul->in[1]->type.dtype, FUSEC_DTYPE_F32);
            CHECK_EQ_INT(mul->loc.line, 3);
            CHECK_EQ_INT(mul->loc.col, 8);
        }
        if (where) CHECK(isinf(where->in[1]->lit_f) && where->in[1]->lit_f < 0);
        CHECK(ir_verify(g, &r.d));
    }
    done(&r);
}

TEST(literals_and_attributes) {
    parsed r = parse("func @f(%i: i32[4], %b: bool[4], %x: f32[4]) -> f32[4] {\n"
                     "  %a = add(%i, -2)\n"
                     "  %o = or(%b, true)\n"
                     "  %c = clamp(%x) {min = -1, max = 2.5}\n"
                     "  %g = gelu(%x) {approximate = \"tanh\"}\n"
                     "  %t = cast(%i) {to = bf16}\n"
                     "  %k = constant() {data = [1, 2.5, -inf, nan]} : f32[4]\n"
                     "  %s = sum(%x) {axes = [-1], keepdim = true}\n"
                     "  return %x\n"
                     "}\n");
    CHECK(r.g != NULL);
    if (!r.g) fprintf(stderr, "%s", msgs(&r));
    if (r.g) {
        ir_node *n = r.g->first;
        CHECK(n->in[1]->lit_is_int && n->in[1]->lit_i == -2);
        CHECK_EQ_INT(n->in[1]->type.dtype, FUSEC_DTYPE_I32);
        n = n->next;
        CHECK(n->in[1]->lit_is_bool && n->in[1]->lit_i == 1);
        n = n->next;
        CHECK(ir_attr_f(n, "min") == -1.0 && ir_attr_f(n, "max") == 2.5);
        n = n->next;
        CHECK_STR(ir_attr_s(n, "approximate"), "tanh");
        n = n->next;
        CHECK_EQ_INT(ir_attr_dt(n, "to"), FUSEC_DTYPE_BF16);
        CHECK_EQ_INT(n->out->type.dtype, FUSEC_DTYPE_BF16);
        n = n->next;
        int cnt;
        const double *data = ir_attr_floats(n, "data", &cnt);
        CHECK_EQ_INT(cnt, 4);
        CHECK(data[1] == 2.5 && isinf(data[2]) && isnan(data[3]));
        n = n->next;
        const int64_t *axes = ir_attr_ints(n, "axes", &cnt);
        CHECK(cnt == 1 && axes[0] == -1);
        CHECK(ir_attr_i(n, "keepdim") == 1);
    }
    done(&r);
}

TEST(string_escapes) {
    /* gelu only accepts "none" or "tanh", so check the lexer's unescaping
     * through a bad value, whose message quotes the unescaped string. */
    parsed r = parse("func @f(%x: f32[4]) -> f32[4] {\n"
                     "  %g = gelu(%x) {approximate = \"no\\\"ne\\\\\"}\n"
                     "  return %x\n}\n");
    CHECK(r.g == NULL);
    CHECK(strstr(msgs(&r), "no\"ne\\") != NULL);
    done(&r);
}

TEST(numbers) {
    parsed r = parse("func @f(%i: i64[], %x: f64[]) -> i64[] {\n"
                     "  %a = add(%i, -9223372036854775808)\n"
                     "  %b = add(%a, 9223372036854775807)\n"
                     "  %c = add(%x, 1e-5)\n"
                     "  %d = add(%x, .5)\n"
                     "  %e = add(%x, 5.)\n"
                     "  %f = add(%x, -0.0)\n"
                     "  %g = add(%x, 4.9e-324)\n"
                     "  return %b\n}\n");
    CHECK(r.g != NULL);
    if (!r.g) fprintf(stderr, "%s", msgs(&r));
    if (r.g) {
        ir_node *n = r.g->first;
        CHECK(n->in[1]->lit_i == INT64_MIN);
        CHECK(n->next->in[1]->lit_i == INT64_MAX);
        n = n->next->next;
        CHECK(n->in[1]->lit_f == 1e-5);
        CHECK(n->next->in[1]->lit_f == 0.5);
        CHECK(n->next->next->in[1]->lit_f == 5.0);
        n = n->next->next->next;
        CHECK(n->in[1]->lit_f == 0.0 && signbit(n->in[1]->lit_f));
        CHECK(n->next->in[1]->lit_f == 4.9e-324);
    }
    done(&r);
    CHECK(fails_with("func @f(%i: i64[]) -> i64[] {\n  %a = add(%i, 9223372036854775808)\n"
                     "  return %a\n}\n",
                     "t.ir:2:16: error: integer '9223372036854775808' does not fit in 64 bits"));
    CHECK(fails_with("func @f(%x: f64[]) -> f64[] {\n  %a = add(%x, 1e309)\n  return %a\n}\n",
                     "floating-point number '1e309' is out of range"));
    CHECK(fails_with("func @f(%x: f64[]) -> f64[] {\n  %a = add(%x, 1e+)\n  return %a\n}\n",
                     "bad number '1e+'"));
}

/* The parser reads numbers the same way whatever the C locale's radix. */
TEST(locale_independent_numbers) {
    const char *locs[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "C.UTF-8"};
    const char *set = NULL;
    for (size_t i = 0; i < sizeof locs / sizeof locs[0] && !set; i++)
        set = setlocale(LC_NUMERIC, locs[i]);
    parsed r = parse("func @f(%x: f64[]) -> f64[] {\n  %a = add(%x, 0.125)\n  return %a\n}\n");
    CHECK(r.g != NULL);
    if (r.g) CHECK(r.g->first->in[1]->lit_f == 0.125);
    done(&r);
    setlocale(LC_NUMERIC, "C");
}

TEST(error_messages) {
    const char *head = "func @f(%x: f32[2, 3], %i: i32[2, 3]) -> f32[2, 3] {\n";
    struct {
        const char *body, *want;
    } cases[] = {
        {"  %a = sofmax(%x)\n", "t.ir:2:8: error: unknown op 'sofmax'; did you mean 'softmax'?"},
        {"  %a = zzzzzzzz(%x)\n", "unknown op 'zzzzzzzz'\n"},
        {"  %a = sum(%x) {foo = 1}\n",
         "t.ir:2:17: error: unknown attribute 'foo' for op 'sum' (expected one of: axes, keepdim)"},
        {"  %a = neg(%x) {foo = 1}\n",
         "unknown attribute 'foo' for op 'neg' (it takes no attributes)"},
        {"  %a = sum(%x) {keepdim = true, keepdim = false}\n",
         "t.ir:2:33: error: duplicate attribute 'keepdim' (first given at line 2, column 17)"},
        {"  %a = neg(%y)\n", "t.ir:2:12: error: use of undefined value '%y'"},
        {"  %x = neg(%x)\n", "t.ir:2:3: error: redefinition of '%x' (previously defined at line 1, column 9)"},
        {"  %a = add(%x, %i)\n", "add: operands must share a dtype"},
        {"  %a = neg(%x) : f32[3, 2]\n",
         "neg: declared result type f32[3, 2] does not match the inferred type f32[2, 3]"},
        {"  %a = neg(%x) : f99[2]\n", "t.ir:2:18: error: unknown dtype 'f99'"},
        {"  %a = neg(%x) : f32[-2]\n", "t.ir:2:22: error: negative dim -2 in type"},
        {"  %a = neg(%x) : f32[N, 3]\n", "t.ir:2:22: error: symbolic size 'N' is not supported yet"},
        {"  %a = neg(%x) : f32[9223372036854775807, 2]\n", "type has more than 2^62 elements"},
        {"  %a = neg(%x)\n", "t.ir:3:1: error: missing 'return' at the end of function '@f'"},
        {"  return %i\n",
         "returned value '%i' has type i32[2, 3] but result 0 of '@f' is declared as f32[2, 3]"},
        {"  return %x, %x\n", "'return' gives 2 values but '@f' is declared to return 1"},
        {"  %a = neg(%x\n  return %a\n",
         "t.ir:2:14: error: expected ',' or ')' in the operand list, found 'return'"},
        {"  %a = gelu(%x) {approximate = \"tanh}\n  return %a\n",
         "t.ir:2:32: error: unterminated string (missing the closing '\"')"},
        {"  %a = gelu(%x) {approximate = \"\\t\"}\n", "unknown escape sequence '\\t' in string"},
        {"  %a = mul(%x, 3x)\n", "t.ir:2:16: error: bad number '3x'"},
        {"  %a = mul(%x, ~)\n", "t.ir:2:16: error: unexpected character '~'"},
        {"  %a = mul(%x, \x01)\n", "t.ir:2:16: error: unexpected byte 0x01"},
        {"  %a = reshape(%x) {shape = [[6]]}\n", "nested lists are not allowed in attribute values"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char src[512];
        bool has_ret = strstr(cases[i].body, "return") != NULL ||
                       strstr(cases[i].want, "missing 'return'") != NULL;
        snprintf(src, sizeof src, "%s%s%s}\n", head, cases[i].body, has_ret ? "" : "  return %x\n");
        CHECK(fails_with(src, cases[i].want));
    }
}

TEST(function_level_errors) {
    CHECK(fails_with("", "t.ir: error: no function in the file"));
    CHECK(fails_with("# only a comment\n\n", "t.ir: error: no function in the file"));
    CHECK(fails_with("func @f() -> f32[] {\n  %a = full() {value = 1} : f32[]\n  return %a\n}\n"
                     "func @f() -> f32[] {\n  %a = full() {value = 2} : f32[]\n  return %a\n}\n",
                     "t.ir:5:6: error: redefinition of function '@f' (previously defined at line 1)"));
    CHECK(fails_with("%a = neg(%x)\n", "t.ir:1:1: error: expected 'func' to start a function, found '%a'"));
    CHECK(fails_with("func @f(%x: f32[2]) -> f32[2] {\n  %y = neg(%x)\n",
                     "t.ir:2:15: error: expected '}' at the end of the function body, found end of file"));
    CHECK(fails_with("func f(%x: f32[2]) -> f32[2] {\n  return %x\n}\n",
                     "t.ir:1:6: error: expected a function name ('@name') after 'func', found 'f'"));
}

/* Several independent errors are reported in one run, with no follow-on
 * errors from the names of failed statements. */
TEST(recovery) {
    parsed r = parse("func @f(%x: f32[2]) -> f32[2] {\n"
                     "  %a = nope(%x)\n"
                     "  %b = add(%a, %a)\n"
                     "  %c = add(%x %x)\n"
                     "  %d = neg(%undefined)\n"
                     "  return %b\n"
                     "}\n"
                     "func @g(%x: f32[2]) -> f32[3] {\n"
                     "  return %x\n"
                     "}\n");
    CHECK(r.g == NULL);
    CHECK_EQ_INT(r.d.nerr, 4);
    CHECK(strstr(msgs(&r), "t.ir:2:8: error: unknown op 'nope'") != NULL);
    CHECK(strstr(msgs(&r), "t.ir:4:15: error: expected ','") != NULL);
    CHECK(strstr(msgs(&r), "t.ir:5:12: error: use of undefined value '%undefined'") != NULL);
    CHECK(strstr(msgs(&r), "t.ir:9:10: error: returned value '%x'") != NULL);
    done(&r);
}

TEST(error_cap) {
    ir_str s = {0};
    ir_str_puts(&s, "func @f(%x: f32[2]) -> f32[2] {\n");
    for (int i = 0; i < 100; i++) ir_str_printf(&s, "  %%v%d = bogus(%%x)\n", i);
    ir_str_puts(&s, "  return %x\n}\n");
    parsed r = parse(s.buf);
    CHECK(r.g == NULL);
    CHECK_EQ_INT(r.d.nerr, 21); /* 20 errors and the "stopping" line */
    CHECK(strstr(msgs(&r), "too many errors (20); stopping") != NULL);
    done(&r);
    ir_str_free(&s);
}

TEST(function_selection) {
    const char *src = "func @a(%x: f32[1]) -> f32[1] {\n  return %x\n}\n"
                      "func @main(%x: f32[2]) -> f32[2] {\n  return %x\n}\n"
                      "func @c(%x: f32[3]) -> f32[3] {\n  return %x\n}\n";
    parsed r = parse_n(src, strlen(src), NULL);
    CHECK(r.g && strcmp(r.g->name, "main") == 0);
    done(&r);
    r = parse_n(src, strlen(src), "c");
    CHECK(r.g && strcmp(r.g->name, "c") == 0 && r.g->params[0]->type.dim[0] == 3);
    done(&r);
    r = parse_n(src, strlen(src), "a");
    CHECK(r.g && strcmp(r.g->name, "a") == 0);
    done(&r);
    r = parse_n(src, strlen(src), "zz");
    CHECK(r.g == NULL);
    CHECK(strstr(msgs(&r), "t.ir: error: no function named '@zz' (the file defines @a, @main, @c)") != NULL);
    done(&r);
    /* without @main: the first */
    const char *src2 = "func @first(%x: f32[1]) -> f32[1] {\n  return %x\n}\n"
                       "func @second(%x: f32[2]) -> f32[2] {\n  return %x\n}\n";
    r = parse_n(src2, strlen(src2), NULL);
    CHECK(r.g && strcmp(r.g->name, "first") == 0);
    done(&r);
    /* an error in a function that is not selected still fails the parse */
    const char *src3 = "func @main(%x: f32[1]) -> f32[1] {\n  return %x\n}\n"
                       "func @bad(%x: f32[2]) -> f32[2] {\n  return %y\n}\n";
    r = parse_n(src3, strlen(src3), NULL);
    CHECK(r.g == NULL);
    CHECK(strstr(msgs(&r), "t.ir:5:10: error: use of undefined value '%y'") != NULL);
    done(&r);
}

/* Every prefix of a valid module (including cuts inside numbers, names,
 * strings and comments) parses without reading past its end: the full text
 * succeeds, every strict prefix fails cleanly. */
TEST(not_nul_terminated_prefixes) {
    const char *src = "func @main(%x: f32[2, 3], %y.z: f32[3]) -> f32[2, 3] { # c\n"
                      "  %a = add(%x, %y.z)\n"
                      "  %b = mul(%a, -1.5e-3)\n"
                      "  %g = gelu(%b) {approximate = \"tanh\"}\n"
                      "  %m = where(true, -inf, %g)\n"
                      "  %s = sum(%m) {axes = [0, -1], keepdim = true}\n"
                      "  %e = expand(%s) {shape = [2, 3]}\n"
                      "  return %e\n"
                      "}";
    size_t len = strlen(src);
    int ok = 0;
    for (size_t n = 0; n <= len; n++) {
        parsed r = parse_n(src, n, NULL);
        if (r.g) ok++;
        if (n < len && (r.g || r.d.nerr == 0)) {
            fprintf(stderr, "prefix of length %zu: graph %p, %d errors\n", n, (void *)r.g, r.d.nerr);
            CHECK(0);
        }
        done(&r);
    }
    CHECK_EQ_INT(ok, 1);
}

/* Inputs that would trouble a careless parser: deep bracket nesting, long
 * runs of one character, NUL bytes, huge numbers. */
TEST(hostile_inputs) {
    size_t n = 200000;
    char *big = malloc(n);
    const char fill[] = {'(', '[', '{', '-', '%', '"', '\0', '9', '#', 'a'};
    for (size_t k = 0; k < sizeof fill; k++) {
        memset(big, fill[k], n);
        parsed r = parse_n(big, n, NULL);
        CHECK(r.g == NULL && r.d.nerr > 0);
        done(&r);
    }
    free(big);
    const char *prefix = "func @f(%x: f32[2]) -> f32[2] {\n  %a = reshape(%x) {shape = ";
    ir_str s = {0};
    ir_str_puts(&s, prefix);
    for (int i = 0; i < 10000; i++) ir_str_putc(&s, '[');
    parsed r = parse(s.buf);
    CHECK(r.g == NULL && strstr(msgs(&r), "nested lists are not allowed") != NULL);
    done(&r);
    ir_str_free(&s);
    CHECK(fails_with("func @f(%x: f32[2]) -> f32[2] {\n  %a = mul(%x, "
                     "1111111111111111111111111111111111111111111111111111111111111.5e99999999999)\n"
                     "  return %a\n}\n",
                     "is out of range"));
}

/* fe_parse fills in the file and source of a diag set up without them. */
TEST(bare_diag) {
    const char *src = "func @f(%x: f32[2]) -> f32[2] {\n  %a = nope(%x)\n  return %a\n}\n";
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    ir_graph *g = fe_parse(src, strlen(src), "bare.ir", NULL, &d);
    CHECK(g == NULL);
    CHECK(d.out.buf && strstr(d.out.buf, "bare.ir:2:8: error: unknown op 'nope'\n  %a = nope(%x)\n       ^\n"));
    ir_diag_free(&d);
}

/* print -> parse -> print gives the same text. */
TEST(print_parse_print) {
    parsed r = parse(valid_src);
    CHECK(r.g != NULL);
    if (r.g) {
        char *p1 = print_graph(r.g);
        parsed r2 = parse(p1);
        CHECK(r2.g != NULL);
        if (r2.g) {
            char *p2 = print_graph(r2.g);
            CHECK_STR(p1, p2);
            free(p2);
        }
        done(&r2);
        free(p1);
    }
    done(&r);
}

TEST_MAIN(valid_graph, literals_and_attributes, string_escapes, numbers, locale_independent_numbers,
          error_messages, function_level_errors, recovery, error_cap, function_selection,
          not_nul_terminated_prefixes, hostile_inputs, bare_diag, print_parse_print)
