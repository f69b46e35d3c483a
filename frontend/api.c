/*
 * api.c - the public API around graphs and modules: creating, parsing,
 * printing and describing graphs, plus the small helpers (status strings, dtypes, version).  The
 * per-op builders live in trace.c; both share the handle of api.h.
 *
 * A fusec_graph is an ir_graph plus three things the IR does not need:
 *
 *  - the first error of a trace.  Builders report through ir_build's
 *    diagnostics; the message is kept once, prefixed with the public
 *    function's name, and never overwritten (the header's sticky errors).
 *  - a registry byid[id] of the values the handle gave out.  Ids are unique
 *    per graph and small, so "is this fusec_value ours?" is one comparison
 *    byid[v->id] == v: a value of another graph fails it unless it is that
 *    very pointer, which it cannot be.  (A pointer that is not a live value
 *    at all cannot be detected in C; that is undefined use.)
 *  - the table of explicit names, so fusec_value_set_name refuses a name
 *    that another value prints as.  Values without a name print as %<id>;
 *    the only way two printed names can clash is an explicit all-digit name
 *    (chosen by a user or read from a file) equal to some unnamed value's id.
 *    fe_name_taken checks both directions, and a value created later whose
 *    id is already taken as a digit name gets a fresh name "_<id>".
 *
 * Compiling and running modules is runtime/module.c.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/api.h"
#include "frontend/parse.h"

/* ---- small public helpers --------------------------------------------- */

const char *fusec_status_string(fusec_status s) {
    switch (s) {
    case FUSEC_OK: return "ok";
    case FUSEC_ERR_INVALID: return "invalid argument or graph";
    case FUSEC_ERR_PARSE: return "parse error";
    case FUSEC_ERR_IO: return "I/O error";
    case FUSEC_ERR_UNSUPPORTED: return "unsupported";
    case FUSEC_ERR_RUNTIME: return "run-time error";
    case FUSEC_ERR_NOMEM: return "out of memory";
    case FUSEC_ERR_BACKEND: return "backend error";
    }
    return "unknown status";
}

const char *fusec_version(void) { return FUSEC_VERSION_STRING; }

static bool dtype_ok(fusec_dtype dt) { return (unsigned)dt < FUSEC_DTYPE_COUNT; }

const char *fusec_dtype_name(fusec_dtype dt) { return dtype_ok(dt) ? ir_dtype_name(dt) : NULL; }

size_t fusec_dtype_size(fusec_dtype dt) { return dtype_ok(dt) ? ir_dtype_size(dt) : 0; }

int64_t fusec_tensor_numel(const fusec_tensor *t) {
    if (!t || t->rank < 0 || t->rank > FUSEC_MAX_RANK) return -1;
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->shape[i] < 0) return -1;
        if (t->shape[i] != 0 && n > INT64_MAX / t->shape[i]) return -1;
        n *= t->shape[i];
    }
    return n;
}

void fusec_free(void *p) { free(p); }

void fe_set_errmsg(char **errmsg, const char *fmt, ...) {
    if (!errmsg) return;
    ir_str s = {0};
    va_list ap;
    va_start(ap, fmt);
    ir_str_vprintf(&s, fmt, ap);
    va_end(ap);
    *errmsg = ir_str_take(&s);
}

void fe_take_diag(char **errmsg, ir_diag *d) {
    if (!errmsg) return;
    *errmsg = ir_str_take(&d->out);
}

/* ---- the name table ------------------------------------------------------ */

static uint32_t name_hash(const char *s) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

/* The slot holding `name`, or the empty slot where it would go. */
static fe_name_slot *name_slot(const fusec_graph *g, const char *name) {
    if (!g->names_cap) return NULL;
    uint32_t mask = (uint32_t)g->names_cap - 1;
    for (uint32_t i = name_hash(name) & mask;; i = (i + 1) & mask) {
        fe_name_slot *s = &g->names[i];
        if (!s->name || strcmp(s->name, name) == 0) return s;
    }
}

