/*
 * api.h - the inside of a fusec_graph handle, shared by frontend/api.c (the
 * handle's life, parsing, printing, compiling) and frontend/trace.c (the
 * builders), and runtime/module.c (compiling handles into modules).  Not
 * installed.
 *
 * A handle wraps one ir_graph and adds what the public API promises on top of
 * the IR: the first error of a trace (sticky), a registry of the values the
 * handle gave out (so an operand from another graph is caught instead of
 * being wired into this one), and the table of printed names (so
 * fusec_value_set_name can refuse a duplicate and an automatic %<id> never
 * clashes with a name a user or a parsed file chose).
 */
#ifndef FUSEC_FRONTEND_API_H
#define FUSEC_FRONTEND_API_H

#include "ir/ir.h"

/* One slot of the explicit-name table: open addressing, keyed by name.  A
 * slot whose value is NULL held a name that was since given up (a rename);
 * it stays as a tombstone so probing keeps working and can be reused. */
typedef struct fe_name_slot {
    const char *name; /* arena-owned; NULL = never used */
    ir_value *v;
} fe_name_slot;

struct fusec_graph {
    ir_graph *g;
    const char *err;   /* first error, or NULL */
    bool err_heap;     /* err is malloc'd (else a static "out of memory") */
    ir_value **byid;   /* byid[id]: a param, node result or traced scalar */
    int nbyid;         /* capacity of byid */
    fe_name_slot *names;
    int names_cap, names_used;
    /* A parsed graph keeps its source, so that a module compiled from it
     * reports run-time errors at FILE:LINE:COL of the user's file. */
    char *src, *srcname;
    size_t srclen;
};

/* Wrap ig (taking ownership) and register its params and node results. */
fusec_graph *fe_graph_wrap(ir_graph *ig);
/* Record an error unless one is already recorded (the first one wins). */
void fe_graph_fail(fusec_graph *g, const char *fmt, ...) IR_PRINTF(2, 3);
/* Register a value just created in g.  If its automatic name %<id> is taken
 * by an explicit digit name, give it a fresh explicit name.  False on OOM
 * (error recorded). */
bool fe_graph_adopt(fusec_graph *g, ir_value *v);
/* Whether v is a value this handle registered (params, node results, traced
 * scalars).  v must point to a live ir_value of some graph. */
bool fe_graph_owns(const fusec_graph *g, const ir_value *v);

/* *errmsg = a formatted message, where the caller asked for one (errmsg
 * not NULL); *errmsg = the rendered diagnostics of d (the caller frees d). */
void fe_set_errmsg(char **errmsg, const char *fmt, ...) IR_PRINTF(2, 3);
void fe_take_diag(char **errmsg, ir_diag *d);

/* Names: `[A-Za-z_][A-Za-z0-9_.]*` or digits (spec section 2). */
bool fe_name_valid(const char *s);
/* Whether another value than `self` already prints as %name. */
bool fe_name_taken(const fusec_graph *g, const char *name, const ir_value *self);
/* Give v the explicit name `name` (checked by the caller), releasing its old
 * one.  False on OOM (error recorded). */
bool fe_name_assign(fusec_graph *g, ir_value *v, const char *name, const char *fn);

#endif
