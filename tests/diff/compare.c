/*
 * compare.c - output comparison for differential tests.
 *
 * A float element matches when both sides are NaN (any payload, any sign),
 * both are the same infinity, or both are finite and close:
 *
 *     |got - ref| <= max(rtol * |ref|, atol)
 *     atol = max(afloor * max(max|ref|, 1), smallest normal of the dtype)
 *
 * The relative term is the design's per-dtype tolerance.  The absolute
 * floor is there for elements that come out of cancellation: x - mean(x)
 * is a few ulps of |x| in absolute terms whatever order the sum ran in, but
 * arbitrarily wrong relative to its own (tiny) value.  It scales with the
 * largest finite magnitude in the reference tensor, and never drops below
 * the unit scale of the inputs (normal floats): an output that is entirely
 * the residue of a cancellation (the var of a constant row, a sum that
 * cancels to 1e-11) has no meaningful scale of its own, while its absolute
 * error is set by the unit-sized values it was computed from.  afloor is an
 * order of magnitude below rtol, so an error that is large relative to the
 * tensor's own scale (a wrong index, a lost broadcast) still fails.  The
 * smallest-normal floor makes subnormals and flush-to-zero differences
 * match.  -0.0 equals +0.0 (the
 * sign of a zero is not compared: canonicalize folds x + 0 to x, and a
 * backend may or may not flush).
 *
 * Integers and bool compare exactly, as int64 values.
 *
 * A caller may add a per-element slack (an absolute tolerance from the
 * reference's own sensitivity to rounding) and mark elements unstable
 * (infinite slack: not compared, counted in nunstable).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"
#include "tests/diff/compare.h"

cmp_tol cmp_tolerance(fusec_dtype dt, bool reductions, double scale) {
    cmp_tol t = {0, 0};
    switch (dt) {
    case FUSEC_DTYPE_F64: t = (cmp_tol){1e-9, 1e-12}; break;
    case FUSEC_DTYPE_F32: t = reductions ? (cmp_tol){1e-4, 1e-5} : (cmp_tol){1e-5, 1e-6}; break;
    case FUSEC_DTYPE_F16: t = (cmp_tol){1e-2, 1e-3}; break;
    case FUSEC_DTYPE_BF16: t = (cmp_tol){2e-2, 4e-3}; break;
    default: break; /* integers and bool: exact */
    }
    t.rtol *= scale;
    t.afloor *= scale;
    return t;
}

static double smallest_normal(fusec_dtype dt) {
    switch (dt) {
    case FUSEC_DTYPE_F64: return 2.2250738585072014e-308;
    case FUSEC_DTYPE_F16: return 6.103515625e-05;
    default: return 1.1754943508222875e-38; /* f32, bf16 */
    }
}

void cmp_format_index(char *buf, size_t n, int rank, const int64_t *shape, int64_t flat) {
    int64_t idx[FUSEC_MAX_RANK];
    for (int i = rank - 1; i >= 0; i--) {
        idx[i] = shape[i] ? flat % shape[i] : 0;
        flat = shape[i] ? flat / shape[i] : 0;
    }
    size_t k = 0;
    k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "[");
    for (int i = 0; i < rank; i++)
        k += (size_t)snprintf(buf + k, k < n ? n - k : 0, "%s%lld", i ? ", " : "", (long long)idx[i]);
    snprintf(buf + k, k < n ? n - k : 0, "]");
}