static bool names_grow(fusec_graph *g) {
    int cap = g->names_cap ? g->names_cap * 2 : 64;
    fe_name_slot *old = g->names;
    int oldcap = g->names_cap;
    g->names = calloc((size_t)cap, sizeof *g->names);
    if (!g->names) {
        g->names = old;
        return false;
    }
    g->names_cap = cap;
    g->names_used = 0;
    for (int i = 0; i < oldcap; i++) { /* tombstones are dropped here */
        if (!old[i].v) continue;
        *name_slot(g, old[i].name) = old[i];
        g->names_used++;
    }
    free(old);
    return true;
}

static bool names_put(fusec_graph *g, const char *name, ir_value *v) {
    if ((g->names_used + 1) * 2 > g->names_cap && !names_grow(g)) return false;
    fe_name_slot *s = name_slot(g, name);
    if (!s->name) {
        s->name = name;
        g->names_used++;
    }
    s->v = v;
    return true;
}

bool fe_name_valid(const char *s) {
    if (!s || !*s) return false;
    bool digits = true;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') digits = false;
    if (digits) return true;
    if (!(*s == '_' || (*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))) return false;
    for (const char *p = s + 1; *p; p++) {
        char c = *p;
        if (!(c == '_' || c == '.' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
              (c >= 'a' && c <= 'z')))
            return false;
    }
    return true;
}

/* The id an all-digit name denotes when printed as %<id>, or -1 when it is
 * not an id's canonical spelling ("007" never clashes with %7). */
static int digit_name_id(const char *s) {
    if (!*s || (s[0] == '0' && s[1]) || strlen(s) > 9) return -1;
    int id = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return -1;
        id = id * 10 + (*s - '0');
    }
    return id;
}

static bool prints_as_id(const ir_value *v) { return v->kind != IR_VAL_LITERAL && !v->name; }

bool fe_name_taken(const fusec_graph *g, const char *name, const ir_value *self) {
    fe_name_slot *s = name_slot(g, name);
    if (s && s->name && s->v && s->v != self) return true;
    int id = digit_name_id(name);
    if (id >= 0 && id < g->nbyid) {
        const ir_value *v = g->byid[id];
        if (v && v != self && prints_as_id(v)) return true;
    }
    return false;
}

bool fe_name_assign(fusec_graph *g, ir_value *v, const char *name, const char *fn) {
    char *copy = ir_arena_strdup(&g->g->arena, name);
    if (!copy || !names_put(g, copy, v)) {
        fe_graph_fail(g, "%s: out of memory", fn);
        return false;
    }
    if (v->name) {
        fe_name_slot *old = name_slot(g, v->name);
        if (old && old->name && old->v == v && strcmp(v->name, copy) != 0) old->v = NULL;
    }
    v->name = copy;
    return true;
}

/* ---- the handle ---------------------------------------------------------- */

void fe_graph_fail(fusec_graph *g, const char *fmt, ...) {
    if (!g || g->err) return;
    ir_str s = {0};
    va_list ap;
    va_start(ap, fmt);
    ir_str_vprintf(&s, fmt, ap);
    va_end(ap);
    char *msg = ir_str_take(&s);
    g->err = msg ? msg : "out of memory"; /* a truncated message beats none */
    g->err_heap = g->err == msg;
    if (!g->err_heap) free(msg);
}

static bool byid_put(fusec_graph *g, ir_value *v) {
    if (v->id < 0) return false;
    if (v->id >= g->nbyid) {
        int cap = g->nbyid ? g->nbyid : 64;
        while (cap <= v->id) cap *= 2;
        ir_value **p = realloc(g->byid, (size_t)cap * sizeof *p);
        if (!p) return false;
        memset(p + g->nbyid, 0, (size_t)(cap - g->nbyid) * sizeof *p);
        g->byid = p;
        g->nbyid = cap;
    }
    g->byid[v->id] = v;
    return true;
}

