/*
 * memplan.c - memory planning: give every intermediate (TEMP) buffer of a
 * plan a slot in one arena, reusing memory whose value has died.
 *
 * Live ranges.  Kernels run in schedule order, so a buffer is live from the
 * kernel that writes it (def) to the last kernel that reads it (last_use),
 * both inclusive: a buffer read by kernel K is still live while K writes
 * its outputs, so K's inputs and outputs never share memory by accident.
 * A buffer nobody reads is live at its def alone; graph results live to
 * the last kernel.  INPUT buffers are the caller's memory and OUTPUT
 * buffers get their own allocations (the caller keeps them), so only TEMPs
 * are placed (the others get offset -1).
 *
 * In-place reuse.  A TEMP `o` written by a POINTWISE kernel K (or by the
 * elementwise epilogue of a LIBRARY kernel) may take over the slot of a
 * TEMP input `t` of K when t dies at K, both have the kernel's domain as
 * their shape (hence the same element count) and the same byte size, and
 * K reads t only at the index it is writing.  The last condition holds
 * when every body node that reads t is elementwise and is itself evaluated
 * only at the domain index: a node is, when its shape is the domain and
 * every body node consuming it is an elementwise node with the same
 * property (no broadcast, transpose, slice, reduction or library operand
 * sits between t and the outputs).  An executor that computes all of an
 * element's outputs before storing them (after the library result, if
 * any) then reads t[i] before anything overwrites it, and never reads
 * t[i] again.  REDUCE kernels are left out: a row kernel may make several
 * passes over its row, and a generated one need not keep "read t[i], then
 * write o[i]" in one place.  The pair is recorded in o->reuses; o joins
 * t's slot, whose live range grows to o's end (so a chain of in-place
 * kernels shares one slot).
 *
 * Placement.  The remaining slots (each a chain of in-place buffers) are
 * placed greedily, largest first (ties: earlier def first, then buffer id,
 * so plans are deterministic).  A slot may go into any gap left between
 * the already placed slots whose live ranges overlap its own; it takes the
 * smallest gap that fits (best fit, lowest offset on ties), else the top,
 * above the highest of them.  Offsets are multiples of PLAN_ARENA_ALIGN.
 * Every slot then ends at most at the sum of the aligned sizes placed so
 * far (a gap ends below a slot that already satisfies this, the top starts
 * at one), so arena_bytes (the highest slot end) never exceeds naive_bytes
 * (every TEMP in its own aligned allocation).
 *
 * memplan_check re-derives the invariants from the kernels' in/out lists
 * and the buffers' recorded fields; the unit tests run it on hand-made and
 * random plans, and it is cheap enough to run after every planning.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "passes/memplan.h"

static int64_t align_up(int64_t x) {
    return (x + PLAN_ARENA_ALIGN - 1) / PLAN_ARENA_ALIGN * PLAN_ARENA_ALIGN;
}

/* The last kernel at which b is live (a buffer nobody reads dies at its def). */
static int live_end(const plan_buf *b) { return b->last_use > b->def ? b->last_use : b->def; }

static bool live_together(const plan_buf *a, const plan_buf *b) {
    return a->def <= live_end(b) && b->def <= live_end(a);
}

static ir_loc plan_loc(const plan *p) { return p->g ? p->g->loc : (ir_loc){0, 0}; }

/* "buffer 3 (%t)" for messages; the result lives in s. */
static const char *buf_name(ir_str *s, const plan_buf *b) {
    ir_str_printf(s, "buffer %d", b->id);
    if (b->value) {
        ir_str_puts(s, " (");
        ir_value_ref(s, b->value);
        ir_str_putc(s, ')');
    }
    return s->buf ? s->buf : "buffer";
}

static void buf_error(const plan *p, ir_diag *d, const plan_buf *b, const char *what, int k) {
    ir_str s = {0};
    ir_error(d, plan_loc(p), "memory planning: %s %s kernel %d", buf_name(&s, b), what, k);
    ir_str_free(&s);
}

