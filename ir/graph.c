/*
 * graph.c - graphs, values and nodes, and ir_build, the one constructor of
 * nodes.
 *
 * ir_build is where the parser, the tracer and every pass meet the op
 * table.  In order it checks: the operand count, the attributes (known
 * names, no duplicates, kinds, required ones present; defaults filled in),
 * the dtype of literal operands (the dtype of the op's first tensor operand,
 * or for `where` of its first tensor branch), the dtype class of operand 0,
 * and finally the op's own shape/dtype rule, which sets the result type.  A
 * declared result type is compared with the inferred one.  Nothing is linked
 * into the graph until every check has passed.
 */
#include <math.h>
#include <string.h>

#include "ir/ir.h"

/* ---- types ---------------------------------------------------------- */

int64_t ir_type_numel(const ir_type *t) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= t->dim[i];
    return n;
}

int64_t ir_type_bytes(const ir_type *t) { return ir_type_numel(t) * (int64_t)ir_dtype_size(t->dtype); }

bool ir_type_eq(const ir_type *a, const ir_type *b) {
    if (a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i]) return false;
    return true;
}

void ir_type_print(ir_str *s, const ir_type *t) {
    ir_str_printf(s, "%s[", ir_dtype_name(t->dtype));
    for (int i = 0; i < t->rank; i++) ir_str_printf(s, i ? ", %lld" : "%lld", (long long)t->dim[i]);
    ir_str_putc(s, ']');
}

bool ir_broadcast_shape(const ir_type *a, const ir_type *b, ir_type *out) {
    int r = a->rank > b->rank ? a->rank : b->rank;
    ir_type t = *out;
    t.rank = r;
    for (int i = 0; i < r; i++) {
        int ia = a->rank - r + i, ib = b->rank - r + i;
        int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
        if (da != db && da != 1 && db != 1) return false;
        t.dim[i] = da == 1 ? db : da;
    }
    *out = t;
    return true;
}

bool ir_norm_axis(int64_t axis, int rank, int *out) {
    if (axis < -rank || axis >= rank) return false;
    *out = (int)(axis < 0 ? axis + rank : axis);
    return true;
}

/* ---- graphs and values --------------------------------------------- */

ir_graph *ir_graph_new(const char *name) {
    ir_arena a = {0};
    ir_graph *g = ir_arena_alloc(&a, sizeof *g);
    if (!g) return NULL;
    g->arena = a;
    g->name = ir_arena_strdup(&g->arena, name ? name : "main");
    if (!g->name) {
        ir_graph_free(g);
        return NULL;
    }
    return g;
}

void ir_graph_free(ir_graph *g) {
    if (!g) return;
    ir_arena a = g->arena; /* g itself lives in the arena */
    ir_arena_free(&a);
}

static ir_value *new_value(ir_graph *g, ir_value_kind kind, ir_loc loc) {
    ir_value *v = ir_arena_alloc(&g->arena, sizeof *v);
    if (!v) return NULL;
    v->kind = kind;
    v->id = g->next_id++;
    v->loc = loc;
    return v;
}

/* Append to an arena-held pointer array, doubling its capacity as needed
 * (the old block stays in the arena: the waste is bounded by the total). */
static bool push_ptr(ir_graph *g, ir_value ***arr, int *n, int *cap, ir_value *v) {
    if (*n == *cap) {
        int nc = *cap ? *cap * 2 : 8;
        ir_value **na = ir_arena_alloc(&g->arena, sizeof(ir_value *) * (size_t)nc);
        if (!na) return false;
        if (*n) memcpy(na, *arr, sizeof(ir_value *) * (size_t)*n);
        *arr = na;
        *cap = nc;
    }
    (*arr)[(*n)++] = v;
    return true;
}

