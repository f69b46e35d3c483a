/*
 * masks.c - mask elimination: decide facts about attention masks at compile
 * time, by analysis, and drop the masks that do nothing.
 *
 * Fusion already keeps masks out of memory: a mask computed from the index
 * alone (iota, compare, full, triu, where, expand) is inlined into the
 * kernel that consumes it as an index predicate.  What fusion cannot do is
 * notice that a mask keeps everything, that it is applied twice, or that an
 * additive mask is zero.  This pass proves such facts and rewrites:
 *
 *   where(m, a, b)          -> a if m is true everywhere, b if false everywhere
 *   masked_fill(x, m)       -> x if m is false everywhere (a full of the fill
 *                              value if m is true everywhere)
 *   add(x, M), sub(x, M)    -> x if M is 0 everywhere; mul(x, M) -> x if M is 1
 *   triu / tril(x)          -> x if they keep everything, a full 0 if nothing
 *   a select (where, masked_fill) whose branch is itself a select or an
 *   add of a mask:  the branch is simplified under the select's condition -
 *     where(m, where(m2, s, x), y) -> where(m, s, y)   if m implies m2,
 *     where(m, where(m2, x, s), y) -> where(m, s, y)   if m implies !m2,
 *     masked_fill(masked_fill(s, m2), m) -> masked_fill(s, m) if m2 implies m,
 *     where(m, add(s, M), y)       -> where(m, s, y)   if m implies M == 0
 *     (the same causal mask applied both as a select and as an addend);
 *   add(add(s, M1), M2)     -> add(s, M2) where at every index M1 == 0, or
 *                              M1 == M2 == -inf (the same {0, -inf} mask
 *                              added twice).
 * Each replacement keeps the node's type; a branch that the old node
 * broadcast up is broadcast by an `expand`, a literal becomes a `full`.
 *
 * The analysis.  Every value gets an abstract description (av) over its
 * own index space j = (j_0, .., j_r-1):
 *
 *   CONST   one value everywhere (literals, full);
 *   AFFINE  an integer c0 + lin . j, exact in its dtype (iota, and add,
 *           sub, neg, mul by an integer constant, casts of those);
 *   PRED    for bool values: a predicate over j - a tree of and / or / not
 *           over atoms `lo <= lin . j <= hi` (compares of affine values)
 *           and opaque leaves (a bool value we cannot see through, read at
 *           an affine index: a padding mask parameter, say);
 *   SELECT  p ? a : b, for the non-bool values of where, masked_fill,
 *           triu / tril, and of elementwise ops applied to them (the op is
 *           pushed into both branches, constants are computed with
 *           ir_ew_eval, the interpreter's own arithmetic).
 *
 * Ops that move data map an output index to an input index affinely
 * (expand, permute, transpose, slice, squeeze, unsqueeze, a reshape that
 * only splits dims or adds and drops 1s), and broadcasting does too, so an
 * av moves through them by substituting that map (imap) into its affine
 * forms and atoms.  Anything else leaves the value undescribed (a bool one
 * becomes an opaque leaf).  Sizes are bounded (tree nodes, select leaves)
 * and all integer arithmetic is checked; on overflow the value is simply
 * undescribed.
 *
 * Deciding a predicate P over the box 0 <= j_k < n_k (decide()): atoms are
 * grouped by their linear form (normalised: divided by the gcd, first
 * coefficient positive), so gt(col, row) and lt(row, col) fall in one
 * group.  Over the box a form ranges over [min, max], a sum of per-dim
 * extremes.  The bounds of a group's atoms cut that range into segments on
 * which every atom of the group is constant; opaque leaves are free
 * booleans.  P is evaluated once per combination of one segment per group
 * and one value per opaque leaf: true in all of them = true everywhere,
 * false in all = false everywhere, else undecided.  Every index of the box
 * falls into some combination, so both answers are sound; they are exact
 * when the groups are independent, which is the case for the masks models
 * write (causal j <= i, sliding window i - w < j <= i, padding j < len,
 * "keeps everything" bounds).  Atoms are also decided as they are built,
 * so trees stay small.
 *
 * Requires: a verified graph.  Best after decompose (softmax is then
 * visible to fusion) and before cse/dce.  Invalidates: nothing (results
 * are replaced, dead nodes removed).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/pass.h"

#define RK IR_MAX_RANK

enum {
    PRED_MAX_NODES = 256,  /* a predicate tree larger than this is opaque */
    SELECT_MAX_LEAVES = 16,
    DECIDE_MAX_LEAVES = 32,
    DECIDE_MAX_OPAQUE = 8,
    DECIDE_MAX_WORK = 1 << 18, /* cases times tree size, per decision */
    MAX_ROUNDS = 8,
};

#define NEG_INF INT64_MIN /* interval bound sentinels */
#define POS_INF INT64_MAX

/* ---- checked integer arithmetic ------------------------------------------- */

static bool add_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_add_overflow(a, b, r); }
static bool sub_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_sub_overflow(a, b, r); }
static bool mul_ok(int64_t a, int64_t b, int64_t *r) { return !__builtin_mul_overflow(a, b, r); }

static int64_t gcd64(int64_t a, int64_t b) {
    while (b) {
        int64_t t = a % b;
        a = b;
        b = t;
    }
    return a;
}

static int64_t floor_div(int64_t a, int64_t b) { /* b > 0 */
    int64_t q = a / b;
    return (a % b != 0 && a < 0) ? q - 1 : q;
}

static int64_t ceil_div(int64_t a, int64_t b) { /* b > 0 */
    int64_t q = a / b;
    return (a % b != 0 && a > 0) ? q + 1 : q;
}

/* [min, max] of lin . j over the box 0 <= j_k < dim_k (non-empty). */
static bool form_range(const int64_t *lin, const ir_type *box, int64_t *lo, int64_t *hi) {
    *lo = *hi = 0;
    for (int k = 0; k < box->rank; k++) {
        int64_t e;
        if (!lin[k] || box->dim[k] <= 1) continue;
        if (!mul_ok(lin[k], box->dim[k] - 1, &e)) return false;
        if (!add_ok(e < 0 ? *lo : *hi, e, e < 0 ? lo : hi)) return false;
    }
    return true;
}

static bool box_empty(const ir_type *t) {
    for (int k = 0; k < t->rank; k++)
        if (t->dim[k] == 0) return true;
    return false;
}

/* ---- index maps ---------------------------------------------------------------
 * An imap sends an index j of a "dst" space (rank dst) to the index
 * i = off + m j of a "src" space (rank src): which element of an operand an
 * element of a result reads. */

typedef struct imap {
    int src, dst;
    int64_t off[RK];
    int64_t m[RK][RK];
} imap;

/* Broadcasting src into dst (dims aligned from the right). */
static void imap_broadcast(imap *f, const ir_type *src, const ir_type *dst) {
    memset(f, 0, sizeof *f);
    f->src = src->rank;
    f->dst = dst->rank;
    int lead = dst->rank - src->rank;
    for (int d = 0; d < src->rank; d++)
        if (src->dim[d] != 1) f->m[d][d + lead] = 1;
}

/* reshape / squeeze / unsqueeze as an affine map: possible when each dim of
 * the source other than 1s is the product of a run of the result's dims
 * (a split), which is then read row-major. */
