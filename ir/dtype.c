/*
 * dtype.c - element types: names, sizes, classes, and element access.
 *
 * f16 and bf16 are stored as 16-bit patterns and converted here, with
 * round-to-nearest-even.  Conversions from double go straight to the 16-bit
 * format (never through f32) so a value is rounded exactly once.
 *
 * ir_store_f into an integer dtype truncates toward zero; NaN becomes 0 and
 * values beyond the int64 range saturate before wrapping to the storage
 * width, so every conversion is defined C (the suite runs under UBSan).
 * Storing to bool is `v != 0` (NaN is true, as in PyTorch).
 */
#include <math.h>
#include <string.h>

#include "ir/ir.h"

static const struct {
    const char *name;
    size_t size;
} dtypes[FUSEC_DTYPE_COUNT] = {
    [FUSEC_DTYPE_F64] = {"f64", 8}, [FUSEC_DTYPE_F32] = {"f32", 4}, [FUSEC_DTYPE_F16] = {"f16", 2},
    [FUSEC_DTYPE_BF16] = {"bf16", 2}, [FUSEC_DTYPE_I64] = {"i64", 8}, [FUSEC_DTYPE_I32] = {"i32", 4},
    [FUSEC_DTYPE_I16] = {"i16", 2}, [FUSEC_DTYPE_I8] = {"i8", 1},   [FUSEC_DTYPE_U8] = {"u8", 1},
    [FUSEC_DTYPE_BOOL] = {"bool", 1},
};

const char *ir_dtype_name(ir_dtype dt) {
    return (unsigned)dt < FUSEC_DTYPE_COUNT ? dtypes[dt].name : "?";
}

size_t ir_dtype_size(ir_dtype dt) { return (unsigned)dt < FUSEC_DTYPE_COUNT ? dtypes[dt].size : 0; }

bool ir_dtype_parse(const char *s, size_t n, ir_dtype *out) {
    for (int i = 0; i < FUSEC_DTYPE_COUNT; i++) {
        if (strlen(dtypes[i].name) == n && memcmp(dtypes[i].name, s, n) == 0) {
            *out = (ir_dtype)i;
            return true;
        }
    }
    return false;
}

bool ir_dtype_is_float(ir_dtype dt) {
    return dt == FUSEC_DTYPE_F64 || dt == FUSEC_DTYPE_F32 || dt == FUSEC_DTYPE_F16 ||
           dt == FUSEC_DTYPE_BF16;
}

bool ir_dtype_is_int(ir_dtype dt) {
    return dt == FUSEC_DTYPE_I64 || dt == FUSEC_DTYPE_I32 || dt == FUSEC_DTYPE_I16 ||
           dt == FUSEC_DTYPE_I8 || dt == FUSEC_DTYPE_U8;
}

/* ---- 16-bit floats ------------------------------------------------- */

static uint32_t f32_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float ir_f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    if (exp == 0) {
        float v = (float)mant * 0x1p-24f;
        return sign ? -v : v;
    }
    if (exp == 31) return bits_f32(sign | 0x7f800000u | (mant << 13));
    return bits_f32(sign | ((exp - 15 + 127) << 23) | (mant << 13));
}

float ir_bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

/* Round |d| (finite, non-negative) to a binary16-like format with `mbits`
 * mantissa bits, exponent bias `bias` and largest finite exponent `emax`.
 * Returns the magnitude bits. */
static uint16_t round_half(double ad, int mbits, int bias, int emax) {
    int minexp = 1 - bias; /* exponent of the smallest normal */
    double maxv = ldexp(2.0 - ldexp(1.0, -mbits - 1), emax);
    uint16_t inf = (uint16_t)(((1u << (15 - mbits)) - 1) << mbits);
    if (ad >= maxv) return inf;
    if (ad < ldexp(1.0, minexp)) {
        /* subnormal: a multiple of 2^(minexp - mbits); scaling is exact */
        return (uint16_t)nearbyint(ldexp(ad, mbits - minexp));
    }
    int e;
    double m = frexp(ad, &e); /* ad = m * 2^e, m in [0.5, 1) */
    e -= 1;                   /* ad = (2m) * 2^e, 2m in [1, 2) */
    double scaled = nearbyint(ldexp(2 * m, mbits)); /* in [2^mbits, 2^(mbits+1)] */
    if (scaled >= ldexp(1.0, mbits + 1)) {
        scaled /= 2;
        e += 1;
    }
    if (e > emax) return inf;
    uint32_t mant = (uint32_t)scaled - (1u << mbits);
    return (uint16_t)(((uint32_t)(e + bias) << mbits) | mant);
}