ir_value *ir_graph_add_param(ir_graph *g, const char *name, const ir_type *t, ir_loc loc) {
    ir_value *v = new_value(g, IR_VAL_PARAM, loc);
    if (!v) return NULL;
    v->name = name ? ir_arena_strdup(&g->arena, name) : NULL;
    v->type = *t;
    v->param_index = g->nparams;
    if ((name && !v->name) || !push_ptr(g, &g->params, &g->nparams, &g->params_cap, v)) return NULL;
    return v;
}

ir_value *ir_graph_literal_f(ir_graph *g, double x, ir_loc loc) {
    ir_value *v = new_value(g, IR_VAL_LITERAL, loc);
    if (!v) return NULL;
    v->lit_f = x;
    v->type.dtype = FUSEC_DTYPE_F64;
    return v;
}

ir_value *ir_graph_literal_i(ir_graph *g, int64_t x, bool is_bool, ir_loc loc) {
    ir_value *v = new_value(g, IR_VAL_LITERAL, loc);
    if (!v) return NULL;
    v->lit_is_int = true;
    v->lit_is_bool = is_bool;
    v->lit_i = x;
    v->lit_f = (double)x;
    v->type.dtype = is_bool ? FUSEC_DTYPE_BOOL : FUSEC_DTYPE_I64;
    return v;
}

bool ir_graph_add_result(ir_graph *g, ir_value *v) { return push_ptr(g, &g->results, &g->nresults, &g->results_cap, v); }

void ir_describe(ir_str *s, const ir_value *v) {
    if (v->kind == IR_VAL_LITERAL) {
        ir_str_puts(s, "literal ");
        if (v->lit_is_bool)
            ir_str_puts(s, v->lit_i ? "true" : "false");
        else if (v->lit_is_int)
            ir_str_printf(s, "%lld", (long long)v->lit_i);
        else
            ir_print_double(s, v->lit_f);
        return;
    }
    ir_value_ref(s, v);
    ir_str_puts(s, " (");
    ir_type_print(s, &v->type);
    ir_str_putc(s, ')');
}

/* ---- attributes ----------------------------------------------------- */

static const ir_attr *find_attr(const ir_node *n, const char *name, const ir_attr_spec **spec) {
    int i = ir_op_attr_index(n->op, name);
    FC_ASSERT(i >= 0);
    if (spec) *spec = &ir_op_get(n->op)->attrs[i];
    return &n->attrs[i];
}

bool ir_attr_has(const ir_node *n, const char *name) {
    const ir_attr_spec *sp;
    const ir_attr *a = find_attr(n, name, &sp);
    return a->set || sp->presence == IR_AP_DEFAULT;
}
int64_t ir_attr_i(const ir_node *n, const char *name) { return find_attr(n, name, NULL)->i; }
double ir_attr_f(const ir_node *n, const char *name) { return find_attr(n, name, NULL)->f; }
const char *ir_attr_s(const ir_node *n, const char *name) { return find_attr(n, name, NULL)->s; }
ir_dtype ir_attr_dt(const ir_node *n, const char *name) { return find_attr(n, name, NULL)->dt; }
const int64_t *ir_attr_ints(const ir_node *n, const char *name, int *count) {
    const ir_attr *a = find_attr(n, name, NULL);
    if (count) *count = a->n;
    return a->ints;
}
const double *ir_attr_floats(const ir_node *n, const char *name, int *count) {
    const ir_attr *a = find_attr(n, name, NULL);
    if (count) *count = a->n;
    return a->floats;
}

/* Copy one given attribute into its slot, converting int -> float where
 * the spec asks for a number, and a single integer -> a one-element list. */