static bool valid_id(const plan *p, ir_diag *d, int id, int k) {
    if (id >= 0 && id < p->nbufs) return true;
    ir_error(d, plan_loc(p), "memory planning: kernel %d names buffer %d of %d", k, id, p->nbufs);
    return false;
}

/* ---- live ranges ------------------------------------------------------ */

static bool live_ranges(plan *p, ir_diag *d) {
    for (int i = 0; i < p->nbufs; i++) {
        plan_buf *b = &p->bufs[i];
        b->def = b->last_use = -1;
        b->offset = -1;
        b->reuses = -1;
    }
    bool ok = true;
    for (int k = 0; k < p->nkernels; k++) {
        const plan_kernel *kn = &p->kernels[k];
        for (int j = 0; j < kn->nout; j++) {
            if (!valid_id(p, d, kn->out[j], k)) return false;
            plan_buf *b = &p->bufs[kn->out[j]];
            if (b->kind == PLAN_BUF_INPUT) {
                buf_error(p, d, b, "is an input but is written by", k);
                ok = false;
            } else if (b->def >= 0 && b->def != k) {
                buf_error(p, d, b, "is written twice, the second time by", k);
                ok = false;
            }
            b->def = k;
        }
    }
    for (int k = 0; k < p->nkernels; k++) {
        const plan_kernel *kn = &p->kernels[k];
        for (int j = 0; j < kn->nin; j++) {
            if (!valid_id(p, d, kn->in[j], k)) return false;
            plan_buf *b = &p->bufs[kn->in[j]];
            if (b->kind != PLAN_BUF_INPUT && (b->def < 0 || b->def >= k)) {
                buf_error(p, d, b, "is read before it is written, by", k);
                ok = false;
            }
            if (k > b->last_use) b->last_use = k;
        }
    }
    for (int i = 0; p->g && i < p->g->nresults; i++) {
        int id = plan_buf_of(p, p->g->results[i]);
        if (id >= 0 && p->nkernels > 0) p->bufs[id].last_use = p->nkernels - 1;
    }
    for (int i = 0; i < p->nbufs; i++) {
        plan_buf *b = &p->bufs[i];
        if (b->kind != PLAN_BUF_INPUT && b->def < 0) {
            ir_str s = {0};
            ir_error(d, plan_loc(p), "memory planning: %s is never written", buf_name(&s, b));
            ir_str_free(&s);
            ok = false;
        }
        if (b->bytes < 0) {
            ir_str s = {0};
            ir_error(d, plan_loc(p), "memory planning: %s has a negative size", buf_name(&s, b));
            ir_str_free(&s);
            ok = false;
        }
    }
    return ok;
}

/* ---- in-place reuse ------------------------------------------------------ */

static bool is_domain(const ir_type *t, const ir_type *dom) {
    if (t->rank != dom->rank) return false;
    for (int i = 0; i < t->rank; i++)
        if (t->dim[i] != dom->dim[i]) return false;
    return true;
}

/* For the body of kernel kn, mark in at_index[j] whether body
 * node j is evaluated only at the domain index (see the header comment).
 * `blocked` is scratch indexed by value id (all false on entry and exit). */
static void index_identity(const plan_kernel *kn, bool *at_index, bool *blocked) {
    for (int j = kn->nnodes - 1; j >= 0; j--) {
        const ir_node *n = kn->nodes[j];
        at_index[j] = is_domain(&n->out->type, &kn->domain) && !blocked[n->out->id];
        bool ew = ir_op_get(n->op)->category == IR_CAT_ELEMENTWISE;
        for (int i = 0; i < n->nin; i++)
            if (!(ew && at_index[j]) && n->in[i]->kind != IR_VAL_LITERAL) blocked[n->in[i]->id] = true;
    }
    for (int j = 0; j < kn->nnodes; j++) {
        const ir_node *n = kn->nodes[j];
        blocked[n->out->id] = false;
        for (int i = 0; i < n->nin; i++)
            if (n->in[i]->kind != IR_VAL_LITERAL) blocked[n->in[i]->id] = false;
    }
}

