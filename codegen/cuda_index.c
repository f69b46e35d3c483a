/*
 * cuda_index.c - index forms and predicates for the CUDA generator.
 *
 * A coordinate is c + sum coef * ((var / div) % mod) over variables whose
 * ranges are known.  Division and remainder by a constant s follow three
 * rules, tried in order, then give up by computing the form into a new
 * variable (a `const idx_t t_N = ...;` line):
 *   1. split off the terms whose coefficients s divides; if the rest
 *      (with c mod s) provably stays in [0, s), it vanishes from a
 *      quotient (and is all that remains of a remainder);
 *   2. with g = gcd(s, the other coefficients) > 1, write the form as
 *      g * A' + r with 0 <= r < g: then A / s = A' / (s / g) and
 *      A % s = g * (A' % (s / g)) + r.  This is what keeps a vector lane
 *      (a constant 0..V-1 next to a term V * u) out of the division, so
 *      a reshape that splits or merges the innermost dim still leaves
 *      consecutive lanes at consecutive offsets;
 *   3. a lone term with coefficient 1 absorbs the division or remainder:
 *      (x / d % m) / s = x / (d s) % (m / s) when s divides m.
 * Adding forms merges x / d % m * k + x / (d m) * (k m) back into x / d * k,
 * so coordinates split from a linear index linearize back to it.  All this
 * is exact for non-negative values; a lane whose coordinates leave the
 * tensor (possible only where a validity predicate is false) may compute a
 * wrong index, which is never used for an access.
 *
 * Predicates are C bool variables (`const bool p_N = parent && (cond);`),
 * remembered by (parent, condition) like everything else in the cache.
 */
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cuda_impl.h"

/* ---- index forms ------------------------------------------------------------ */

int cg_var_new(cg *g, const char *name, int64_t lo, int64_t hi) {
    if (g->nvars == g->cvars) {
        int nc = g->cvars ? g->cvars * 2 : 32;
        cg_var *nv = realloc(g->vars, sizeof *nv * (size_t)nc);
        if (!nv) {
            cg_fail(g, NULL, "out of memory");
            return 0;
        }
        g->vars = nv;
        g->cvars = nc;
    }
    g->vars[g->nvars] = (cg_var){.name = name, .lo = lo, .hi = hi};
    return g->nvars++;
}

cg_ix cg_ixc(int64_t c) {
    cg_ix r;
    memset(&r, 0, sizeof r);
    r.c = c;
    return r;
}

cg_ix cg_ixv(int var, int64_t coef) {
    cg_ix r = cg_ixc(0);
    if (coef != 0) r.t[r.n++] = (cg_term){.var = var, .coef = coef, .div = 1, .mod = 0};
    return r;
}

static int64_t sat_mul(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r)) return (a < 0) != (b < 0) ? INT64_MIN / 4 : INT64_MAX / 4;
    return r;
}

static int64_t sat_add(int64_t a, int64_t b) {
    int64_t r;
    if (__builtin_add_overflow(a, b, &r)) return a < 0 ? INT64_MIN / 4 : INT64_MAX / 4;
    return r;
}