static bool same_type(const fusec_tensor *a, const fusec_tensor *b) {
    if (a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

static void type_str(char *buf, size_t n, const fusec_tensor *t) {
    ir_type ty = {.dtype = t->dtype, .rank = t->rank};
    for (int i = 0; i < t->rank && i < FUSEC_MAX_RANK; i++) ty.dim[i] = t->shape[i];
    ir_str s = {0};
    ir_type_print(&s, &ty);
    snprintf(buf, n, "%s", s.buf ? s.buf : "?");
    ir_str_free(&s);
}

static bool float_close(double ref, double got, double rtol, double atol) {
    if (isnan(ref) || isnan(got)) return isnan(ref) && isnan(got);
    if (isinf(ref) || isinf(got)) return ref == got;
    double lim = rtol * fabs(ref);
    return fabs(got - ref) <= (lim > atol ? lim : atol);
}

bool cmp_tensors(const fusec_tensor *ref, const fusec_tensor *got, cmp_tol tol, const double *slack,
                 cmp_result *r) {
    memset(r, 0, sizeof *r);
    r->index = -1;
    r->tol = tol;
    if ((unsigned)ref->rank > FUSEC_MAX_RANK || (unsigned)got->rank > FUSEC_MAX_RANK ||
        (unsigned)ref->dtype >= FUSEC_DTYPE_COUNT || (unsigned)got->dtype >= FUSEC_DTYPE_COUNT) {
        snprintf(r->msg, sizeof r->msg, "invalid tensor description (rank or dtype out of range)");
        return false;
    }
    if (!same_type(ref, got)) {
        char a[160], b[160];
        type_str(a, sizeof a, ref);
        type_str(b, sizeof b, got);
        snprintf(r->msg, sizeof r->msg, "type differs: expected %s, got %s", a, b);
        return false;
    }
    int64_t n = fusec_tensor_numel(ref);
    if (n > 0 && (!ref->data || !got->data)) {
        snprintf(r->msg, sizeof r->msg, "missing data");
        return false;
    }
    fusec_dtype dt = ref->dtype;
    if (ir_dtype_is_float(dt)) {
        double mx = 0;
        for (int64_t i = 0; i < n; i++) {
            double v = fabs(ir_load_f(dt, ref->data, i));
            if (isfinite(v) && v > mx) mx = v;
        }
        r->max_abs_ref = mx;
        double atol = tol.afloor * (mx > 1 ? mx : 1), sn = smallest_normal(dt);
        if (atol < sn) atol = sn;
        r->atol = atol;
        for (int64_t i = 0; i < n; i++) {
            double s = slack ? slack[i] : 0;
            if (isinf(s)) {
                r->nunstable++;
                continue;
            }
            double a = ir_load_f(dt, ref->data, i), b = ir_load_f(dt, got->data, i);
            if (float_close(a, b, tol.rtol, atol > s ? atol : s)) continue;
            if (r->nbad++ == 0) {
                r->index = i;
                r->ref = a;
                r->got = b;
                r->slack = s;
            }
        }
    } else {
        for (int64_t i = 0; i < n; i++) {
            if (slack && isinf(slack[i])) {
                r->nunstable++;
                continue;
            }
            int64_t a = ir_load_i(dt, ref->data, i), b = ir_load_i(dt, got->data, i);
            if (a == b) continue;
            if (r->nbad++ == 0) {
                r->index = i;
                r->iref = a;
                r->igot = b;
                r->ref = (double)a;
                r->got = (double)b;
            }
        }
    }
    r->ok = r->nbad == 0;
    if (!r->ok) {
        char at[160];
        cmp_format_index(at, sizeof at, ref->rank, ref->shape, r->index);
        if (ir_dtype_is_float(dt))
            snprintf(r->msg, sizeof r->msg,
                     "%lld of %lld elements differ; first at %s: expected %.9g, got %.9g "
                     "(rtol %g, atol %g, slack %g, max|ref| %g)",
                     (long long)r->nbad, (long long)n, at, r->ref, r->got, tol.rtol, r->atol, r->slack,
                     r->max_abs_ref);
        else
            snprintf(r->msg, sizeof r->msg, "%lld of %lld elements differ; first at %s: expected %lld, got %lld",
                     (long long)r->nbad, (long long)n, at, (long long)r->iref, (long long)r->igot);
    }
    return r->ok;
}