static bool set_attr(ir_graph *g, const ir_attr_spec *sp, const ir_attr_init *ai, ir_attr *slot,
                     const char *opname, ir_diag *d) {
    ir_attr_kind want = sp->kind, got = ai->kind;
    bool ok = want == got || (want == IR_AK_FLOAT && got == IR_AK_INT) ||
              (want == IR_AK_INTS && got == IR_AK_INT) ||
              (want == IR_AK_FLOATS && (got == IR_AK_INTS || got == IR_AK_FLOAT || got == IR_AK_INT));
    if (!ok) {
        ir_error(d, ai->loc, "%s: attribute '%s' must be %s, got %s", opname, sp->name,
                 ir_attr_kind_name(want), ir_attr_kind_name(got));
        return false;
    }
    *slot = ai->val;
    slot->set = true;
    if (want == IR_AK_FLOAT && got == IR_AK_INT) slot->f = (double)ai->val.i;
    if (want == IR_AK_STR) {
        slot->s = ir_arena_strdup(&g->arena, ai->val.s ? ai->val.s : "");
        if (!slot->s) return false;
    }
    if (want == IR_AK_INTS) {
        int n = got == IR_AK_INT ? 1 : ai->val.n;
        const int64_t *src = got == IR_AK_INT ? &ai->val.i : ai->val.ints;
        slot->n = n;
        slot->ints = ir_arena_alloc(&g->arena, sizeof(int64_t) * (size_t)(n ? n : 1));
        if (!slot->ints) return false;
        if (n) memcpy(slot->ints, src, sizeof(int64_t) * (size_t)n);
    }
    if (want == IR_AK_FLOATS) {
        int n = (got == IR_AK_INTS || got == IR_AK_FLOATS) ? ai->val.n : 1;
        slot->n = n;
        slot->floats = ir_arena_alloc(&g->arena, sizeof(double) * (size_t)(n ? n : 1));
        if (!slot->floats) return false;
        for (int i = 0; i < n; i++) {
            if (got == IR_AK_INTS) slot->floats[i] = (double)ai->val.ints[i];
            else if (got == IR_AK_FLOATS) slot->floats[i] = ai->val.floats[i];
            else if (got == IR_AK_INT) slot->floats[i] = (double)ai->val.i;
            else slot->floats[i] = ai->val.f;
        }
        slot->ints = NULL;
    }
    return true;
}

static bool fill_default(ir_graph *g, const ir_attr_spec *sp, ir_attr *slot) {
    slot->set = false;
    slot->i = sp->i;
    slot->f = sp->f;
    slot->s = sp->s;
    slot->n = sp->n;
    if (sp->kind == IR_AK_INTS && sp->n) {
        slot->ints = ir_arena_alloc(&g->arena, sizeof(int64_t) * (size_t)sp->n);
        if (!slot->ints) return false;
        memcpy(slot->ints, sp->ints, sizeof(int64_t) * (size_t)sp->n);
    }
    return true;
}

/* ---- literals ------------------------------------------------------- */

/* Can literal v be represented in dtype dt?  Floats take any number
 * (rounded like a store); integers need an integral value in range; bool
 * takes true/false (or 0/1). */
bool ir_value_fits(double x, ir_dtype dt) {
    ir_value v = {.kind = IR_VAL_LITERAL, .lit_f = x};
    return ir_literal_fits(&v, dt);
}

bool ir_literal_fits(const ir_value *v, ir_dtype dt) {
    if (ir_dtype_is_float(dt)) return !v->lit_is_bool;
    double x = v->lit_f;
    if (!v->lit_is_int && (isnan(x) || isinf(x) || x != floor(x))) return false;
    if (dt == FUSEC_DTYPE_BOOL) return v->lit_is_int ? (v->lit_i == 0 || v->lit_i == 1) : (x == 0 || x == 1);
    if (v->lit_is_bool) return false;
    int64_t lo, hi;
    switch (dt) {
    case FUSEC_DTYPE_I32: lo = INT32_MIN, hi = INT32_MAX; break;
    case FUSEC_DTYPE_I16: lo = INT16_MIN, hi = INT16_MAX; break;
    case FUSEC_DTYPE_I8: lo = INT8_MIN, hi = INT8_MAX; break;
    case FUSEC_DTYPE_U8: lo = 0, hi = 255; break;
    default: lo = INT64_MIN, hi = INT64_MAX; break;
    }
    if (v->lit_is_int) return v->lit_i >= lo && v->lit_i <= hi;
    return x >= (double)lo && x <= (double)hi && x < 9223372036854775807.0;
}

