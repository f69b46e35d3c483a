// bf16_round.cu - which way of rounding f32 to bf16 (and back to f32) is
// cheapest inside a compute-heavy fused kernel on this GPU.
//
//   nvcc -O3 -arch=native -o bf16_round bench/micro/bf16_round.cu && ./bf16_round
//
// fusec rounds every bf16 op's result (spec 5.2), so a 12-op chain rounds
// 12 times per element.  Each variant runs the elementwise_chain of
// bench/graphs over 16384 x 4096 bf16 elements, rounding after every op
// with: cvt (cvt.rn.bf16.f32, one element at a time), int (the same
// round-to-nearest-even with integer operations), pair (cvt.rn.bf16x2.f32,
// two elements per instruction), none (f32 intermediates: the bound).
// Prints the median of 50 timed runs (CUDA events) after 10 warm-up runs
// and checks that cvt, int and pair produce identical bits.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <vector>

#define CK(x) do { cudaError_t e_ = (x); if (e_ != cudaSuccess) { \
    fprintf(stderr, "%s: %s\n", #x, cudaGetErrorString(e_)); exit(1); } } while (0)

__device__ __forceinline__ float r_cvt(float f) {
    unsigned short h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return __uint_as_float((unsigned)h << 16);
}
__device__ __forceinline__ float r_int(float f) {
    unsigned u = __float_as_uint(f);
    unsigned r = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    return f != f ? __uint_as_float(u | 0x00400000u) : __uint_as_float(r);
}
__device__ __forceinline__ void r_pair(float &a, float &b) {
    unsigned p;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(p) : "f"(b), "f"(a));
    a = __uint_as_float(p << 16);
    b = __uint_as_float(p & 0xffff0000u);
}
__device__ __forceinline__ float r_none(float f) { return f; }

template <int V> __device__ __forceinline__ void rnd(float (&v)[8]) {
    if (V == 0) for (int i = 0; i < 8; i++) v[i] = r_cvt(v[i]);
    if (V == 1) for (int i = 0; i < 8; i++) v[i] = r_int(v[i]);
    if (V == 2) for (int i = 0; i < 8; i += 2) r_pair(v[i], v[i + 1]);
}

template <int V> __global__ void __launch_bounds__(256) chain(const uint4 *x, uint4 *y, long long n8) {
    for (long long i = blockIdx.x * 256LL + threadIdx.x; i < n8; i += (long long)gridDim.x * 256) {
        uint4 q = x[i];
        unsigned w[4] = {q.x, q.y, q.z, q.w};
        float xv[8], v[8];
        for (int k = 0; k < 4; k++) {
            xv[2 * k] = __uint_as_float(w[k] << 16);
            xv[2 * k + 1] = __uint_as_float(w[k] & 0xffff0000u);
        }
#define OP(e) for (int k = 0; k < 8; k++) { float a = v[k], xx = xv[k]; (void)xx; v[k] = (e); } rnd<V>(v);
        for (int k = 0; k < 8; k++) v[k] = xv[k];
        OP(a * 1.5f) OP(a + 0.5f) OP(sinf(a)) OP(expf(a)) OP(a - 1.0f)
        for (int k = 0; k < 8; k++) v[k] = fabsf(v[k]);
        OP(sqrtf(a)) OP(a * xx) OP(tanhf(a)) OP(a + xx) OP(1.0f / (1.0f + expf(-a))) OP(a * 2.0f) OP(a - 1.0f)
        unsigned o[4];
        for (int k = 0; k < 4; k++) {
            unsigned lo = __float_as_uint(v[2 * k]) >> 16, hi = __float_as_uint(v[2 * k + 1]) & 0xffff0000u;
            if (V == 3) { // none: one rounding at the store
                float a = r_cvt(v[2 * k]), b = r_cvt(v[2 * k + 1]);
                lo = __float_as_uint(a) >> 16, hi = __float_as_uint(b) & 0xffff0000u;
            }
            o[k] = lo | hi;
        }
        y[i] = make_uint4(o[0], o[1], o[2], o[3]);
    }
}

int main() {
    const long long n = 16384LL * 4096, n8 = n / 8;
    std::vector<unsigned short> h(n);
    unsigned s = 12345;
    for (long long i = 0; i < n; i++) {
        s = s * 1664525u + 1013904223u;
        float f = ((s >> 8) * (1.0f / 16777216.0f)) * 4.0f - 2.0f;
        unsigned u;
        memcpy(&u, &f, 4);
        h[i] = (unsigned short)(u >> 16);
    }
    uint4 *x, *y;
    CK(cudaMalloc(&x, n * 2));
    CK(cudaMalloc(&y, n * 2));
    CK(cudaMemcpy(x, h.data(), n * 2, cudaMemcpyHostToDevice));
    int sms = 0;
    CK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
    const char *names[4] = {"cvt", "int", "pair", "none"};
    void (*k[4])(const uint4 *, uint4 *, long long) = {chain<0>, chain<1>, chain<2>, chain<3>};
    std::vector<unsigned short> out[3];
    cudaEvent_t a, b;
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int grid_mul = 0; grid_mul < 2; grid_mul++) {
        unsigned grid = grid_mul ? (unsigned)(n8 / 256) : (unsigned)sms * 8;
        for (int v = 0; v < 4; v++) {
            std::vector<float> t;
            for (int r = 0; r < 60; r++) {
                CK(cudaEventRecord(a));
                k[v]<<<grid, 256>>>(x, y, n8);
                CK(cudaEventRecord(b));
                CK(cudaEventSynchronize(b));
                float ms;
                CK(cudaEventElapsedTime(&ms, a, b));
                if (r >= 10) t.push_back(ms);
            }
            CK(cudaGetLastError());
            std::sort(t.begin(), t.end());
            double ms = t[t.size() / 2];
            printf("grid %8u  %-5s median %.4f ms  (%.0f GB/s of bf16 in+out)\n", grid, names[v], ms,
                   2.0 * n * 2 / (ms * 1e-3) / 1e9);
            if (v < 3 && grid_mul == 0) {
                out[v].resize(n);
                CK(cudaMemcpy(out[v].data(), y, n * 2, cudaMemcpyDeviceToHost));
            }
        }
    }
    bool same = out[0] == out[1] && out[0] == out[2];
    printf("cvt, int and pair give %s bits\n", same ? "identical" : "DIFFERENT");
    return same ? 0 : 1;
}