static int64_t gcd64(int64_t a, int64_t b) {
    if (a < 0) a = -a;
    if (b < 0) b = -b;
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t floordiv(int64_t a, int64_t b) { /* b > 0 */
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static void term_range(const cg *g, const cg_term *t, int64_t *lo, int64_t *hi) {
    const cg_var *v = &g->vars[t->var];
    int64_t a = v->lo, b = v->hi;
    if (t->div != 1 || t->mod) {
        if (a < 0) a = 0; /* div/mod terms are only formed over indices, never negative where used */
        a /= t->div;
        b /= t->div;
        if (t->mod && b >= t->mod) a = 0, b = t->mod - 1;
    }
    if (t->coef >= 0) *lo = sat_mul(a, t->coef), *hi = sat_mul(b, t->coef);
    else *lo = sat_mul(b, t->coef), *hi = sat_mul(a, t->coef);
}

void cg_ix_range(const cg *g, const cg_ix *a, int64_t *lo, int64_t *hi) {
    int64_t l = a->c, h = a->c;
    for (int i = 0; i < a->n; i++) {
        int64_t tl, th;
        term_range(g, &a->t[i], &tl, &th);
        l = sat_add(l, tl);
        h = sat_add(h, th);
    }
    *lo = l;
    *hi = h;
}

static int term_cmp(const cg_term *a, const cg_term *b) {
    if (a->var != b->var) return a->var < b->var ? -1 : 1;
    if (a->div != b->div) return a->div < b->div ? -1 : 1;
    if (a->mod != b->mod) return a->mod < b->mod ? -1 : 1;
    return 0;
}

/* A working form with room for the terms of two forms. */
typedef struct ixw {
    int n;
    int64_t c;
    cg_term t[2 * CG_IX_TERMS];
} ixw;

/* Simplify: identities of single terms, sort, merge equal terms and
 * div/mod chains, drop zeros. */
static void ixw_norm(const cg *g, ixw *a) {
    for (bool changed = true; changed;) {
        changed = false;
        for (int i = 0; i < a->n; i++) {
            cg_term *t = &a->t[i];
            const cg_var *v = &g->vars[t->var];
            int64_t lo = v->lo < 0 ? 0 : v->lo;
            if (t->mod && v->hi / t->div < t->mod && (lo >= 0)) t->mod = 0;
            if (t->div > 1 && v->lo >= 0 && v->hi < t->div) t->coef = 0; /* always 0 */
            if (t->mod == 1) t->coef = 0;
        }
        /* insertion sort: forms are short */
        for (int i = 1; i < a->n; i++) {
            cg_term x = a->t[i];
            int j = i - 1;
            while (j >= 0 && term_cmp(&a->t[j], &x) > 0) {
                a->t[j + 1] = a->t[j];
                j--;
            }
            a->t[j + 1] = x;
        }
        int m = 0;
        for (int i = 0; i < a->n; i++) {
            if (m > 0 && term_cmp(&a->t[m - 1], &a->t[i]) == 0) {
                a->t[m - 1].coef += a->t[i].coef;
                continue;
            }
            a->t[m++] = a->t[i];
        }
        a->n = m;
        m = 0;
        for (int i = 0; i < a->n; i++)
            if (a->t[i].coef != 0) a->t[m++] = a->t[i];
        a->n = m;
        /* k * (x/d % m) + k*m * (x/(d*m) % m2) == k * (x/d % (m*m2)) */
        for (int i = 0; i < a->n && !changed; i++) {
            cg_term *t = &a->t[i];
            if (!t->mod) continue;
            for (int j = 0; j < a->n; j++) {
                cg_term *u = &a->t[j];
                if (j == i || u->var != t->var) continue;
                int64_t dm, km, mm = 0;
                if (__builtin_mul_overflow(t->div, t->mod, &dm) || __builtin_mul_overflow(t->coef, t->mod, &km))
                    continue;
                if (u->div != dm || u->coef != km) continue;
                if (u->mod && __builtin_mul_overflow(t->mod, u->mod, &mm)) continue;
                t->mod = u->mod ? mm : 0;
                u->coef = 0;
                changed = true;
                break;
            }
        }
        if (changed) {
            m = 0;
            for (int i = 0; i < a->n; i++)
                if (a->t[i].coef != 0) a->t[m++] = a->t[i];
            a->n = m;
        }
    }
}

static ixw ixw_of(const cg_ix *a) {
    ixw w;
    w.n = a->n;
    w.c = a->c;
    memcpy(w.t, a->t, sizeof(cg_term) * (size_t)a->n);
    return w;
}

static void term_str(const cg *g, ir_str *s, const cg_term *t, bool first) {
    int64_t k = t->coef;
    if (!first) ir_str_puts(s, k < 0 ? " - " : " + ");
    else if (k < 0) ir_str_puts(s, "-");
    if (k < 0) k = -k;
    const char *nm = g->vars[t->var].name;
    bool paren = (t->div != 1 || t->mod) && k != 1;
    if (paren) ir_str_putc(s, '(');
    ir_str_puts(s, nm);
    if (t->div != 1) ir_str_printf(s, " / %" PRId64, t->div);
    if (t->mod) ir_str_printf(s, " %% %" PRId64, t->mod);
    if (paren) ir_str_putc(s, ')');
    if (k != 1) ir_str_printf(s, " * %" PRId64 "%s", k, k > INT32_MAX ? "LL" : "");
}

static char *ixw_str(cg *g, const ixw *a) {
    ir_str s = {0};
    for (int i = 0; i < a->n; i++) term_str(g, &s, &a->t[i], i == 0);
    int64_t c = a->c;
    bool big = c > INT32_MAX || c < -INT32_MAX;
    if (a->n == 0) {
        if (c < 0) ir_str_printf(&s, "(%" PRId64 "%s)", c, big ? "LL" : "");
        else ir_str_printf(&s, "%" PRId64 "%s", c, big ? "LL" : "");
    } else if (c != 0) {
        ir_str_printf(&s, " %c %" PRId64 "%s", c < 0 ? '-' : '+', c < 0 ? -c : c, big ? "LL" : "");
    }
    char *r = cg_strf(g, "%s", s.buf ? s.buf : "0");
    ir_str_free(&s);
    return r;
}

char *cg_ix_str(cg *g, const cg_ix *a) {
    ixw w = ixw_of(a);
    return ixw_str(g, &w);
}

static cg_ix ixw_materialize(cg *g, const ixw *a) {
    char *str = ixw_str(g, a);
    char *key = cg_strf(g, "M|%s", str);
    cg_entry *e = cg_cache_find(g, key);
    if (e) return cg_ixv(e->ival, 1);
    int64_t lo = a->c, hi = a->c;
    for (int i = 0; i < a->n; i++) {
        int64_t tl, th;
        term_range(g, &a->t[i], &tl, &th);
        lo = sat_add(lo, tl);
        hi = sat_add(hi, th);
    }
    if (lo < 0) lo = 0; /* an index: negative only in lanes that never access memory */
    const char *name = cg_fresh(g, "t");
    cg_line(g, "const idx_t %s = %s;", name, str);
    int var = cg_var_new(g, name, lo, hi);
    e = cg_cache_add(g, key);
    if (e) e->ival = var;
    return cg_ixv(var, 1);
}

cg_ix cg_ix_materialize(cg *g, const cg_ix *a) {
    if (a->n == 0 || (a->n == 1 && a->c == 0 && a->t[0].coef == 1 && a->t[0].div == 1 && !a->t[0].mod))
        return *a;
    ixw w = ixw_of(a);
    return ixw_materialize(g, &w);
}

/* A normalized working form back into a cg_ix, materializing if it is
 * too long. */
static cg_ix ixw_out(cg *g, ixw *w) {
    ixw_norm(g, w);
    if (w->n > CG_IX_TERMS) return ixw_materialize(g, w);
    cg_ix r;
    memset(&r, 0, sizeof r);
    r.n = w->n;
    r.c = w->c;
    memcpy(r.t, w->t, sizeof(cg_term) * (size_t)w->n);
    return r;
}

void cg_ix_add(cg *g, cg_ix *a, const cg_ix *b) {
    ixw w = ixw_of(a);
    memcpy(w.t + w.n, b->t, sizeof(cg_term) * (size_t)b->n);
    w.n += b->n;
    w.c = sat_add(w.c, b->c);
    *a = ixw_out(g, &w);
}

void cg_ix_scale(cg *g, cg_ix *a, int64_t k) {
    ixw w = ixw_of(a);
    for (int i = 0; i < w.n; i++) w.t[i].coef = sat_mul(w.t[i].coef, k);
    w.c = sat_mul(w.c, k);
    *a = ixw_out(g, &w);
}

bool cg_ix_eq(const cg_ix *a, const cg_ix *b) {
    if (a->n != b->n || a->c != b->c) return false;
    for (int i = 0; i < a->n; i++)
        if (term_cmp(&a->t[i], &b->t[i]) != 0 || a->t[i].coef != b->t[i].coef) return false;
    return true;
}

/* The range of the terms of w that `pick` selects, plus c. */
static void ixw_range(const cg *g, const ixw *w, int64_t c, bool (*pick)(const cg_term *, int64_t), int64_t s,
                      int64_t *lo, int64_t *hi) {
    int64_t l = c, h = c;
    for (int i = 0; i < w->n; i++) {
        if (!pick(&w->t[i], s)) continue;
        int64_t tl, th;
        term_range(g, &w->t[i], &tl, &th);
        l = sat_add(l, tl);
        h = sat_add(h, th);
    }
    *lo = l;
    *hi = h;
}

static bool not_multiple(const cg_term *t, int64_t s) { return t->coef % s != 0; }

cg_ix cg_ix_div(cg *g, const cg_ix *a, int64_t s) {
    FC_ASSERT(s >= 1);
    ixw x = ixw_of(a);
    while (s > 1) {
        /* rule 1: the part s does not divide stays within [0, s) */
        int64_t cq = floordiv(x.c, s), cr = x.c - cq * s, lo, hi;
        ixw_range(g, &x, cr, not_multiple, s, &lo, &hi);
        if (lo >= 0 && hi < s) {
            int m = 0;
            for (int i = 0; i < x.n; i++)
                if (x.t[i].coef % s == 0) {
                    x.t[m] = x.t[i];
                    x.t[m++].coef /= s;
                }
            x.n = m;
            x.c = cq;
            return ixw_out(g, &x);
        }
        /* rule 2: a common factor of s and every coefficient */
        int64_t gg = s;
        for (int i = 0; i < x.n; i++) gg = gcd64(gg, x.t[i].coef);
        if (gg <= 1) break;
        int64_t q = floordiv(x.c, gg);
        for (int i = 0; i < x.n; i++) x.t[i].coef /= gg;
        x.c = q;
        s /= gg;
    }
    if (s == 1) return ixw_out(g, &x);
    /* rule 3: a lone term absorbs the division */
    ixw_norm(g, &x);
    if (x.n == 1 && x.c == 0 && x.t[0].coef == 1) {
        cg_term t = x.t[0];
        int64_t ds;
        if (!__builtin_mul_overflow(t.div, s, &ds) && (t.mod == 0 || t.mod % s == 0)) {
            x.t[0].div = ds;
            x.t[0].mod = t.mod ? t.mod / s : 0;
            return ixw_out(g, &x);
        }
    }
    cg_ix m = ixw_materialize(g, &x);
    m.t[0].div = s;
    ixw w = ixw_of(&m);
    return ixw_out(g, &w);
}

cg_ix cg_ix_mod(cg *g, const cg_ix *a, int64_t m) {
    FC_ASSERT(m >= 1);
    ixw x = ixw_of(a);
    int64_t mul = 1, add = 0; /* the result is mul * (x % m) + add */
    for (;;) {
        if (m == 1) return cg_ixc(add);
        int k = 0;
        for (int i = 0; i < x.n; i++)
            if (x.t[i].coef % m != 0) x.t[k++] = x.t[i];
        x.n = k;
        x.c = x.c - floordiv(x.c, m) * m;
        int64_t lo = x.c, hi = x.c;
        for (int i = 0; i < x.n; i++) {
            int64_t tl, th;
            term_range(g, &x.t[i], &tl, &th);
            lo = sat_add(lo, tl);
            hi = sat_add(hi, th);
        }
        if (hi < m && lo >= 0) break; /* x itself is the remainder */
        int64_t gg = m;
        for (int i = 0; i < x.n; i++) gg = gcd64(gg, x.t[i].coef);
        if (gg > 1) {
            int64_t q = floordiv(x.c, gg), r = x.c - q * gg;
            add += mul * r;
            mul *= gg;
            for (int i = 0; i < x.n; i++) x.t[i].coef /= gg;
            x.c = q;
            m /= gg;
            continue;
        }
        ixw_norm(g, &x);
        if (x.n == 1 && x.c == 0 && x.t[0].coef == 1 && (x.t[0].mod == 0 || x.t[0].mod % m == 0)) {
            x.t[0].mod = m;
            break;
        }
        cg_ix v = ixw_materialize(g, &x);
        v.t[0].mod = m;
        x = ixw_of(&v);
        break;
    }
    for (int i = 0; i < x.n; i++) x.t[i].coef = sat_mul(x.t[i].coef, mul);
    x.c = sat_add(sat_mul(x.c, mul), add);
    return ixw_out(g, &x);
}

void cg_ix_split(cg *g, const cg_ix *lin, const int64_t *dims, int n, cg_ix *out) {
    bool empty = false;
    for (int i = 0; i < n; i++) empty |= dims[i] == 0;
    int64_t stride = 1;
    for (int i = n - 1; i >= 0; i--) {
        if (empty || dims[i] == 1) {
            out[i] = cg_ixc(0);
            continue;
        }
        cg_ix q = cg_ix_div(g, lin, stride);
        out[i] = i == 0 ? q : cg_ix_mod(g, &q, dims[i]);
        stride = sat_mul(stride, dims[i]);
    }
}

cg_ix cg_ix_linear(cg *g, const cg_ix *comps, const int64_t *dims, int n) {
    cg_ix r = cg_ixc(0);
    int64_t stride = 1;
    for (int i = n - 1; i >= 0; i--) {
        if (dims[i] != 1) {
            cg_ix t = comps[i];
            cg_ix_scale(g, &t, stride);
            cg_ix_add(g, &r, &t);
        }
        stride = sat_mul(stride, dims[i]);
    }
    return r;
}

/* ---- predicates -------------------------------------------------------------- */

const char *cg_pred_name(const cg *g, int id) { return id == 0 ? "true" : g->preds[id]; }

int cg_pred_and(cg *g, int parent, const char *cond) {
    if (strcmp(cond, "1") == 0) return parent;
    char *key = cg_strf(g, "P|%d|%s", parent, cond);
    cg_entry *e = cg_cache_find(g, key);
    if (e) return e->ival;
    if (g->npreds == 0) g->npreds = 1; /* id 0 is "true" */
    if (g->npreds >= g->cpreds) {
        int nc = g->cpreds ? g->cpreds * 2 : 32;
        const char **np = realloc(g->preds, sizeof *np * (size_t)nc);
        if (!np) {
            cg_fail(g, NULL, "out of memory");
            return parent;
        }
        g->preds = np;
        g->cpreds = nc;
    }
    const char *name = cg_fresh(g, "p");
    if (parent == 0) cg_line(g, "const bool %s = %s;", name, cond);
    else cg_line(g, "const bool %s = %s && (%s);", name, g->preds[parent], cond);
    int id = g->npreds++;
    g->preds[id] = name;
    e = cg_cache_add(g, key);
    if (e) e->ival = id;
    return id;
}