static ir_value *typed_literal(ir_graph *g, const ir_value *lit, ir_dtype dt) {
    ir_value *v = new_value(g, IR_VAL_LITERAL, lit->loc);
    if (!v) return NULL;
    v->lit_is_int = lit->lit_is_int;
    v->lit_is_bool = lit->lit_is_bool;
    v->lit_i = lit->lit_i;
    if (!lit->lit_is_int && !ir_dtype_is_float(dt)) {
        v->lit_is_int = true; /* an integral float literal in an integer context */
        v->lit_i = (int64_t)lit->lit_f;
    }
    v->lit_f = lit->lit_f;
    v->type.dtype = dt;
    v->type.rank = 0;
    return v;
}

/* ---- ir_build ------------------------------------------------------- */

ir_value *ir_build(ir_graph *g, ir_op op, ir_value *const *in, int nin, const ir_attr_init *attrs,
                   int nattrs, const ir_type *declared, ir_loc loc, ir_diag *d) {
    const ir_op_info *info = ir_op_get(op);
    const char *name = info->name;

    if (nin < info->min_in || (info->max_in >= 0 && nin > info->max_in)) {
        if (info->max_in < 0)
            ir_error(d, loc, "%s: expected at least %d operand%s, got %d", name, info->min_in,
                     info->min_in == 1 ? "" : "s", nin);
        else if (info->min_in == info->max_in)
            ir_error(d, loc, "%s: expected %d operand%s, got %d", name, info->min_in,
                     info->min_in == 1 ? "" : "s", nin);
        else
            ir_error(d, loc, "%s: expected %d to %d operands, got %d", name, info->min_in,
                     info->max_in, nin);
        return NULL;
    }
    if (nin > 0 && nin > 4096) {
        ir_error(d, loc, "%s: too many operands (%d)", name, nin);
        return NULL;
    }

    ir_node *n = ir_arena_alloc(&g->arena, sizeof *n);
    ir_value **ins = ir_arena_alloc(&g->arena, sizeof(ir_value *) * (size_t)(nin ? nin : 1));
    ir_attr *slots = ir_arena_alloc(&g->arena, sizeof(ir_attr) * (size_t)(info->nattrs ? info->nattrs : 1));
    ir_value *out = new_value(g, IR_VAL_NODE, loc);
    if (!n || !ins || !slots || !out) {
        ir_error(d, loc, "%s: out of memory", name);
        return NULL;
    }

    /* attributes */
    bool ok = true;
    for (int i = 0; i < nattrs; i++) {
        int k = ir_op_attr_index(op, attrs[i].name);
        if (k < 0) {
            ir_str names = {0};
            for (int j = 0; j < info->nattrs; j++)
                ir_str_printf(&names, "%s%s", j ? ", " : "", info->attrs[j].name);
            if (info->nattrs)
                ir_error(d, attrs[i].loc, "%s: unknown attribute '%s' (expected one of: %s)", name,
                         attrs[i].name, names.buf);
            else
                ir_error(d, attrs[i].loc, "%s: unknown attribute '%s' (%s takes no attributes)",
                         name, attrs[i].name, name);
            ir_str_free(&names);
            ok = false;
            continue;
        }
        if (slots[k].set) {
            ir_error(d, attrs[i].loc, "%s: attribute '%s' given twice", name, attrs[i].name);
            ok = false;
            continue;
        }
        if (!set_attr(g, &info->attrs[k], &attrs[i], &slots[k], name, d)) ok = false;
    }
    for (int k = 0; k < info->nattrs; k++) {
        const ir_attr_spec *sp = &info->attrs[k];
        if (slots[k].set) continue;
        if (sp->presence == IR_AP_REQUIRED) {
            ir_error(d, loc, "%s: missing required attribute '%s' (%s)", name, sp->name,
                     ir_attr_kind_name(sp->kind));
            ok = false;
        } else if (sp->presence == IR_AP_DEFAULT && !fill_default(g, sp, &slots[k])) {
            ok = false;
        }
    }
    if (!ok) return NULL;

    /* literal operands take the dtype of the op's reference tensor operand */
    const ir_value *ref = NULL;
    for (int i = op == IR_OP_WHERE ? 1 : 0; i < nin && !ref; i++)
        if (in[i]->kind != IR_VAL_LITERAL) ref = in[i];
    for (int i = 0; i < nin; i++) {
        ir_value *v = in[i];
        if (v->kind == IR_VAL_LITERAL) {
            ir_dtype dt;
            if ((op == IR_OP_WHERE && i == 0) || (op == IR_OP_MASKED_FILL && i == 1)) {
                dt = FUSEC_DTYPE_BOOL; /* a condition or mask */
            } else if (ref) {
                dt = ref->type.dtype;
            } else {
                ir_error(d, v->loc, "%s: cannot tell the dtype of a literal with no tensor operand beside it", name);
                return NULL;
            }
            if (!ir_literal_fits(v, dt)) {
                ir_str s = {0};
                ir_describe(&s, v);
                ir_error(d, v->loc, "%s: %s cannot be represented in %s", name, s.buf, ir_dtype_name(dt));
                ir_str_free(&s);
                return NULL;
            }
            v = typed_literal(g, v, dt);
            if (!v) return NULL;
        }
        ins[i] = v;
    }
    if (nin > 0 && !ir_dtclass_has(info->dtclass, ins[0]->type.dtype)) {
        ir_str s = {0};
        ir_describe(&s, ins[0]);
        ir_error(d, loc, "%s: expected %s, got %s", name, ir_dtclass_desc(info->dtclass), s.buf);
        ir_str_free(&s);
        return NULL;
    }

    n->op = op;
    n->nin = nin;
    n->in = ins;
    n->out = out;
    n->attrs = slots;
    n->loc = loc;
    out->def = n;
    out->type.rank = -1; /* no declared type */
    if (declared) out->type = *declared;
    bool creation = info->min_in == 0 && info->max_in == 0;
    if (!creation) out->type.rank = -1;
    if (!info->infer(n, d)) return NULL;
    if (declared && !creation && !ir_type_eq(declared, &out->type)) {
        ir_str a = {0}, b = {0};
        ir_type_print(&a, declared);
        ir_type_print(&b, &out->type);
        ir_error(d, loc, "%s: declared result type %s does not match the inferred type %s", name,
                 a.buf, b.buf);
        ir_str_free(&a);
        ir_str_free(&b);
        return NULL;
    }

    ir_node *before = g->ip;
    n->next = before;
    n->prev = before ? before->prev : g->last;
    if (n->prev) n->prev->next = n;
    else g->first = n;
    if (before) before->prev = n;
    else g->last = n;
    return out;
}

void ir_replace_uses(ir_graph *g, ir_value *old, ir_value *repl) {
    for (ir_node *n = g->first; n; n = n->next)
        for (int i = 0; i < n->nin; i++)
            if (n->in[i] == old) n->in[i] = repl;
    for (int i = 0; i < g->nresults; i++)
        if (g->results[i] == old) g->results[i] = repl;
}

void ir_node_remove(ir_graph *g, ir_node *n) {
    if (g->ip == n) g->ip = n->next;
    if (n->prev) n->prev->next = n->next;
    else g->first = n->next;
    if (n->next) n->next->prev = n->prev;
    else g->last = n->prev;
    n->prev = n->next = NULL;
}