static bool imap_reshape(imap *f, const ir_type *src, const ir_type *dst) {
    memset(f, 0, sizeof *f);
    f->src = src->rank;
    f->dst = dst->rank;
    int k = 0;
    for (int d = 0; d < src->rank; d++) {
        if (src->dim[d] == 1) continue;
        int group[RK], ng = 0;
        int64_t prod = 1;
        while (prod < src->dim[d]) {
            while (k < dst->rank && dst->dim[k] == 1) k++;
            if (k >= dst->rank) return false;
            prod *= dst->dim[k];
            group[ng++] = k++;
        }
        if (prod != src->dim[d]) return false;
        int64_t stride = 1;
        for (int q = ng - 1; q >= 0; q--) {
            f->m[d][group[q]] = stride;
            stride *= dst->dim[group[q]];
        }
    }
    return true;
}

/* The map from n's result index to its (only) operand's index, for the
 * movement ops that have an affine one. */
static bool imap_of_node(imap *f, const ir_node *n) {
    const ir_type *x = &n->in[0]->type, *o = &n->out->type;
    if (box_empty(x) || box_empty(o)) return false;
    int a, b, cnt;
    switch (n->op) {
    case IR_OP_RESHAPE:
    case IR_OP_SQUEEZE:
    case IR_OP_UNSQUEEZE: return imap_reshape(f, x, o);
    case IR_OP_EXPAND: imap_broadcast(f, x, o); return true;
    case IR_OP_PERMUTE: {
        const int64_t *p = ir_attr_ints(n, "dims", &cnt);
        memset(f, 0, sizeof *f);
        f->src = f->dst = o->rank;
        for (int q = 0; q < cnt; q++) {
            if (!ir_norm_axis(p[q], o->rank, &a)) return false;
            f->m[a][q] = 1;
        }
        return true;
    }
    case IR_OP_TRANSPOSE:
    case IR_OP_SLICE:
        memset(f, 0, sizeof *f);
        f->src = f->dst = o->rank;
        for (int d = 0; d < o->rank; d++) f->m[d][d] = 1;
        if (n->op == IR_OP_TRANSPOSE) {
            if (!ir_norm_axis(ir_attr_i(n, "dim0"), o->rank, &a) ||
                !ir_norm_axis(ir_attr_i(n, "dim1"), o->rank, &b))
                return false;
            f->m[a][a] = f->m[b][b] = 0;
            f->m[a][b] = f->m[b][a] = 1;
        } else { /* start clamped as Python (and infer_slice) clamp it */
            if (!ir_norm_axis(ir_attr_i(n, "axis"), o->rank, &a)) return false;
            int64_t size = x->dim[a], s = ir_attr_i(n, "start");
            if (s < 0) s = s < -size ? 0 : s + size;
            if (s > size) s = size;
            f->off[a] = s;
            f->m[a][a] = ir_attr_i(n, "step");
        }
        return true;
    default: return false;
    }
}

/* ---- predicates --------------------------------------------------------------- */

typedef enum pkind { PK_TRUE, PK_FALSE, PK_ATOM, PK_OPQ, PK_NOT, PK_AND, PK_OR } pkind;

typedef struct pred {
    pkind k;
    int size;             /* nodes in this tree */
    int64_t lin[RK];      /* ATOM: lo <= lin . j <= hi, lin normalised */
    int64_t lo, hi;
    const ir_value *v;    /* OPQ: bool value v read at index map(j) */
    const imap *map;
    struct pred *a, *b;   /* NOT: a; AND, OR: a, b */
    int slot;             /* decide(): the leaf's index */
} pred;

static pred P_TRUE = {.k = PK_TRUE, .size = 1}, P_FALSE = {.k = PK_FALSE, .size = 1};

/* ---- abstract values -------------------------------------------------------------- */

typedef enum avkind { AV_CONST, AV_AFFINE, AV_PRED, AV_SELECT } avkind;

/* NULL is the undescribed value. */
typedef struct av {
    avkind k;
    ir_type t;           /* the value's type: dtype and index space */
    ir_scalar c;         /* CONST, in t.dtype's domain */
    int64_t c0, lin[RK]; /* AFFINE: c0 + lin . j */
    pred *p;             /* PRED; SELECT's condition */
    struct av *a, *b;    /* SELECT: p ? a : b */
    int leaves;
} av;

typedef struct mctx {
    ir_graph *g;
    ir_arena ar; /* every av, pred and imap of the pass */
    av **memo;   /* value id -> av (NULL: undescribed) */
    bool *done;  /* value id -> memo is set */
    int cap;
    bool oom;
} mctx;

static void *alloc(mctx *c, size_t n) {
    void *p = ir_arena_alloc(&c->ar, n);
    if (!p) c->oom = true;
    return p;
}

static pred *p_const(bool b) { return b ? &P_TRUE : &P_FALSE; }

/* lo <= lin . j + c <= hi over the box, normalised and decided if possible. */
static pred *p_atom(mctx *c, const ir_type *box, const int64_t *lin_in, int64_t lo, int64_t hi) {
    int64_t lin[RK] = {0}, g = 0;
    for (int k = 0; k < box->rank; k++) {
        lin[k] = box->dim[k] == 1 ? 0 : lin_in[k]; /* a size-1 dim's index is 0 */
        if (lin[k] == INT64_MIN) return NULL;
        g = gcd64(g, lin[k] < 0 ? -lin[k] : lin[k]);
    }
    if (g == 0) return p_const(lo <= 0 && 0 <= hi);
    int first = 0;
    while (!lin[first]) first++;
    bool neg = lin[first] < 0;
    for (int k = 0; k < box->rank; k++) lin[k] = (neg ? -lin[k] : lin[k]) / g;
    if (neg) { /* -hi <= -lin . j <= -lo */
        int64_t t = lo;
        lo = hi == POS_INF ? NEG_INF : -hi;
        hi = t == NEG_INF ? POS_INF : -t;
    }
    if (lo != NEG_INF) lo = ceil_div(lo, g);
    if (hi != POS_INF) hi = floor_div(hi, g);
    if (lo > hi) return &P_FALSE;
    int64_t rmin, rmax;
    if (form_range(lin, box, &rmin, &rmax)) {
        if (lo <= rmin && rmax <= hi) return &P_TRUE;
        if (rmax < lo || rmin > hi) return &P_FALSE;
        if (lo < rmin) lo = rmin; /* the same set on this box, and on every box mapped into it */
        if (hi > rmax) hi = rmax;
    }
    pred *p = alloc(c, sizeof *p);
    if (!p) return NULL;
    p->k = PK_ATOM;
    p->size = 1;
    memcpy(p->lin, lin, sizeof lin);
    p->lo = lo;
    p->hi = hi;
    return p;
}

/* The bool value v read at index map(j), j in box.  The map is put in a
 * canonical form (nothing reads a size-1 dim's index), so that two reads
 * of the same elements compare equal. */
static pred *p_opaque(mctx *c, const ir_value *v, const imap *map, const ir_type *box) {
    pred *p = alloc(c, sizeof *p);
    imap *m = alloc(c, sizeof *m);
    if (!p || !m) return NULL;
    *m = *map;
    for (int d = 0; d < m->src; d++)
        for (int k = 0; k < m->dst; k++)
            if (v->type.dim[d] == 1 || box->dim[k] == 1) m->m[d][k] = 0;
    for (int d = 0; d < m->src; d++)
        if (v->type.dim[d] == 1) m->off[d] = 0;
    p->k = PK_OPQ;
    p->size = 1;
    p->v = v;
    p->map = m;
    return p;
}

