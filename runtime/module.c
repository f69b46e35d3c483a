/*
 * module.c - compiling graph handles into modules and running them: the
 * public fusec_compile / fusec_module_* / fusec_graph_optimize calls.  This
 * is where the stages meet, so it lives in the last one.
 *
 * A module owns a private, verified copy of the graph so the caller may
 * destroy or keep tracing theirs.  The copy is made by printing the graph
 * and parsing the text back: print-then-parse is an invariant every test
 * checks, the parser verifies what it reads, and the module keeps the text
 * so run-time errors can quote the offending line.  When the graph was
 * parsed from a file, the copy takes the original locations (the printed
 * form has the same params and nodes in the same order) and errors point
 * into the user's file ("model.ir:7:8: error: ..."); a traced graph's errors
 * point into its canonical form ("@f:7:8: error: ...").
 *
 * Backends:
 *   interp  the reference interpreter on the graph as given;
 *   plan    the default pass pipeline, fusion and memory planning, then the
 *           plan executor (runtime/plan_exec.c);
 *   cuda    the same plan, each kernel generated as CUDA C, compiled with
 *           NVRTC and run through the Driver API (runtime/cuda.c).  The
 *           driver is checked first, so a machine without one fails fast.
 * A module is never written after fusec_compile returns and the executors
 * keep no global state, so fusec_module_run is safe from several threads
 * (the CUDA runtime keeps a mutex-guarded pool of execution contexts).
 */
#define _GNU_SOURCE /* open_memstream */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frontend/api.h"
#include "frontend/parse.h"
#include "passes/fuse.h"
#include "passes/memplan.h"
#include "passes/pass.h"
#include "runtime/cuda.h"
#include "runtime/interp.h"
#include "runtime/module.h"
#include "runtime/plan_exec.h"

void fusec_module_destroy(fusec_module *m) {
    if (!m) return;
    rt_cuda_unload(m->cuda);
    plan_free(m->plan);
    if (m->g) ir_graph_free(m->g);
    free(m->text);
    free(m->srcname);
    free(m);
}

/* Run a pipeline on g with reporting into a memory stream. */
static fusec_status optimize(ir_graph *g, const fusec_opt_options *o, char **report, ir_diag *d) {
    pass_ctx ctx = {.diag = d, .verify_each = true};
    char *buf = NULL;
    size_t len = 0;
    FILE *mem = NULL;
    if (o) {
        ctx.print_after = o->print_after;
        ctx.time_passes = o->time_passes;
        ctx.stats = o->stats;
    }
    if (report) {
        mem = open_memstream(&buf, &len);
        if (!mem) return FUSEC_ERR_NOMEM;
        ctx.dump = mem;
    } else {
        ctx.print_after = NULL;
        ctx.time_passes = ctx.stats = false;
    }
    bool ok = pass_run_pipeline(g, o ? o->passes : NULL, &ctx);
    if (mem) {
        fclose(mem);
        *report = buf;
    }
    return ok ? FUSEC_OK : FUSEC_ERR_INVALID;
}

fusec_status fusec_graph_optimize(fusec_graph *g, const fusec_opt_options *o, char **report,
                                  char **errmsg) {
    if (errmsg) *errmsg = NULL;
    if (report) *report = NULL;
    if (!g) {
        fe_set_errmsg(errmsg, "fusec_graph_optimize: graph is NULL");
        return FUSEC_ERR_INVALID;
    }
    if (g->err) {
        fe_set_errmsg(errmsg, "fusec_graph_optimize: graph @%s holds an error: %s", g->g->name, g->err);
        return FUSEC_ERR_INVALID;
    }
    ir_diag d;
    ir_diag_init(&d, NULL, NULL, 0);
    fusec_status st = optimize(g->g, o, report, &d);
    if (st != FUSEC_OK) fe_take_diag(errmsg, &d);
    ir_diag_free(&d);
    /* passes may have created values: register them with the handle */
    if (st == FUSEC_OK)
        for (ir_node *n = g->g->first; n; n = n->next)
            if (!fe_graph_owns(g, n->out) && !fe_graph_adopt(g, n->out)) return FUSEC_ERR_NOMEM;
    return st;
}

char *fusec_pass_list(void) {
    ir_str s = {0};
    for (int i = 0; i < pass_count(); i++)
        ir_str_printf(&s, "%-14s %s\n", pass_at(i)->name, pass_at(i)->summary);
    ir_str_printf(&s, "default pipeline: %s\n", pass_default_pipeline());
    return ir_str_take(&s);
}

/* Point m's diagnostics at the user's file: copy every location of the
 * parsed graph onto the module's copy (one to one, in order). */