static uint16_t double_to_half(double d, int mbits, int bias, int emax) {
    uint16_t sign = signbit(d) ? 0x8000 : 0;
    if (isnan(d)) return (uint16_t)(0x7fff & ~((1u << (mbits - 1)) - 1)) | sign; /* quiet NaN */
    if (isinf(d)) return sign | (uint16_t)(((1u << (15 - mbits)) - 1) << mbits);
    return sign | round_half(fabs(d), mbits, bias, emax);
}

static uint16_t double_to_f16(double d) { return double_to_half(d, 10, 15, 15); }
static uint16_t double_to_bf16(double d) { return double_to_half(d, 7, 127, 127); }

uint16_t ir_f32_to_f16(float f) { return double_to_f16((double)f); }
uint16_t ir_f32_to_bf16(float f) {
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    return double_to_bf16((double)f);
}

/* ---- element access ------------------------------------------------ */

/* Truncate toward zero; NaN -> 0; saturate to the int64 range. */
static int64_t double_to_i64(double v) {
    if (isnan(v)) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

double ir_load_f(ir_dtype dt, const void *base, int64_t i) {
    const unsigned char *p = (const unsigned char *)base;
    switch (dt) {
    case FUSEC_DTYPE_F64: { double v; memcpy(&v, p + 8 * i, 8); return v; }
    case FUSEC_DTYPE_F32: { float v; memcpy(&v, p + 4 * i, 4); return v; }
    case FUSEC_DTYPE_F16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return ir_f16_to_f32(v); }
    case FUSEC_DTYPE_BF16: { uint16_t v; memcpy(&v, p + 2 * i, 2); return ir_bf16_to_f32(v); }
    default: return (double)ir_load_i(dt, base, i);
    }
}

int64_t ir_load_i(ir_dtype dt, const void *base, int64_t i) {
    const unsigned char *p = (const unsigned char *)base;
    switch (dt) {
    case FUSEC_DTYPE_I64: { int64_t v; memcpy(&v, p + 8 * i, 8); return v; }
    case FUSEC_DTYPE_I32: { int32_t v; memcpy(&v, p + 4 * i, 4); return v; }
    case FUSEC_DTYPE_I16: { int16_t v; memcpy(&v, p + 2 * i, 2); return v; }
    case FUSEC_DTYPE_I8: { int8_t v; memcpy(&v, p + i, 1); return v; }
    case FUSEC_DTYPE_U8: return p[i];
    case FUSEC_DTYPE_BOOL: return p[i] != 0;
    default: return double_to_i64(ir_load_f(dt, base, i));
    }
}

void ir_store_i(ir_dtype dt, void *base, int64_t i, int64_t v) {
    unsigned char *p = (unsigned char *)base;
    uint64_t u = (uint64_t)v; /* wrap-around to the storage width */
    switch (dt) {
    case FUSEC_DTYPE_I64: memcpy(p + 8 * i, &v, 8); return;
    case FUSEC_DTYPE_I32: { uint32_t w = (uint32_t)u; memcpy(p + 4 * i, &w, 4); return; }
    case FUSEC_DTYPE_I16: { uint16_t w = (uint16_t)u; memcpy(p + 2 * i, &w, 2); return; }
    case FUSEC_DTYPE_I8:
    case FUSEC_DTYPE_U8: p[i] = (unsigned char)u; return;
    case FUSEC_DTYPE_BOOL: p[i] = v != 0; return;
    default: ir_store_f(dt, base, i, (double)v); return;
    }
}

void ir_store_f(ir_dtype dt, void *base, int64_t i, double v) {
    unsigned char *p = (unsigned char *)base;
    switch (dt) {
    case FUSEC_DTYPE_F64: memcpy(p + 8 * i, &v, 8); return;
    case FUSEC_DTYPE_F32: { float f = (float)v; memcpy(p + 4 * i, &f, 4); return; }
    case FUSEC_DTYPE_F16: { uint16_t h = double_to_f16(v); memcpy(p + 2 * i, &h, 2); return; }
    case FUSEC_DTYPE_BF16: { uint16_t h = double_to_bf16(v); memcpy(p + 2 * i, &h, 2); return; }
    case FUSEC_DTYPE_BOOL: p[i] = v != 0; return; /* NaN != 0 is true */
    default: ir_store_i(dt, base, i, double_to_i64(v)); return;
    }
}