bool fe_graph_owns(const fusec_graph *g, const ir_value *v) {
    return v && v->id >= 0 && v->id < g->nbyid && g->byid[v->id] == v;
}

bool fe_graph_adopt(fusec_graph *g, ir_value *v) {
    if (!byid_put(g, v) || (v->name && !names_put(g, v->name, v))) {
        fe_graph_fail(g, "out of memory");
        return false;
    }
    if (!prints_as_id(v)) return true;
    /* %<id> may already be someone's explicit digit name. */
    char buf[32];
    snprintf(buf, sizeof buf, "%d", v->id);
    if (!fe_name_taken(g, buf, v)) return true;
    char fresh[48];
    int k = 0;
    snprintf(fresh, sizeof fresh, "_%d", v->id);
    while (fe_name_taken(g, fresh, v)) snprintf(fresh, sizeof fresh, "_%d_%d", v->id, ++k);
    return fe_name_assign(g, v, fresh, "fusec");
}

/* Register what a parsed (or new) graph already holds: every named value
 * first, so that the clash check of fe_graph_adopt sees all of them. */
fusec_graph *fe_graph_wrap(ir_graph *ig) {
    fusec_graph *g = calloc(1, sizeof *g);
    if (!g) return NULL;
    g->g = ig;
    bool ok = true;
    for (int pass = 0; pass < 2 && ok; pass++) {
        for (int i = 0; i < ig->nparams && ok; i++)
            if ((ig->params[i]->name != NULL) == (pass == 0)) ok = fe_graph_adopt(g, ig->params[i]);
        for (ir_node *n = ig->first; n && ok; n = n->next)
            if ((n->out->name != NULL) == (pass == 0)) ok = fe_graph_adopt(g, n->out);
    }
    if (!ok) {
        g->g = NULL; /* the caller still owns ig */
        fusec_graph_destroy(g);
        return NULL;
    }
    return g;
}

fusec_graph *fusec_graph_create(const char *name) {
    bool valid = name == NULL || fe_name_valid(name);
    ir_graph *ig = ir_graph_new(valid && name ? name : "main");
    if (!ig) return NULL;
    fusec_graph *g = fe_graph_wrap(ig);
    if (!g) {
        ir_graph_free(ig);
        return NULL;
    }
    if (!valid)
        fe_graph_fail(g,
                      "fusec_graph_create: invalid graph name '%s' "
                      "(names are [A-Za-z_][A-Za-z0-9_.]* or digits)",
                      name);
    return g;
}

void fusec_graph_destroy(fusec_graph *g) {
    if (!g) return;
    if (g->g) ir_graph_free(g->g);
    if (g->err_heap) free((char *)g->err);
    free(g->byid);
    free(g->names);
    free(g->src);
    free(g->srcname);
    free(g);
}

const char *fusec_graph_error(const fusec_graph *g) {
    if (!g) return "fusec_graph_error: graph is NULL";
    return g->err;
}

/* ---- parsing and printing ------------------------------------------------ */

fusec_status fusec_graph_parse(const char *src, size_t len, const char *filename,
                               const char *func, fusec_graph **out, char **errmsg) {
    if (errmsg) *errmsg = NULL;
    if (!out) {
        fe_set_errmsg(errmsg, "fusec_graph_parse: out is NULL");
        return FUSEC_ERR_INVALID;
    }
    *out = NULL;
    if (!src && len) {
        fe_set_errmsg(errmsg, "fusec_graph_parse: src is NULL");
        return FUSEC_ERR_INVALID;
    }
    if (!src) src = "";
    if (!filename) filename = "<input>";
    ir_diag d;
    ir_diag_init(&d, filename, src, len);
    ir_graph *ig = fe_parse(src, len, filename, func, &d);
    if (!ig) {
        fusec_status st = d.out.oom ? FUSEC_ERR_NOMEM : FUSEC_ERR_PARSE;
        fe_take_diag(errmsg, &d);
        ir_diag_free(&d);
        return st;
    }
    ir_diag_free(&d);
    fusec_graph *g = fe_graph_wrap(ig);
    if (g) {
        g->src = malloc(len + 1);
        g->srcname = strdup(filename);
        if (g->src) {
            memcpy(g->src, src, len);
            g->src[len] = 0;
            g->srclen = len;
        }
    }
    if (!g || !g->src || !g->srcname) {
        if (g) fusec_graph_destroy(g);
        else ir_graph_free(ig);
        fe_set_errmsg(errmsg, "fusec_graph_parse: out of memory");
        return FUSEC_ERR_NOMEM;
    }
    *out = g;
    return FUSEC_OK;
}