static fusec_status adopt_source(fusec_module *m, const fusec_graph *g) {
    const ir_graph *a = g->g;
    ir_graph *b = m->g;
    for (int i = 0; i < a->nparams && i < b->nparams; i++) b->params[i]->loc = a->params[i]->loc;
    const ir_node *x = a->first;
    for (ir_node *y = b->first; x && y; x = x->next, y = y->next) {
        y->loc = x->loc;
        y->out->loc = x->out->loc;
        for (int i = 0; i < y->nin && i < x->nin; i++)
            if (y->in[i]->kind == IR_VAL_LITERAL) y->in[i]->loc = x->in[i]->loc;
    }
    b->loc = a->loc;
    char *text = malloc(g->srclen + 1), *name = strdup(g->srcname);
    if (!text || !name) {
        free(text);
        free(name);
        return FUSEC_ERR_NOMEM;
    }
    memcpy(text, g->src, g->srclen + 1);
    free(m->text);
    free(m->srcname);
    m->text = text;
    m->textlen = g->srclen;
    m->srcname = name;
    return FUSEC_OK;
}

fusec_status fusec_compile(const fusec_graph *g, fusec_backend backend, fusec_module **out,
                           char **errmsg) {
    return rt_module_compile(g, backend, NULL, out, errmsg);
}

fusec_status rt_module_compile(const fusec_graph *g, fusec_backend backend, struct rt_kcache *cache,
                               fusec_module **out, char **errmsg) {
    if (errmsg) *errmsg = NULL;
    if (!out) {
        fe_set_errmsg(errmsg, "fusec_compile: out is NULL");
        return FUSEC_ERR_INVALID;
    }
    *out = NULL;
    if (!g) {
        fe_set_errmsg(errmsg, "fusec_compile: graph is NULL");
        return FUSEC_ERR_INVALID;
    }
    if (g->err) {
        fe_set_errmsg(errmsg, "fusec_compile: graph @%s holds an error: %s", g->g->name, g->err);
        return FUSEC_ERR_INVALID;
    }
    switch (backend) {
    case FUSEC_BACKEND_INTERP:
    case FUSEC_BACKEND_PLAN: break;
    case FUSEC_BACKEND_CUDA: {
        ir_diag dc;
        ir_diag_init(&dc, NULL, NULL, 0);
        fusec_status cst = rt_cuda_init(&dc);
        if (cst == FUSEC_ERR_UNSUPPORTED)
            fe_set_errmsg(errmsg, "fusec_compile: backend 'cuda' is not built into this fusec");
        else if (cst != FUSEC_OK)
            fe_take_diag(errmsg, &dc);
        ir_diag_free(&dc);
        if (cst != FUSEC_OK) return cst;
        break;
    }
    case FUSEC_BACKEND_CPU:
        fe_set_errmsg(errmsg, "fusec_compile: backend 'cpu' is not built into this fusec");
        return FUSEC_ERR_UNSUPPORTED;
    default:
        fe_set_errmsg(errmsg, "fusec_compile: unknown backend %d", (int)backend);
        return FUSEC_ERR_INVALID;
    }
    if (g->g->nresults == 0) {
        fe_set_errmsg(errmsg, "fusec_compile: graph @%s has no outputs (mark them with fusec_output)",
                      g->g->name);
        return FUSEC_ERR_INVALID;
    }

    fusec_module *m = calloc(1, sizeof *m);
    ir_str name = {0};
    ir_str_printf(&name, "@%s", g->g->name);
    char *srcname = ir_str_take(&name);
    char *text = fusec_graph_print(g);
    if (!m || !srcname || !text) {
        free(m);
        free(srcname);
        free(text);
        fe_set_errmsg(errmsg, "fusec_compile: out of memory");
        return FUSEC_ERR_NOMEM;
    }
    m->backend = backend;
    m->text = text;
    m->srcname = srcname;
    ir_diag d;
    ir_diag_init(&d, srcname, text, strlen(text));
    m->g = fe_parse(text, strlen(text), srcname, g->g->name, &d);
    if (!m->g) {
        /* Printing then parsing is an invariant, so this is a compiler bug
         * or something the text IR cannot say yet; either way, say it. */
        fe_set_errmsg(errmsg, "fusec_compile: the graph does not read back from its printed form:\n%s",
                      d.out.buf ? d.out.buf : "");
        ir_diag_free(&d);
        fusec_module_destroy(m);
        return FUSEC_ERR_INVALID;
    }
    m->textlen = strlen(text);
    if (g->src && adopt_source(m, g) != FUSEC_OK) {
        ir_diag_free(&d);
        fusec_module_destroy(m);
        fe_set_errmsg(errmsg, "fusec_compile: out of memory");
        return FUSEC_ERR_NOMEM;
    }
    ir_diag_free(&d);
    ir_diag_init(&d, m->srcname, m->text, m->textlen);
    fusec_status st = FUSEC_OK;
    if (backend == FUSEC_BACKEND_PLAN || backend == FUSEC_BACKEND_CUDA) {
        st = optimize(m->g, NULL, NULL, &d);
        if (st == FUSEC_OK) {
            m->plan = pass_fuse(m->g, &d);
            if (!m->plan) st = FUSEC_ERR_NOMEM;
        }
        if (st == FUSEC_OK && !pass_memplan(m->plan, &d)) st = FUSEC_ERR_INVALID;
    }
    if (st == FUSEC_OK && backend == FUSEC_BACKEND_CUDA) st = rt_cuda_load(m->plan, cache, &m->cuda, &d);
    if (st != FUSEC_OK) {
        fe_set_errmsg(errmsg, "fusec_compile: %s", d.out.buf ? d.out.buf : "failed");
        ir_diag_free(&d);
        fusec_module_destroy(m);
        return st;
    }
    ir_diag_free(&d);
    *out = m;
    return FUSEC_OK;
}