static pred *p_node(mctx *c, pkind k, pred *a, pred *b) {
    int size = a->size + (b ? b->size : 0) + 1;
    if (size > PRED_MAX_NODES) return NULL;
    pred *p = alloc(c, sizeof *p);
    if (!p) return NULL;
    p->k = k;
    p->size = size;
    p->a = a;
    p->b = b;
    return p;
}

static pred *p_not(mctx *c, pred *a) {
    if (!a) return NULL;
    if (a->k == PK_TRUE) return &P_FALSE;
    if (a->k == PK_FALSE) return &P_TRUE;
    if (a->k == PK_NOT) return a->a;
    return p_node(c, PK_NOT, a, NULL);
}

static pred *p_and(mctx *c, pred *a, pred *b) {
    if (!a || !b) return NULL;
    if (a->k == PK_FALSE || b->k == PK_FALSE) return &P_FALSE;
    if (a->k == PK_TRUE || a == b) return b;
    if (b->k == PK_TRUE) return a;
    return p_node(c, PK_AND, a, b);
}

static pred *p_or(mctx *c, pred *a, pred *b) {
    if (!a || !b) return NULL;
    if (a->k == PK_TRUE || b->k == PK_TRUE) return &P_TRUE;
    if (a->k == PK_FALSE || a == b) return b;
    if (b->k == PK_FALSE) return a;
    return p_node(c, PK_OR, a, b);
}

/* p ? a : b for predicates. */
static pred *p_select(mctx *c, pred *p, pred *a, pred *b) {
    return p_or(c, p_and(c, p, a), p_and(c, p_not(c, p), b));
}

static pred *p_xor(mctx *c, pred *a, pred *b) { return p_select(c, a, p_not(c, b), b); }

/* g after f: the composition  j -> f.off + f.m (g.off + g.m j). */
static bool imap_compose(imap *out, const imap *f, const imap *g) {
    imap r = {.src = f->src, .dst = g->dst};
    for (int d = 0; d < f->src; d++) {
        int64_t acc = f->off[d], t;
        for (int e = 0; e < f->dst; e++) {
            if (!mul_ok(f->m[d][e], g->off[e], &t) || !add_ok(acc, t, &acc)) return false;
            for (int k = 0; k < g->dst; k++) {
                int64_t s;
                if (!mul_ok(f->m[d][e], g->m[e][k], &s) || !add_ok(r.m[d][k], s, &r.m[d][k])) return false;
            }
        }
        r.off[d] = acc;
    }
    *out = r;
    return true;
}

/* lin . (off + m j) = base + lin' . j */
static bool form_apply(const int64_t *lin, const imap *f, int64_t *base, int64_t *out) {
    *base = 0;
    memset(out, 0, sizeof(int64_t) * RK);
    for (int d = 0; d < f->src; d++) {
        int64_t t;
        if (!lin[d]) continue;
        if (!mul_ok(lin[d], f->off[d], &t) || !add_ok(*base, t, base)) return false;
        for (int k = 0; k < f->dst; k++)
            if (!mul_ok(lin[d], f->m[d][k], &t) || !add_ok(out[k], t, &out[k])) return false;
    }
    return true;
}

static bool bound_shift(int64_t b, int64_t by, int64_t *out) {
    if (b == NEG_INF || b == POS_INF) {
        *out = b;
        return true;
    }
    return sub_ok(b, by, out) && *out != NEG_INF && *out != POS_INF;
}

/* p re-expressed over the index space `box` that f maps into p's space. */
static pred *p_apply(mctx *c, pred *p, const imap *f, const ir_type *box) {
    if (!p) return NULL;
    switch (p->k) {
    case PK_TRUE:
    case PK_FALSE: return p;
    case PK_ATOM: {
        int64_t base, lin[RK], lo, hi;
        if (!form_apply(p->lin, f, &base, lin) || !bound_shift(p->lo, base, &lo) || !bound_shift(p->hi, base, &hi))
            return NULL;
        return p_atom(c, box, lin, lo, hi);
    }
    case PK_OPQ: {
        imap m;
        return imap_compose(&m, p->map, f) ? p_opaque(c, p->v, &m, box) : NULL;
    }
    case PK_NOT: return p_not(c, p_apply(c, p->a, f, box));
    case PK_AND: return p_and(c, p_apply(c, p->a, f, box), p_apply(c, p->b, f, box));
    case PK_OR: return p_or(c, p_apply(c, p->a, f, box), p_apply(c, p->b, f, box));
    }
    return NULL;
}

/* ---- deciding a predicate over a box ---------------------------------------------- */

typedef enum decision { D_MAYBE, D_ALWAYS, D_NEVER } decision;

typedef struct leaves {
    int n;
    pred *leaf[DECIDE_MAX_LEAVES];
    int group[DECIDE_MAX_LEAVES]; /* atom: its group; opaque: its opaque number */
    int ngroups, nopq;
    const int64_t *glin[DECIDE_MAX_LEAVES]; /* a group's linear form */
    const pred *opq[DECIDE_MAX_OPAQUE];     /* one leaf per distinct opaque */
    int64_t cut[DECIDE_MAX_LEAVES][2 * DECIDE_MAX_LEAVES + 1]; /* group -> segment starts */
    int ncut[DECIDE_MAX_LEAVES];
    int64_t sample[DECIDE_MAX_LEAVES]; /* the current case */
    unsigned bits;
} leaves;

static bool same_imap(const imap *a, const imap *b) {
    if (a->src != b->src || a->dst != b->dst) return false;
    for (int d = 0; d < a->src; d++) {
        if (a->off[d] != b->off[d]) return false;
        for (int k = 0; k < a->dst; k++)
            if (a->m[d][k] != b->m[d][k]) return false;
    }
    return true;
}

static bool collect(leaves *L, pred *p, int rank) {
    if (p->k == PK_NOT || p->k == PK_AND || p->k == PK_OR)
        return collect(L, p->a, rank) && (!p->b || collect(L, p->b, rank));
    if (p->k != PK_ATOM && p->k != PK_OPQ) return true;
    for (int i = 0; i < L->n; i++)
        if (L->leaf[i] == p) return true;
    if (L->n == DECIDE_MAX_LEAVES) return false;
    int g;
    if (p->k == PK_ATOM) {
        for (g = 0; g < L->ngroups; g++)
            if (memcmp(L->glin[g], p->lin, sizeof(int64_t) * (size_t)rank) == 0) break;
        if (g == L->ngroups) L->glin[L->ngroups++] = p->lin;
    } else {
        for (g = 0; g < L->nopq; g++)
            if (L->opq[g]->v == p->v && same_imap(L->opq[g]->map, p->map)) break;
        if (g == L->nopq) {
            if (g == DECIDE_MAX_OPAQUE) return false;
            L->opq[L->nopq++] = p;
        }
    }
    p->slot = L->n;
    L->group[L->n] = g;
    L->leaf[L->n++] = p;
    return true;
}

static bool eval(const leaves *L, const pred *p) {
    switch (p->k) {
    case PK_TRUE: return true;
    case PK_FALSE: return false;
    case PK_ATOM: {
        int64_t x = L->sample[L->group[p->slot]];
        return p->lo <= x && x <= p->hi;
    }
    case PK_OPQ: return (L->bits >> L->group[p->slot]) & 1;
    case PK_NOT: return !eval(L, p->a);
    case PK_AND: return eval(L, p->a) && eval(L, p->b);
    case PK_OR: return eval(L, p->a) || eval(L, p->b);
    }
    return false;
}

