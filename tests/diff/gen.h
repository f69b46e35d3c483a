/*
 * gen.h - a random graph generator for differential tests.
 *
 * gen_graph(seed, opts) returns the text IR (spec/ir.md) of one random
 * graph that parses and verifies: 1-4 parameters, 3-25 nodes, 1-3 results,
 * over elementwise ops of every dtype they accept, broadcasting,
 * reductions, data movement, masks, normalisation composites, casts,
 * index ops with in-range indices and small contractions, with size-1 and
 * size-0 dims.  The same seed gives the same text on every machine.  See
 * gen.c for the rules that keep the graphs valid and the results stable
 * across evaluation orders.
 */
#ifndef FUSEC_TESTS_DIFF_GEN_H
#define FUSEC_TESTS_DIFF_GEN_H

#include <stdbool.h>
#include <stdint.h>

/* Features the generator counts when opts->stats is set (-v histograms). */
typedef enum gen_feature {
    GEN_F_BROADCAST,     /* a binary/ternary op whose operand shapes differ   */
    GEN_F_RANK_MIX,      /* ... and whose operand ranks differ               */
    GEN_F_SIZE0,         /* a value with a size-0 dim                         */
    GEN_F_SIZE1,         /* a value with a size-1 dim                         */
    GEN_F_SCALAR,        /* a 0-d value                                       */
    GEN_F_NEG_AXIS,      /* an axis attribute written negative                */
    GEN_F_KEEPDIM,       /* a reduction with keepdim = true                   */
    GEN_F_LITERAL,       /* a literal operand                                 */
    GEN_F_CAUSAL_MASK,   /* iota/compare causal or sliding-window mask        */
    GEN_F_TRIU_MASK,     /* full(-inf) + triu/tril additive mask              */
    GEN_F_PAD_MASK,      /* padding mask (bool parameter or iota < length)    */
    GEN_F_ADDITIVE_MASK, /* BERT (1 - m) * -10000 mask                        */
    GEN_F_MASK_SOFTMAX,  /* a mask feeding a softmax                          */
    GEN_F_GUARD,         /* a guard in front of a singular op                 */
    GEN_F_NONZERO_DIV,   /* an integer divisor made nonzero                   */
    GEN_F_SLICE_STEP,    /* slice with step > 1                               */
    GEN_F_NEG_PAD,       /* pad with a negative (cropping) amount             */
    GEN_F_MULTI_RESULT,  /* more than one result                              */
    GEN_F_COUNT
} gen_feature;

const char *gen_feature_name(gen_feature f);

typedef struct gen_stats {
    long feature[GEN_F_COUNT];
    long graphs, nodes, params, results;
    long dtype_values[16]; /* values created per fusec_dtype */
} gen_stats;

typedef struct gen_opts {
    int min_nodes, max_nodes; /* nodes in the body (approximately: a compound
                                 pattern may overshoot max by a few)      */
    int max_inputs;           /* 1..4                                     */
    int max_results;          /* 1..3                                     */
    int64_t max_numel;        /* elements per value                       */
    gen_stats *stats;         /* counters to add to, or NULL              */
} gen_opts;

/* 3-25 nodes, up to 4 inputs and 3 results, values of at most 2000 elements. */
void gen_opts_default(gen_opts *o);

/* The text of one graph (malloc'd; free with free()), or NULL on OOM.
 * opts NULL = the defaults. */
char *gen_graph(uint64_t seed, const gen_opts *opts);

#endif