char *fusec_module_describe(const fusec_module *m) {
    if (!m) return NULL;
    ir_str s = {0};
    if (m->plan) plan_print(&s, m->plan);
    else ir_print_graph(&s, m->g);
    if (m->cuda) rt_cuda_describe(m->cuda, &s);
    return ir_str_take(&s);
}

fusec_status fusec_module_run(const fusec_module *m, const fusec_tensor *inputs, int n_in,
                              fusec_tensor *outputs, int n_out, char **errmsg) {
    if (errmsg) *errmsg = NULL;
    if (!m) {
        fe_set_errmsg(errmsg, "fusec_module_run: module is NULL");
        return FUSEC_ERR_INVALID;
    }
    const ir_graph *g = m->g;
    if (n_in != g->nparams || (n_in > 0 && !inputs)) {
        fe_set_errmsg(errmsg, "fusec_module_run: @%s takes %d input%s, got %d%s", g->name,
                      g->nparams, g->nparams == 1 ? "" : "s", n_in,
                      n_in > 0 && !inputs ? " and a NULL array" : "");
        return FUSEC_ERR_INVALID;
    }
    if (n_out != g->nresults || !outputs) {
        fe_set_errmsg(errmsg, "fusec_module_run: @%s returns %d output%s, got room for %d%s",
                      g->name, g->nresults, g->nresults == 1 ? "" : "s", n_out,
                      !outputs ? " in a NULL array" : "");
        return FUSEC_ERR_INVALID;
    }
    /* The executors check each input against its parameter's type. */
    for (int i = 0; i < n_out; i++) outputs[i].data = NULL;

    ir_diag d;
    ir_diag_init(&d, m->srcname, m->text, m->textlen);
    fusec_status st = m->cuda   ? rt_cuda_run(m->cuda, inputs, n_in, outputs, n_out, &d)
                      : m->plan ? rt_plan_run(m->plan, inputs, n_in, outputs, n_out, &d)
                                : rt_interp_run(g, inputs, n_in, outputs, n_out, &d);
    if (st != FUSEC_OK) {
        for (int i = 0; i < n_out; i++) outputs[i].data = NULL;
        fe_take_diag(errmsg, &d);
    }
    ir_diag_free(&d);
    return st;
}

fusec_status fusec_module_run_device(const fusec_module *m, const fusec_tensor *inputs, int n_in,
                                     fusec_tensor *outputs, int n_out, void *stream, char **errmsg) {
    if (errmsg) *errmsg = NULL;
    if (!m) {
        fe_set_errmsg(errmsg, "fusec_module_run_device: module is NULL");
        return FUSEC_ERR_INVALID;
    }
    const ir_graph *g = m->g;
    if (!m->cuda) {
        fe_set_errmsg(errmsg, "fusec_module_run_device: @%s was not compiled for FUSEC_BACKEND_CUDA "
                              "(device pointers need the cuda backend; use fusec_module_run)", g->name);
        return FUSEC_ERR_UNSUPPORTED;
    }
    if (n_in != g->nparams || (n_in > 0 && !inputs)) {
        fe_set_errmsg(errmsg, "fusec_module_run_device: @%s takes %d input%s, got %d%s", g->name,
                      g->nparams, g->nparams == 1 ? "" : "s", n_in,
                      n_in > 0 && !inputs ? " and a NULL array" : "");
        return FUSEC_ERR_INVALID;
    }
    if (n_out != g->nresults || !outputs) {
        fe_set_errmsg(errmsg, "fusec_module_run_device: @%s returns %d output%s, got room for %d%s",
                      g->name, g->nresults, g->nresults == 1 ? "" : "s", n_out,
                      !outputs ? " in a NULL array" : "");
        return FUSEC_ERR_INVALID;
    }
    ir_diag d;
    ir_diag_init(&d, m->srcname, m->text, m->textlen);
    fusec_status st = rt_cuda_run_device(m->cuda, inputs, n_in, outputs, n_out, stream, &d);
    if (st != FUSEC_OK) fe_take_diag(errmsg, &d);
    ir_diag_free(&d);
    return st;
}