static int cmp_i64(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Is p true everywhere, false everywhere, or neither provably, over box? */
static decision decide(pred *p, const ir_type *box) {
    if (!p || box_empty(box)) return D_MAYBE;
    if (p->k == PK_TRUE) return D_ALWAYS;
    if (p->k == PK_FALSE) return D_NEVER;
    static _Thread_local leaves L; /* large; decide() is not reentrant */
    memset(&L, 0, sizeof L);
    if (!collect(&L, p, box->rank)) return D_MAYBE;
    int64_t cases = (int64_t)1 << L.nopq;
    for (int g = 0; g < L.ngroups; g++) {
        int64_t rmin, rmax;
        if (!form_range(L.glin[g], box, &rmin, &rmax)) return D_MAYBE;
        int64_t *cut = L.cut[g];
        int nc = 0;
        cut[nc++] = rmin;
        for (int i = 0; i < L.n; i++) {
            const pred *a = L.leaf[i];
            if (a->k != PK_ATOM || L.group[i] != g) continue;
            if (a->lo > rmin && a->lo <= rmax) cut[nc++] = a->lo;
            if (a->hi != POS_INF && a->hi >= rmin && a->hi < rmax) cut[nc++] = a->hi + 1;
        }
        qsort(cut, (size_t)nc, sizeof *cut, cmp_i64);
        int u = 0;
        for (int i = 0; i < nc; i++)
            if (i == 0 || cut[i] != cut[u - 1]) cut[u++] = cut[i];
        L.ncut[g] = u;
        cases *= u;
        if (cases * p->size > DECIDE_MAX_WORK) return D_MAYBE;
    }
    if (cases * p->size > DECIDE_MAX_WORK) return D_MAYBE;
    bool seen_true = false, seen_false = false;
    int idx[DECIDE_MAX_LEAVES] = {0};
    for (int64_t k = 0; k < cases; k++) {
        /* k -> one segment per group, then the opaque bits */
        int64_t r = k;
        for (int g = 0; g < L.ngroups; g++) {
            idx[g] = (int)(r % L.ncut[g]);
            r /= L.ncut[g];
            L.sample[g] = L.cut[g][idx[g]];
        }
        L.bits = (unsigned)r;
        if (eval(&L, p)) seen_true = true;
        else seen_false = true;
        if (seen_true && seen_false) return D_MAYBE;
    }
    return seen_true ? D_ALWAYS : D_NEVER;
}

/* ---- abstract values: construction --------------------------------------------------- */

static av *av_new(mctx *c, avkind k, const ir_type *t) {
    av *a = alloc(c, sizeof *a);
    if (!a) return NULL;
    a->k = k;
    a->t = *t;
    a->leaves = 1;
    return a;
}

static av *av_pred(mctx *c, const ir_type *t, pred *p) {
    if (!p) return NULL;
    av *a = av_new(c, AV_PRED, t);
    if (a) a->p = p;
    return a;
}

static av *av_const(mctx *c, const ir_type *t, ir_scalar v) {
    if (t->dtype == FUSEC_DTYPE_BOOL) return av_pred(c, t, p_const(v.i != 0));
    av *a = av_new(c, AV_CONST, t);
    if (a) a->c = ir_scalar_round(t->dtype, v);
    return a;
}

/* The integers dt holds exactly: its range, or for floats every integer up
 * to 2^(significand bits) (f64: 2^52, which cmp_affine relies on). */
static void exact_range(ir_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case FUSEC_DTYPE_F64: *hi = (int64_t)1 << 52, *lo = -*hi; break;
    case FUSEC_DTYPE_F32: *hi = (int64_t)1 << 24, *lo = -*hi; break;
    case FUSEC_DTYPE_F16: *hi = (int64_t)1 << 11, *lo = -*hi; break;
    case FUSEC_DTYPE_BF16: *hi = (int64_t)1 << 8, *lo = -*hi; break;
    case FUSEC_DTYPE_I32: *lo = INT32_MIN, *hi = INT32_MAX; break;
    case FUSEC_DTYPE_I16: *lo = INT16_MIN, *hi = INT16_MAX; break;
    case FUSEC_DTYPE_I8: *lo = INT8_MIN, *hi = INT8_MAX; break;
    case FUSEC_DTYPE_U8: *lo = 0, *hi = 255; break;
    default: *lo = INT64_MIN, *hi = INT64_MAX; break;
    }
}

/* c0 + lin . j in t's dtype, if it is exact there over the whole box. */
static av *av_affine(mctx *c, const ir_type *t, int64_t c0, const int64_t *lin) {
    if (t->dtype == FUSEC_DTYPE_BOOL || box_empty(t)) return NULL;
    int64_t l[RK] = {0}, rmin, rmax, lo, hi;
    bool zero = true;
    for (int k = 0; k < t->rank; k++) {
        l[k] = t->dim[k] == 1 ? 0 : lin[k];
        zero = zero && !l[k];
    }
    if (!form_range(l, t, &rmin, &rmax) || !add_ok(rmin, c0, &rmin) || !add_ok(rmax, c0, &rmax)) return NULL;
    exact_range(t->dtype, &lo, &hi);
    if (rmin < lo || rmax > hi) return NULL;
    if (zero) {
        ir_scalar v;
        if (ir_dtype_is_float(t->dtype)) v.f = (double)c0;
        else v.i = c0;
        return av_const(c, t, v);
    }
    av *a = av_new(c, AV_AFFINE, t);
    if (!a) return NULL;
    a->c0 = c0;
    memcpy(a->lin, l, sizeof l);
    return a;
}

static bool same_const(const av *a, const av *b) {
    if (a->k != AV_CONST || b->k != AV_CONST) return false;
    if (ir_dtype_is_float(a->t.dtype)) return memcmp(&a->c.f, &b->c.f, sizeof(double)) == 0;
    return a->c.i == b->c.i;
}

/* p ? a : b for values of type t (bool: a predicate). */
static av *av_select(mctx *c, const ir_type *t, pred *p, av *a, av *b) {
    if (!p || !a || !b) return NULL;
    if (p->k == PK_TRUE) return a;
    if (p->k == PK_FALSE) return b;
    if (t->dtype == FUSEC_DTYPE_BOOL) return av_pred(c, t, p_select(c, p, a->p, b->p));
    if (a == b || same_const(a, b)) return a;
    if (a->leaves + b->leaves > SELECT_MAX_LEAVES) return NULL;
    av *s = av_new(c, AV_SELECT, t);
    if (!s) return NULL;
    s->p = p;
    s->a = a;
    s->b = b;
    s->leaves = a->leaves + b->leaves;
    return s;
}

/* a re-expressed over the index space t (same dtype) mapped into a's by f. */
static av *av_apply(mctx *c, av *a, const imap *f, const ir_type *t) {
    if (!a) return NULL;
    switch (a->k) {
    case AV_CONST: return av_const(c, t, a->c);
    case AV_PRED: return av_pred(c, t, p_apply(c, a->p, f, t));
    case AV_AFFINE: {
        int64_t base, lin[RK], c0;
        if (!form_apply(a->lin, f, &base, lin) || !add_ok(a->c0, base, &c0)) return NULL;
        return av_affine(c, t, c0, lin);
    }
    case AV_SELECT:
        return av_select(c, t, p_apply(c, a->p, f, t), av_apply(c, a->a, f, t), av_apply(c, a->b, f, t));
    }
    return NULL;
}

