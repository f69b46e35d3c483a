/*
 * module.h - the inside of a fusec_module, shared by runtime/module.c
 * (compiling graphs into modules, running them) and runtime/bench.c
 * (timing them).  Not installed.
 */
#ifndef FUSEC_RUNTIME_MODULE_H
#define FUSEC_RUNTIME_MODULE_H

#include "ir/plan.h"
#include "runtime/cuda.h"

struct rt_kcache;

struct fusec_module {
    ir_graph *g;
    fusec_backend backend;
    plan *plan;    /* FUSEC_BACKEND_PLAN and FUSEC_BACKEND_CUDA */
    rt_cuda_module *cuda; /* FUSEC_BACKEND_CUDA */
    char *text;    /* the source diagnostics quote: the user's file, or the
                      canonical text g was parsed from */
    size_t textlen;
    char *srcname; /* the file name diagnostics show: the user's, or "@name" */
};

/* fusec_compile, with the CUDA kernels compiled through the kernel cache
 * `cache` (NULL: the process's, which rt_cuda_init opens), so that a
 * benchmark can time compiling with an empty and with a warm cache without
 * touching the user's. */
fusec_status rt_module_compile(const fusec_graph *g, fusec_backend backend, struct rt_kcache *cache,
                               fusec_module **out, char **errmsg);

#endif