/* Does kernel kn read value v only through body nodes evaluated at the
 * domain index? */
static bool read_at_index(const plan_kernel *kn, const bool *at_index, const ir_value *v) {
    for (int j = 0; j < kn->nnodes; j++) {
        const ir_node *n = kn->nodes[j];
        for (int i = 0; i < n->nin; i++)
            if (n->in[i] == v && !(at_index[j] && ir_op_get(n->op)->category == IR_CAT_ELEMENTWISE))
                return false;
    }
    return true;
}

/* Scratch of the in-place test: at_index per body node (the longest body),
 * blocked per value id (all false between uses). */
typedef struct mp_scratch {
    bool *at_index, *blocked;
} mp_scratch;

static bool scratch_init(mp_scratch *s, const plan *p) {
    int maxnodes = 1, nvals = p->g ? p->g->next_id : 1;
    for (int k = 0; k < p->nkernels; k++)
        if (p->kernels[k].nnodes > maxnodes) maxnodes = p->kernels[k].nnodes;
    s->at_index = malloc((size_t)maxnodes * sizeof *s->at_index);
    s->blocked = calloc((size_t)(nvals > 0 ? nvals : 1), sizeof *s->blocked);
    return s->at_index && s->blocked;
}

static void scratch_free(mp_scratch *s) {
    free(s->at_index);
    free(s->blocked);
}

/* As far as kernel kn's reads go, may o overwrite t in place?  Not in a
 * REDUCE kernel; both must have the domain's shape and the same size, and
 * kn must read t only at the index it writes.  Liveness is the caller's. */
static bool index_safe(const plan_kernel *kn, const plan_buf *t, const plan_buf *o, mp_scratch *s) {
    if (kn->kind == PLAN_REDUCE || !t->value || !o->value || t->bytes != o->bytes) return false;
    if (!is_domain(&o->value->type, &kn->domain) || !is_domain(&t->value->type, &kn->domain))
        return false;
    index_identity(kn, s->at_index, s->blocked);
    return read_at_index(kn, s->at_index, t->value);
}

/* One arena slot: a TEMP, or a chain of TEMPs written in place. */
typedef struct mp_slot {
    int64_t size, offset;
    int start, end; /* kernels at which the slot is live */
    int first;      /* the first buffer of the chain (ordering ties) */
    int taken_at;   /* kernel that took it over in place, or -1 */
    int self;       /* index in the unsorted slot array */
} mp_slot;

/* Find, for TEMP output o of kernel k, an input that dies at k and whose
 * slot o can take over; -1 if none. */
static int inplace_candidate(const plan *p, int k, const plan_buf *o, const int *slot_of,
                             const mp_slot *slots, mp_scratch *s) {
    const plan_kernel *kn = &p->kernels[k];
    for (int j = 0; j < kn->nin; j++) {
        const plan_buf *t = &p->bufs[kn->in[j]];
        if (t->kind != PLAN_BUF_TEMP || live_end(t) != k || slots[slot_of[t->id]].taken_at == k) continue;
        if (index_safe(kn, t, o, s)) return t->id;
    }
    return -1;
}

/* ---- placement ---------------------------------------------------------- */

typedef struct mp_span {
    int64_t lo, hi;
} mp_span;