/* a (of some type broadcastable to t) broadcast into t's index space. */
static av *av_lift(mctx *c, av *a, const ir_type *t) {
    if (!a) return NULL;
    imap f;
    imap_broadcast(&f, &a->t, t);
    ir_type tt = *t;
    tt.dtype = a->t.dtype;
    return av_apply(c, a, &f, &tt);
}

/* ---- abstract values: elementwise ops ----------------------------------------------- */

static bool is_compare(ir_op op) {
    return op == IR_OP_EQ || op == IR_OP_NE || op == IR_OP_LT || op == IR_OP_LE || op == IR_OP_GT || op == IR_OP_GE;
}

/* x in dt's domain, converted as a store and a load convert it. */
static ir_scalar from_double(ir_dtype dt, double x) {
    unsigned char buf[8];
    ir_scalar r;
    ir_store_f(dt, buf, 0, x);
    if (ir_dtype_is_float(dt)) r.f = ir_load_f(dt, buf, 0);
    else r.i = ir_load_i(dt, buf, 0);
    return r;
}

/* An element of a literal, in its dtype's domain (as the interpreter
 * materialises it). */
static ir_scalar literal_scalar(const ir_value *v) {
    ir_dtype dt = v->type.dtype;
    if (ir_dtype_is_float(dt) || !v->lit_is_int) return from_double(dt, v->lit_f);
    ir_scalar r = {.i = v->lit_i};
    return ir_scalar_round(dt, r);
}

/* n applied to constant operands, exactly as the interpreter computes it;
 * false on any error (integer division by zero). */
static bool eval_const(const ir_node *n, const ir_scalar *x, ir_scalar *r) {
    ir_ew e;
    ir_ew_init(&e, n);
    bool int_div = (n->op == IR_OP_DIV || n->op == IR_OP_REMAINDER) && !ir_dtype_is_float(e.in_dtype);
    if (int_div && x[1].i == 0) return false;
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    bool ok = ir_ew_eval(&e, x, r, &d);
    ir_diag_free(&d);
    return ok;
}

/* An integer-valued constant as an exact integer. */
static bool const_int(const av *a, int64_t *out) {
    if (a->k != AV_CONST) return false;
    if (!ir_dtype_is_float(a->t.dtype)) {
        *out = a->c.i;
        return true;
    }
    double f = a->c.f;
    if (!(fabs(f) <= 4503599627370496.0) || f != floor(f)) return false; /* |f| <= 2^52, integral */
    *out = (int64_t)f;
    return true;
}

/* x op y for an affine x and an affine or constant y (op a comparison). */
static pred *cmp_affine(mctx *c, const ir_type *box, ir_op op, const av *x, const av *y) {
    int64_t lin[RK] = {0}, c0 = x->c0, k;
    memcpy(lin, x->lin, sizeof lin);
    if (y->k == AV_AFFINE) {
        for (int d = 0; d < box->rank; d++)
            if (!sub_ok(lin[d], y->lin[d], &lin[d])) return NULL;
        if (!sub_ok(c0, y->c0, &c0)) return NULL;
        k = 0;
    } else if (!const_int(y, &k)) {
        /* a float constant that is not an integer: NaN, +-inf, or between two */
        double f = y->c.f;
        if (isnan(f)) return p_const(op == IR_OP_NE);
        if (fabs(f) >= 4503599627370496.0) { /* beyond every affine value */
            bool above = f > 0;
            switch (op) {
            case IR_OP_LT:
            case IR_OP_LE: return p_const(above);
            case IR_OP_GT:
            case IR_OP_GE: return p_const(!above);
            default: return p_const(op == IR_OP_NE);
            }
        }
        if (op == IR_OP_EQ || op == IR_OP_NE) return p_const(op == IR_OP_NE);
        /* x > f <=> x >= floor(f) + 1,  x < f <=> x <= floor(f) */
        k = (int64_t)floor(f);
        if (op == IR_OP_GT || op == IR_OP_GE) op = IR_OP_GT;
        else op = IR_OP_LE;
    }
    /* lin . j + c0 op k  <=>  lin . j op k - c0 */
    int64_t b;
    if (!sub_ok(k, c0, &b) || b == NEG_INF || b == POS_INF) return NULL;
    switch (op) {
    case IR_OP_EQ: return p_atom(c, box, lin, b, b);
    case IR_OP_NE: return p_not(c, p_atom(c, box, lin, b, b));
    case IR_OP_LT: return b == NEG_INF + 1 ? &P_FALSE : p_atom(c, box, lin, NEG_INF, b - 1);
    case IR_OP_LE: return p_atom(c, box, lin, NEG_INF, b);
    case IR_OP_GT: return b == POS_INF - 1 ? &P_FALSE : p_atom(c, box, lin, b + 1, POS_INF);
    case IR_OP_GE: return p_atom(c, box, lin, b, POS_INF);
    default: return NULL;
    }
}

static ir_op flip_cmp(ir_op op) {
    switch (op) {
    case IR_OP_LT: return IR_OP_GT;
    case IR_OP_LE: return IR_OP_GE;
    case IR_OP_GT: return IR_OP_LT;
    case IR_OP_GE: return IR_OP_LE;
    default: return op;
    }
}

/* n over operands that are constants or affine forms (no select, no
 * predicate left), all over the result's index space t. */
static av *ew_leaf(mctx *c, const ir_node *n, av **x, const ir_type *t) {
    bool all_const = true;
    for (int i = 0; i < n->nin; i++) all_const = all_const && x[i]->k == AV_CONST;
    if (all_const) {
        ir_scalar s[3], r;
        for (int i = 0; i < n->nin; i++) s[i] = x[i]->c;
        return eval_const(n, s, &r) ? av_const(c, t, r) : NULL;
    }
    if (is_compare(n->op)) {
        pred *p = x[0]->k == AV_AFFINE ? cmp_affine(c, t, n->op, x[0], x[1])
                                       : cmp_affine(c, t, flip_cmp(n->op), x[1], x[0]);
        return av_pred(c, t, p);
    }
    av *a = x[0];
    int64_t lin[RK] = {0}, c0 = 0, k;
    switch (n->op) {
    case IR_OP_CAST:
        if (t->dtype == FUSEC_DTYPE_BOOL) { /* != 0 */
            av zero = {.k = AV_CONST, .t = a->t};
            return av_pred(c, t, cmp_affine(c, t, IR_OP_NE, a, &zero));
        }
        return av_affine(c, t, a->c0, a->lin); /* checks the new dtype holds it exactly */
    case IR_OP_NEG:
        if (!sub_ok(0, a->c0, &c0)) return NULL;
        for (int d = 0; d < t->rank; d++)
            if (!sub_ok(0, a->lin[d], &lin[d])) return NULL;
        return av_affine(c, t, c0, lin);
    case IR_OP_ADD:
    case IR_OP_SUB: {
        bool sub = n->op == IR_OP_SUB;
        for (int i = 0; i < 2; i++) {
            int64_t xc, xl[RK] = {0};
            if (x[i]->k == AV_AFFINE) {
                xc = x[i]->c0;
                memcpy(xl, x[i]->lin, sizeof xl);
            } else if (!const_int(x[i], &xc)) {
                return NULL;
            }
            bool minus = sub && i == 1;
            if (!(minus ? sub_ok(c0, xc, &c0) : add_ok(c0, xc, &c0))) return NULL;
            for (int d = 0; d < t->rank; d++)
                if (!(minus ? sub_ok(lin[d], xl[d], &lin[d]) : add_ok(lin[d], xl[d], &lin[d]))) return NULL;
        }
        return av_affine(c, t, c0, lin);
    }
    case IR_OP_MUL: {
        const av *f = x[0]->k == AV_AFFINE ? x[0] : x[1], *s = f == x[0] ? x[1] : x[0];
        if (!const_int(s, &k) || !mul_ok(f->c0, k, &c0)) return NULL;
        for (int d = 0; d < t->rank; d++)
            if (!mul_ok(f->lin[d], k, &lin[d])) return NULL;
        return av_affine(c, t, c0, lin);
    }
    default: return NULL;
    }
}