fusec_status fusec_graph_parse_file(const char *path, const char *func, fusec_graph **out,
                                    char **errmsg) {
    if (errmsg) *errmsg = NULL;
    if (out) *out = NULL;
    if (!path) {
        fe_set_errmsg(errmsg, "fusec_graph_parse_file: path is NULL");
        return FUSEC_ERR_INVALID;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        fe_set_errmsg(errmsg, "fusec_graph_parse_file: cannot open '%s': %s", path, strerror(errno));
        return FUSEC_ERR_IO;
    }
    char *buf = NULL;
    size_t len = 0, cap = 0;
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 65536;
            char *p = realloc(buf, cap);
            if (!p) {
                free(buf);
                fclose(f);
                fe_set_errmsg(errmsg, "fusec_graph_parse_file: out of memory reading '%s'", path);
                return FUSEC_ERR_NOMEM;
            }
            buf = p;
        }
        size_t got = fread(buf + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int read_errno = ferror(f) ? errno : 0;
    bool bad = ferror(f) != 0;
    fclose(f);
    if (bad) {
        free(buf);
        fe_set_errmsg(errmsg, "fusec_graph_parse_file: cannot read '%s': %s", path,
                   read_errno ? strerror(read_errno) : "read error");
        return FUSEC_ERR_IO;
    }
    fusec_status st = fusec_graph_parse(buf, len, path, func, out, errmsg);
    free(buf);
    return st;
}

char *fusec_graph_print(const fusec_graph *g) {
    if (!g || g->err) return NULL;
    ir_str s = {0};
    ir_print_graph(&s, g->g);
    if (s.oom) {
        ir_str_free(&s);
        return NULL;
    }
    return ir_str_take(&s);
}

/* ---- describing inputs and outputs --------------------------------------- */

int fusec_graph_num_inputs(const fusec_graph *g) { return g ? g->g->nparams : -1; }

int fusec_graph_num_outputs(const fusec_graph *g) { return g ? g->g->nresults : -1; }

static void describe(const ir_value *v, fusec_tensor *desc) {
    memset(desc, 0, sizeof *desc);
    desc->dtype = v->type.dtype;
    desc->rank = v->type.rank;
    for (int i = 0; i < v->type.rank; i++) desc->shape[i] = v->type.dim[i];
    desc->data = NULL;
}

fusec_status fusec_graph_input_info(const fusec_graph *g, int i, const char **name,
                                    fusec_tensor *desc) {
    if (!g || i < 0 || i >= g->g->nparams) return FUSEC_ERR_INVALID;
    const ir_value *v = g->g->params[i];
    if (name) {
        if (v->name) {
            *name = v->name;
        } else { /* printed as %<id>; the string lives in g's arena */
            char buf[32];
            snprintf(buf, sizeof buf, "%d", v->id);
            *name = ir_arena_strdup(&g->g->arena, buf);
            if (!*name) return FUSEC_ERR_NOMEM;
        }
    }
    if (desc) describe(v, desc);
    return FUSEC_OK;
}

fusec_status fusec_graph_output_info(const fusec_graph *g, int i, fusec_tensor *desc) {
    if (!g || i < 0 || i >= g->g->nresults) return FUSEC_ERR_INVALID;
    if (desc) describe(g->g->results[i], desc);
    return FUSEC_OK;
}