static int span_cmp(const void *a, const void *b) {
    const mp_span *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Placement order: largest first, then earliest def, then buffer id. */
static int slot_cmp(const void *a, const void *b) {
    const mp_slot *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    if (x->start != y->start) return x->start < y->start ? -1 : 1;
    return x->first < y->first ? -1 : x->first > y->first;
}

/* Place the slots s[0..n), in that order: each into the best-fitting gap
 * among the slots before it whose live ranges overlap its own. */
static void place(mp_slot *s, int n, mp_span *scratch) {
    for (int i = 0; i < n; i++) {
        if (s[i].size == 0) {
            s[i].offset = 0;
            continue;
        }
        int m = 0;
        for (int j = 0; j < i; j++)
            if (s[j].size > 0 && s[j].start <= s[i].end && s[i].start <= s[j].end)
                scratch[m++] = (mp_span){s[j].offset, s[j].offset + s[j].size};
        qsort(scratch, (size_t)m, sizeof *scratch, span_cmp);
        int64_t cur = 0, best = -1, best_gap = 0;
        for (int j = 0; j < m; j++) {
            int64_t gap = scratch[j].lo - cur;
            if (gap >= s[i].size && (best < 0 || gap < best_gap)) best = cur, best_gap = gap;
            int64_t next = align_up(scratch[j].hi);
            if (next > cur) cur = next;
        }
        s[i].offset = best >= 0 ? best : cur;
    }
}

bool pass_memplan(plan *p, ir_diag *d) {
    if (!live_ranges(p, d)) return false;
    size_t nb = (size_t)(p->nbufs > 0 ? p->nbufs : 1);
    int *slot_of = malloc(nb * sizeof *slot_of);
    mp_slot *slots = malloc(nb * sizeof *slots), *sorted = malloc(nb * sizeof *sorted);
    mp_span *spans = malloc(nb * sizeof *spans);
    mp_scratch scratch;
    bool ok = scratch_init(&scratch, p) && slot_of && slots && sorted && spans;
    if (!ok) ir_error(d, plan_loc(p), "memory planning: out of memory");

    int nslots = 0;
    for (int k = 0; ok && k < p->nkernels; k++) {
        const plan_kernel *kn = &p->kernels[k];
        for (int j = 0; j < kn->nout; j++) {
            plan_buf *o = &p->bufs[kn->out[j]];
            if (o->kind != PLAN_BUF_TEMP) continue;
            int t = inplace_candidate(p, k, o, slot_of, slots, &scratch);
            if (t >= 0) {
                mp_slot *s = &slots[slot_of[t]];
                slot_of[o->id] = slot_of[t];
                s->taken_at = k;
                s->end = live_end(o);
                o->reuses = t;
            } else {
                slot_of[o->id] = nslots;
                slots[nslots] = (mp_slot){.size = o->bytes, .start = o->def, .end = live_end(o),
                                          .first = o->id, .taken_at = -1, .self = nslots};
                nslots++;
            }
        }
    }
    if (ok) {
        if (nslots > 0) memcpy(sorted, slots, (size_t)nslots * sizeof *slots);
        qsort(sorted, (size_t)nslots, sizeof *sorted, slot_cmp);
        place(sorted, nslots, spans);
        p->arena_bytes = p->naive_bytes = 0;
        for (int i = 0; i < nslots; i++) {
            slots[sorted[i].self].offset = sorted[i].offset;
            if (sorted[i].size > 0 && sorted[i].offset + sorted[i].size > p->arena_bytes)
                p->arena_bytes = sorted[i].offset + sorted[i].size;
        }
        for (int i = 0; i < p->nbufs; i++) {
            plan_buf *b = &p->bufs[i];
            if (b->kind != PLAN_BUF_TEMP) continue;
            b->offset = slots[slot_of[i]].offset;
            p->naive_bytes += align_up(b->bytes);
        }
    }
    free(slot_of), free(slots), free(sorted), free(spans);
    scratch_free(&scratch);
    return ok;
}

/* ---- the checker ---------------------------------------------------------- */

static bool check_fail(const plan *p, ir_diag *d, const plan_buf *b, const char *fmt, ...)
    IR_PRINTF(4, 5);

/* Report one violation: "memory plan: buffer 3 (%t): WHAT". */
static bool check_fail(const plan *p, ir_diag *d, const plan_buf *b, const char *fmt, ...) {
    ir_str s = {0};
    ir_str_puts(&s, "memory plan: ");
    if (b) {
        buf_name(&s, b);
        ir_str_puts(&s, ": ");
    }
    va_list ap;
    va_start(ap, fmt);
    ir_str_vprintf(&s, fmt, ap);
    va_end(ap);
    ir_error(d, plan_loc(p), "%s", s.buf ? s.buf : "out of memory");
    ir_str_free(&s);
    return false;
}

/* Is b written in place over a, as pass_memplan may declare it? */
static bool inplace_pair(const plan *p, const plan_buf *a, const plan_buf *b, mp_scratch *s) {
    return b->reuses == a->id && b->def >= 0 && b->def < p->nkernels && a->offset == b->offset &&
           live_end(a) == b->def && index_safe(&p->kernels[b->def], a, b, s);
}

bool memplan_check(const plan *p, ir_diag *d) {
    mp_scratch scratch;
    if (!scratch_init(&scratch, p)) {
        scratch_free(&scratch);
        return check_fail(p, d, NULL, "out of memory");
    }
    bool ok = true;
    for (int k = 0; k < p->nkernels; k++) {
        const plan_kernel *kn = &p->kernels[k];
        for (int j = 0; j < kn->nout; j++) {
            if (!valid_id(p, d, kn->out[j], k)) {
                scratch_free(&scratch);
                return false;
            }
            const plan_buf *b = &p->bufs[kn->out[j]];
            if (b->def != k) ok = check_fail(p, d, b, "written by kernel %d but def is %d", k, b->def);
        }
        for (int j = 0; j < kn->nin; j++) {
            if (!valid_id(p, d, kn->in[j], k)) {
                scratch_free(&scratch);
                return false;
            }
            const plan_buf *b = &p->bufs[kn->in[j]];
            if (b->kind != PLAN_BUF_INPUT && !(b->def < k && live_end(b) >= k))
                ok = check_fail(p, d, b, "read by kernel %d outside its live range [%d, %d]", k,
                                   b->def, live_end(b));
        }
    }
    int64_t naive = 0;
    for (int i = 0; i < p->nbufs; i++) {
        const plan_buf *b = &p->bufs[i];
        if (b->kind != PLAN_BUF_TEMP) {
            if (b->offset != -1) ok = check_fail(p, d, b, "not a TEMP but has offset %lld", (long long)b->offset);
            continue;
        }
        naive += align_up(b->bytes);
        if (b->offset < 0 || b->offset % PLAN_ARENA_ALIGN != 0)
            ok = check_fail(p, d, b, "offset %lld is not an aligned arena offset", (long long)b->offset);
        else if (b->bytes > 0 && b->offset + b->bytes > p->arena_bytes)
            ok = check_fail(p, d, b, "ends beyond the arena (%lld bytes)", (long long)p->arena_bytes);
        if (b->reuses >= 0 && (b->reuses >= p->nbufs || p->bufs[b->reuses].kind != PLAN_BUF_TEMP ||
                               !inplace_pair(p, &p->bufs[b->reuses], b, &scratch)))
            ok = check_fail(p, d, b, "declares an invalid in-place reuse of buffer %d", b->reuses);
        for (int j = 0; j < i; j++) {
            const plan_buf *a = &p->bufs[j];
            if (a->kind != PLAN_BUF_TEMP || a->bytes == 0 || b->bytes == 0 || !live_together(a, b))
                continue;
            bool disjoint = a->offset + a->bytes <= b->offset || b->offset + b->bytes <= a->offset;
            if (!disjoint && !inplace_pair(p, a, b, &scratch) && !inplace_pair(p, b, a, &scratch))
                ok = check_fail(p, d, b, "overlaps buffer %d, live at the same time, in the arena", a->id);
        }
    }
    if (naive != p->naive_bytes)
        ok = check_fail(p, d, NULL, "naive_bytes is %lld, should be %lld", (long long)p->naive_bytes,
                        (long long)naive);
    if (p->arena_bytes > p->naive_bytes)
        ok = check_fail(p, d, NULL, "arena (%lld bytes) exceeds naive bytes (%lld)",
                        (long long)p->arena_bytes, (long long)p->naive_bytes);
    scratch_free(&scratch);
    return ok;
}
