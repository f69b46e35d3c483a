/*
 * compare.h - comparing a backend's output tensor with the reference
 * interpreter's, with the design's per-dtype tolerances.  Shared by every
 * differential test (plan executor now, CPU JIT and CUDA later).
 */
#ifndef FUSEC_TESTS_DIFF_COMPARE_H
#define FUSEC_TESTS_DIFF_COMPARE_H

#include <stdbool.h>
#include <stdint.h>

#include "fusec.h"

/* got matches ref at element i when both are NaN, or both are the same
 * infinity, or both are finite and |got - ref| <= max(rtol * |ref|, atol),
 * where atol = afloor * max(1, max|ref| over the tensor's finite elements),
 * but at least the dtype's smallest normal number (compare.c says why).
 * Integers and bool: equal. */
typedef struct cmp_tol {
    double rtol;
    double afloor;
} cmp_tol;

/* The design's tolerances (design.md, Tests):
 *   f64  rtol 1e-9,  afloor 1e-12
 *   f32  rtol 1e-5,  afloor 1e-6; with reductions or contractions in the
 *        graph rtol 1e-4, afloor 1e-5
 *   f16  rtol 1e-2,  afloor 1e-3
 *   bf16 rtol 2e-2,  afloor 4e-3
 * `scale` multiplies both (1 for the defaults). */
cmp_tol cmp_tolerance(fusec_dtype dt, bool reductions, double scale);

typedef struct cmp_result {
    bool ok;
    int64_t index;     /* first differing element (flat), -1: type mismatch */
    int64_t nbad;      /* how many elements differ */
    int64_t nunstable; /* elements not compared (slack infinite) */
    double ref, got;   /* the first differing pair, as double */
    int64_t iref, igot; /* the same for integer and bool tensors */
    double max_abs_ref, atol, slack;
    cmp_tol tol;
    char msg[512];     /* one line saying what differs */
} cmp_result;

/* Compare got with ref.  Shapes and dtypes must be equal too.  slack (NULL
 * = none) gives each element an extra absolute tolerance, from an estimate
 * of how sensitive the reference is at that element to rounding (see
 * difftest.c, "noise"); an infinite slack means the element is unstable
 * (a rounding flips it: a NaN, an integer, a bool) and is not compared. */
bool cmp_tensors(const fusec_tensor *ref, const fusec_tensor *got, cmp_tol tol, const double *slack,
                 cmp_result *r);

/* Write a flat index of a tensor of shape (rank, shape) as "[i, j, k]". */
void cmp_format_index(char *buf, size_t n, int rank, const int64_t *shape, int64_t flat);

#endif