/* n over operands already lifted to its result's index space t: splits on
 * the first select or predicate operand (a predicate p is p ? true : false)
 * until only constants and affine forms remain. */
static av *ew_split(mctx *c, const ir_node *n, av **x, const ir_type *t) {
    for (int i = 0; i < n->nin; i++) {
        av *s = x[i];
        if (s->k != AV_SELECT && s->k != AV_PRED) continue;
        av *branch[3], *res[2];
        for (int side = 0; side < 2; side++) {
            memcpy(branch, x, sizeof(av *) * (size_t)n->nin);
            if (s->k == AV_SELECT) {
                branch[i] = side == 0 ? s->a : s->b;
            } else { /* a bool constant leaf (av_const would make it a predicate) */
                if (!(branch[i] = av_new(c, AV_CONST, &s->t))) return NULL;
                branch[i]->c.i = side == 0;
            }
            res[side] = ew_split(c, n, branch, t);
        }
        return av_select(c, t, s->p, res[0], res[1]);
    }
    return ew_leaf(c, n, x, t);
}

/* The av of elementwise node n from its operands' avs. */
static av *av_elementwise(mctx *c, const ir_node *n, av **in) {
    const ir_type *t = &n->out->type;
    av *x[3];
    if (n->nin > 3) return NULL;
    for (int i = 0; i < n->nin; i++) {
        x[i] = av_lift(c, in[i], t);
        if (!x[i]) return NULL;
    }
    bool bool_out = t->dtype == FUSEC_DTYPE_BOOL;
    bool bool_in = x[0]->t.dtype == FUSEC_DTYPE_BOOL;
    switch (n->op) {
    case IR_OP_NOT: return av_pred(c, t, p_not(c, x[0]->p));
    case IR_OP_AND:
    case IR_OP_OR:
    case IR_OP_XOR:
        if (!bool_in) break;
        return av_pred(c, t, n->op == IR_OP_AND ? p_and(c, x[0]->p, x[1]->p)
                             : n->op == IR_OP_OR ? p_or(c, x[0]->p, x[1]->p)
                                                 : p_xor(c, x[0]->p, x[1]->p));
    case IR_OP_EQ:
    case IR_OP_NE:
        if (!bool_in) break;
        return av_pred(c, t, n->op == IR_OP_NE ? p_xor(c, x[0]->p, x[1]->p) : p_not(c, p_xor(c, x[0]->p, x[1]->p)));
    case IR_OP_WHERE:
        if (bool_out) return av_pred(c, t, p_select(c, x[0]->p, x[1]->p, x[2]->p));
        return av_select(c, t, x[0]->p, x[1], x[2]);
    case IR_OP_MASKED_FILL: {
        ir_ew e;
        ir_ew_init(&e, n);
        return av_select(c, t, x[1]->p, av_const(c, t, e.fill), x[0]);
    }
    default: break;
    }
    return ew_split(c, n, x, t);
}

/* triu keeps column - row >= diagonal, tril keeps column - row <= diagonal. */
static pred *tri_keep(mctx *c, const ir_node *n, const ir_type *t) {
    int64_t lin[RK] = {0}, d = ir_attr_i(n, "diagonal");
    lin[t->rank - 1] = 1;
    lin[t->rank - 2] = -1;
    return n->op == IR_OP_TRIU ? p_atom(c, t, lin, d, POS_INF) : p_atom(c, t, lin, NEG_INF, d);
}

static av *av_of(mctx *c, const ir_value *v);

/* The av of node n (its operands' avs are known). */
static av *av_node(mctx *c, const ir_node *n) {
    const ir_type *t = &n->out->type;
    if (box_empty(t)) return NULL;
    av *in[3] = {0};
    switch (ir_op_get(n->op)->category) {
    case IR_CAT_ELEMENTWISE:
        if (n->nin > 3) return NULL;
        for (int i = 0; i < n->nin; i++)
            if (!(in[i] = av_of(c, n->in[i]))) return NULL;
        return av_elementwise(c, n, in);
    case IR_CAT_BROADCAST:
    case IR_CAT_INJECTIVE: break;
    default: return NULL;
    }
    if (n->op == IR_OP_FULL) return av_const(c, t, from_double(t->dtype, ir_attr_f(n, "value")));
    if (n->op == IR_OP_IOTA) {
        int a;
        int64_t lin[RK] = {0};
        if (t->rank > 0) {
            if (!ir_norm_axis(ir_attr_i(n, "axis"), t->rank, &a)) return NULL;
            lin[a] = 1;
        }
        return av_affine(c, t, 0, lin);
    }
    if (n->nin != 1 || !(in[0] = av_of(c, n->in[0]))) return NULL;
    if (n->op == IR_OP_TRIU || n->op == IR_OP_TRIL) {
        pred *keep = tri_keep(c, n, t);
        ir_scalar zero = {0};
        if (t->dtype == FUSEC_DTYPE_BOOL) return av_pred(c, t, p_and(c, keep, in[0]->p));
        return av_select(c, t, keep, in[0], av_const(c, t, zero));
    }
    imap f;
    return imap_of_node(&f, n) ? av_apply(c, in[0], &f, t) : NULL;
}

static bool memo_grow(mctx *c, int need) {
    if (need < c->cap) return true;
    int cap = need * 2 + 16;
    av **m = realloc(c->memo, sizeof *m * (size_t)cap);
    if (!m) return false;
    c->memo = m;
    bool *d = realloc(c->done, (size_t)cap);
    if (!d) return false;
    c->done = d;
    memset(c->memo + c->cap, 0, sizeof *m * (size_t)(cap - c->cap));
    memset(c->done + c->cap, 0, (size_t)(cap - c->cap));
    c->cap = cap;
    return true;
}

/* The av of any value; bool values always get one (opaque if need be). */
static av *av_of(mctx *c, const ir_value *v) {
    if (v->kind == IR_VAL_LITERAL) return av_const(c, &v->type, literal_scalar(v));
    if (!memo_grow(c, v->id + 1)) {
        c->oom = true;
        return NULL;
    }
    if (c->done[v->id]) return c->memo[v->id];
    av *a = v->kind == IR_VAL_NODE ? av_node(c, v->def) : NULL;
    if (!a && v->type.dtype == FUSEC_DTYPE_BOOL && !box_empty(&v->type)) {
        imap id;
        imap_broadcast(&id, &v->type, &v->type);
        a = av_pred(c, &v->type, p_opaque(c, v, &id, &v->type));
    }
    c->memo[v->id] = a;
    c->done[v->id] = true;
    return a;
}

/* ---- facts the rewrites ask for ------------------------------------------------------- */

/* v's av over the index space of t (v broadcasts into t). */
static av *lifted(mctx *c, const ir_value *v, const ir_type *t) { return av_lift(c, av_of(c, v), t); }

/* "a == k" as a predicate, for a numeric av and a constant k of its dtype. */
static pred *p_equals(mctx *c, const av *a, double k) {
    if (!a) return NULL;
    switch (a->k) {
    case AV_CONST:
        return p_const(ir_dtype_is_float(a->t.dtype) ? a->c.f == k : (double)a->c.i == k);
    case AV_AFFINE: {
        /* affine values are integers within exact_range: |x| <= 2^52 for floats */
        if (k != floor(k) || isinf(k)) return &P_FALSE;
        if (fabs(k) > 4503599627370496.0) return ir_dtype_is_float(a->t.dtype) ? &P_FALSE : NULL;
        av kk = {.k = AV_CONST, .t = a->t};
        if (ir_dtype_is_float(a->t.dtype)) kk.c.f = k;
        else kk.c.i = (int64_t)k;
        return cmp_affine(c, &a->t, IR_OP_EQ, a, &kk);
    }
    case AV_SELECT: return p_select(c, a->p, p_equals(c, a->a, k), p_equals(c, a->b, k));
    case AV_PRED: return k == 1 ? a->p : k == 0 ? p_not(c, a->p) : &P_FALSE;
    }
    return NULL;
}

/* The predicate of bool value v broadcast into t. */
static pred *cond_pred(mctx *c, const ir_value *v, const ir_type *t) {
    av *a = lifted(c, v, t);
    return a && a->k == AV_PRED ? a->p : NULL;
}

/* Is v (broadcast into t) equal to k everywhere? */
static bool everywhere(mctx *c, const ir_value *v, const ir_type *t, double k) {
    if (v->kind == IR_VAL_LITERAL) return false; /* canonicalize's business */
    return decide(p_equals(c, lifted(c, v, t), k), t) == D_ALWAYS;
}

static bool implies(mctx *c, pred *a, pred *b, const ir_type *t) {
    return decide(p_or(c, p_not(c, a), b), t) == D_ALWAYS;
}

/* ---- rewriting ------------------------------------------------------------------------ */

/* Build a node before `at` with at's location; NULL if ir_build refuses. */
static ir_value *build(mctx *c, ir_node *at, ir_op op, ir_value **in, int nin, const ir_attr_init *a, int na,
                       const ir_type *t) {
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    ir_node *ip = c->g->ip;
    c->g->ip = at;
    ir_value *r = ir_build(c->g, op, in, nin, a, na, t, at->loc, &d);
    c->g->ip = ip;
    ir_diag_free(&d);
    return r;
}

static ir_value *make_full(mctx *c, ir_node *at, double value) {
    ir_attr_init a = {.name = "value", .kind = IR_AK_FLOAT, .val = {.f = value}, .loc = at->loc};
    return build(c, at, IR_OP_FULL, NULL, 0, &a, 1, &at->out->type);
}

/* A full holding scalar v of at's dtype; NULL if `full`'s double value
 * attribute cannot hold it exactly (an integer beyond 2^53). */
static ir_value *make_full_scalar(mctx *c, ir_node *at, ir_scalar v) {
    if (ir_dtype_is_float(at->out->type.dtype)) return make_full(c, at, v.f);
    double x = (double)v.i;
    if (x >= 9223372036854775808.0 || (int64_t)x != v.i) return NULL;
    return make_full(c, at, x);
}

static bool same_dims(const ir_type *a, const ir_type *b) {
    return a->rank == b->rank && memcmp(a->dim, b->dim, sizeof(int64_t) * (size_t)a->rank) == 0;
}

/* x as a value of at's result type: itself, a full (literal x) or an
 * expand (x broadcast up); NULL if the dtype differs. */
static ir_value *coerce(mctx *c, ir_value *x, ir_node *at) {
    const ir_type *t = &at->out->type;
    if (x->type.dtype != t->dtype) return NULL;
    if (x->kind == IR_VAL_LITERAL) {
        return make_full_scalar(c, at, literal_scalar(x));
    }
    if (ir_type_eq(&x->type, t)) return x;
    ir_type b;
    if (!ir_broadcast_shape(&x->type, t, &b) || !same_dims(&b, t)) return NULL;
    ir_attr_init a = {.name = "shape", .kind = IR_AK_INTS, .val = {.n = t->rank, .ints = (int64_t *)t->dim},
                      .loc = at->loc};
    return build(c, at, IR_OP_EXPAND, &x, 1, &a, 1, t);
}

static bool same_operand(const ir_value *a, const ir_value *b) {
    if (a == b) return true;
    return a->kind == IR_VAL_LITERAL && b->kind == IR_VAL_LITERAL && a->type.dtype == b->type.dtype &&
           a->lit_is_int == b->lit_is_int && a->lit_i == b->lit_i &&
           memcmp(&a->lit_f, &b->lit_f, sizeof(double)) == 0;
}

/* Does value v compute op(in...) with at's attributes? */
static bool computes(const ir_value *v, const ir_node *at, ir_value *const *in) {
    if (v->kind != IR_VAL_NODE || v->def->op != at->op || v->def->nin != at->nin) return false;
    for (int k = 0; k < at->nin; k++)
        if (!same_operand(v->def->in[k], in[k])) return false;
    return at->op != IR_OP_MASKED_FILL || ir_attr_f(v->def, "value") == ir_attr_f(at, "value");
}

/* `at` with operand i replaced (the operand it replaces, when that already
 * computes the result); NULL unless the type stays. */
static ir_value *rebuild(mctx *c, ir_node *at, int i, ir_value *with) {
    ir_value *in[3];
    if (at->nin > 3 || (with->kind == IR_VAL_LITERAL && at->op != IR_OP_WHERE)) return NULL;
    memcpy(in, at->in, sizeof(ir_value *) * (size_t)at->nin);
    in[i] = with;
    if (computes(at->in[i], at, in) && ir_type_eq(&at->in[i]->type, &at->out->type)) return at->in[i];
    /* the result shape is the broadcast of the operands: check it first */
    ir_type b = {.rank = 0};
    int tensors = 0;
    for (int k = 0; k < at->nin; k++) {
        if (in[k]->kind == IR_VAL_LITERAL) continue;
        tensors += k > 0 || at->op != IR_OP_WHERE;
        if (!ir_broadcast_shape(&b, &in[k]->type, &b)) return NULL;
    }
    if (!tensors || !same_dims(&b, &at->out->type)) return NULL;
    ir_attr_init a[1];
    int na = 0;
    if (at->op == IR_OP_MASKED_FILL)
        a[na++] = (ir_attr_init){.name = "value", .kind = IR_AK_FLOAT, .val = {.f = ir_attr_f(at, "value")},
                                 .loc = at->loc};
    ir_value *r = build(c, at, at->op, in, at->nin, a, na, NULL);
    return r && ir_type_eq(&r->type, &at->out->type) ? r : NULL;
}

/* where and masked_fill seen alike: cond ? t : f.  masked_fill's t is its
 * fill value (no operand: ti = -1). */
typedef struct sel {
    ir_node *n;
    ir_value *cond;
    int ti, fi; /* operand indices of the branches */
} sel;

static bool as_select(ir_value *v, sel *s) {
    if (v->kind != IR_VAL_NODE) return false;
    ir_node *n = v->def;
    if (n->op == IR_OP_WHERE) *s = (sel){n, n->in[0], 1, 2};
    else if (n->op == IR_OP_MASKED_FILL) *s = (sel){n, n->in[1], -1, 0};
    else return false;
    return true;
}

/* A value for operand `side` of the outer select that equals branch value
 * b wherever `when` holds (b, broadcast into t): b's own branch when b is a
 * select whose condition `when` decides, or s when b is s + M (s - M) and
 * M is 0 wherever `when` holds.  NULL if none. */
static ir_value *simplify_branch(mctx *c, ir_value *b, pred *when, const ir_type *t, ir_node *at) {
    sel in;
    if (as_select(b, &in)) {
        pred *p = cond_pred(c, in.cond, t);
        if (!p) return NULL;
        int take = implies(c, when, p, t) ? in.ti : implies(c, when, p_not(c, p), t) ? in.fi : -2;
        if (take >= 0) return in.n->in[take];
        if (take == -1) return ir_graph_literal_f(c->g, ir_attr_f(in.n, "value"), at->loc); /* the fill */
        return NULL;
    }
    if (b->kind != IR_VAL_NODE || (b->def->op != IR_OP_ADD && b->def->op != IR_OP_SUB)) return NULL;
    ir_node *n = b->def;
    for (int i = 0; i < 2; i++) {
        if (i == 0 && n->op == IR_OP_SUB) continue; /* only x - M, not M - x */
        ir_value *m = n->in[i], *s = n->in[1 - i];
        if (m->kind == IR_VAL_LITERAL) continue;
        if (implies(c, when, p_equals(c, lifted(c, m, t), 0), t)) return s;
    }
    return NULL;
}

/* A replacement for n, or NULL.  `why` names the rewrite for --stats. */
static ir_value *rewrite(mctx *c, ir_node *n, const char **why) {
    const ir_type *t = &n->out->type;
    if (box_empty(t)) return NULL;
    ir_value *r;
    sel s;
    /* a value proved uniform becomes a full (fold sees only fulls and literals) */
    av *self = av_of(c, n->out);
    if (self && n->op != IR_OP_FULL) {
        *why = "uniform-values";
        if (self->k == AV_CONST) return make_full_scalar(c, n, self->c);
        decision d = self->k == AV_PRED ? decide(self->p, t) : D_MAYBE;
        if (d != D_MAYBE) return make_full(c, n, d == D_ALWAYS);
    }
    /* a predicate equal to one of its operands: and(causal, window >= S) */
    if (self && self->k == AV_PRED && ir_op_get(n->op)->category == IR_CAT_ELEMENTWISE) {
        for (int i = 0; i < n->nin; i++) {
            ir_value *a = n->in[i];
            if (a->kind == IR_VAL_LITERAL || a->type.dtype != FUSEC_DTYPE_BOOL) continue;
            if (decide(p_xor(c, self->p, cond_pred(c, a, t)), t) == D_NEVER && (r = coerce(c, a, n))) {
                *why = "predicates-simplified";
                return r;
            }
        }
    }
    if (as_select(n->out, &s)) {
        pred *p = cond_pred(c, s.cond, t);
        decision d = decide(p, t);
        if (d != D_MAYBE) {
            *why = "selects-decided";
            if (d == D_ALWAYS && s.ti < 0) return make_full(c, n, ir_attr_f(n, "value"));
            return coerce(c, n->in[d == D_ALWAYS ? s.ti : s.fi], n);
        }
        for (int side = 0; side < 2 && p; side++) {
            int i = side == 0 ? s.ti : s.fi;
            if (i < 0) continue;
            ir_value *b = simplify_branch(c, n->in[i], side == 0 ? p : p_not(c, p), t, n);
            if (b && (r = rebuild(c, n, i, b))) {
                *why = "branches-simplified";
                return r;
            }
        }
        return NULL;
    }
    switch (n->op) {
    case IR_OP_ADD:
    case IR_OP_SUB:
    case IR_OP_MUL: {
        double unit = n->op == IR_OP_MUL ? 1 : 0;
        for (int i = 1; i >= 0; i--) {
            if (i == 0 && n->op == IR_OP_SUB) break;
            if (everywhere(c, n->in[i], t, unit) && (r = coerce(c, n->in[1 - i], n))) {
                *why = n->op == IR_OP_MUL ? "mul-by-one" : "add-zero";
                return r;
            }
        }
        if (n->op != IR_OP_ADD) return NULL;
        /* add(add(s, M1), M2) with M1 == 0 or M1 == M2 == -inf everywhere */
        for (int i = 0; i < 2; i++) {
            ir_value *inner = n->in[i], *m2 = n->in[1 - i];
            if (inner->kind != IR_VAL_NODE || inner->def->op != IR_OP_ADD || m2->kind == IR_VAL_LITERAL) continue;
            av *a2 = lifted(c, m2, t);
            for (int j = 0; j < 2 && a2; j++) {
                ir_value *m1 = inner->def->in[j], *x = inner->def->in[1 - j];
                if (m1->kind == IR_VAL_LITERAL) continue;
                av *a1 = lifted(c, m1, t);
                pred *ok = p_or(c, p_equals(c, a1, 0),
                                p_and(c, p_equals(c, a1, -INFINITY), p_equals(c, a2, -INFINITY)));
                if (decide(ok, t) != D_ALWAYS) continue;
                /* the same mask value twice: the inner add is the result */
                r = m1 == m2 && ir_type_eq(&inner->type, t) ? inner : rebuild(c, n, i, x);
                if (r) {
                    *why = "masks-added-twice";
                    return r;
                }
            }
        }
        return NULL;
    }
    case IR_OP_TRIU:
    case IR_OP_TRIL: {
        decision d = decide(tri_keep(c, n, t), t);
        *why = "triangles-decided";
        if (d == D_ALWAYS) return n->in[0];
        if (d == D_NEVER) return make_full(c, n, 0);
        return NULL;
    }
    default: return NULL;
    }
}

bool pass_masks(ir_graph *g, pass_ctx *ctx) {
    mctx c = {.g = g};
    enum { NREWRITES = 8 };
    int64_t count[NREWRITES] = {0};
    static const char *const names[NREWRITES] = {"uniform-values", "predicates-simplified", "selects-decided",
                                                 "branches-simplified", "add-zero", "mul-by-one",
                                                 "masks-added-twice", "triangles-decided"};
    int first_id = g->next_id;
    bool ok = true;
    /* Rewrites place new nodes before the node they replace, where this
     * round's walk has already been: another round looks at them. */
    for (int round = 0; round < MAX_ROUNDS && ok; round++) {
        bool changed = false;
        free(c.memo); /* a fresh analysis of the changed graph */
        free(c.done);
        c.memo = NULL;
        c.done = NULL;
        c.cap = 0;
        ir_arena_free(&c.ar);
        for (ir_node *n = g->first; n && !c.oom; n = n->next) {
            /* in program order, so that av_of finds every operand's av
             * ready instead of recursing up long chains */
            av_of(&c, n->out);
            const char *why = NULL;
            ir_value *r = rewrite(&c, n, &why);
            if (!r || r == n->out) continue;
            ir_replace_uses(g, n->out, r);
            changed = true;
            for (int k = 0; k < NREWRITES; k++)
                if (strcmp(why, names[k]) == 0) count[k]++;
        }
        if (c.oom || !changed) break;
        ok = pass_dce(g, ctx);
    }
    free(c.memo);
    free(c.done);
    ir_arena_free(&c.ar);
    if (c.oom) {
        ir_error(ctx->diag, (ir_loc){0}, "masks: out of memory");
        return false;
    }
    for (int k = 0; k < NREWRITES; k++) pass_stat(ctx, names[k], count[k]);
    /* a node built for a rewrite that then did not apply is dead too */
    return ok && (g->next_id == first_id || pass_dce(g, ctx));
}
