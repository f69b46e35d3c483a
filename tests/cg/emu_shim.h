/*
 * emu_shim.h - just enough CUDA to run fusec's generated kernels on the
 * host, for tests/cg/cgemu.c: the generated translation units are compiled
 * as C++ after this header and executed block by block.
 *
 * Every CUDA thread of a block is a coroutine (ucontext) with its own
 * stack; the scheduler runs each until it finishes or waits.
 * __syncthreads waits for every live thread of the block, a warp shuffle
 * for every live lane of the warp (twice: once when all values are posted,
 * once when all are read, so the slots can be reused).  threadIdx is a
 * global the scheduler sets before resuming a thread.  __shared__ arrays
 * become function statics: blocks run one after another, so every thread
 * of the running block sees the same array.  FC_SOFT_HALF selects the
 * preamble's bit-level f16/bf16 conversions instead of PTX.
 *
 * Entry: fcemu_launch(trampoline, args, grid, block) runs a kernel through
 * a trampoline that unpacks void *args[] into its typed parameters.
 */
#ifndef FUSEC_TESTS_CG_EMU_SHIM_H
#define FUSEC_TESTS_CG_EMU_SHIM_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <utility>

#undef INFINITY
#undef NAN
#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static
#define FC_SOFT_HALF 1

struct uint3 {
    unsigned x, y, z;
};
struct uint4 {
    unsigned x, y, z, w;
};
struct uint2 {
    unsigned x, y;
};
static inline uint4 make_uint4(unsigned a, unsigned b, unsigned c, unsigned d) { return uint4{a, b, c, d}; }
static inline uint2 make_uint2(unsigned a, unsigned b) { return uint2{a, b}; }
template <class To, class From> static inline To fcemu_bits(From f) {
    To t;
    memcpy(&t, &f, sizeof t);
    return t;
}
static inline float __int_as_float(int i) { return fcemu_bits<float>(i); }
static inline float __uint_as_float(unsigned i) { return fcemu_bits<float>(i); }
static inline unsigned __float_as_uint(float f) { return fcemu_bits<unsigned>(f); }
static inline double __longlong_as_double(long long i) { return fcemu_bits<double>(i); }
static inline double __hiloint2double(int hi, int lo) {
    return fcemu_bits<double>(((unsigned long long)(unsigned)hi << 32) | (unsigned)lo);
}
static inline int __double2loint(double d) { return (int)(unsigned)fcemu_bits<unsigned long long>(d); }
static inline int __double2hiint(double d) { return (int)(unsigned)(fcemu_bits<unsigned long long>(d) >> 32); }

static uint3 threadIdx, blockIdx, blockDim, gridDim;

namespace fcemu {
enum { RUN, WAIT_BLOCK, WAIT_WARP, DONE };
enum { STACK = 256 * 1024, MAXT = 1024 };
struct thr {
    ucontext_t ctx;
    int state;
    uint3 tid;
};
static thr T[MAXT];
static char *stacks;
static int nthr, cur;
static ucontext_t sched;
static unsigned long long slot[MAXT];
static void (*kfn)(void **);
static void **kargs;

static void entry() {
    kfn(kargs);
    T[cur].state = DONE;
    swapcontext(&T[cur].ctx, &sched);
}
static void wait(int kind) {
    T[cur].state = kind;
    swapcontext(&T[cur].ctx, &sched);
}
} // namespace fcemu

static inline void __syncthreads() { fcemu::wait(fcemu::WAIT_BLOCK); }

static inline int __syncthreads_or(int pred) {
    using namespace fcemu;
    slot[cur] = pred != 0;
    wait(WAIT_BLOCK);
    int any = 0;
    for (int i = 0; i < nthr; i++) any |= (int)slot[i];
    wait(WAIT_BLOCK);
    return any;
}

template <class V> static inline V __shfl_xor_sync(unsigned, V v, int o) {
    using namespace fcemu;
    static_assert(sizeof(V) <= 8, "shuffle of a wide type");
    int me = cur;
    memcpy(&slot[me], &v, sizeof v);
    wait(WAIT_WARP);
    int partner = (me & ~31) | ((me & 31) ^ o);
    V r;
    memcpy(&r, &slot[partner < nthr ? partner : me], sizeof r);
    wait(WAIT_WARP);
    return r;
}

/* A trampoline's body: call kernel f with void *a[i] as its parameters. */
template <class... P, size_t... I> static void fcemu_call_(void (*f)(P...), void **a, std::index_sequence<I...>) {
    f(static_cast<P>(a[I])...);
}
template <class... P> static void fcemu_call(void (*f)(P...), void **a) {
    fcemu_call_(f, a, std::index_sequence_for<P...>{});
}

/* Free the thread stacks (before the shared object is unloaded). */
extern "C" void fcemu_cleanup() {
    free(fcemu::stacks);
    fcemu::stacks = nullptr;
}

/* Run one kernel; 0 on success, -1 on a deadlock (reported). */
extern "C" int fcemu_launch(void (*fn)(void **), void **args, const unsigned grid[3], const unsigned block[3]) {
    using namespace fcemu;
    int nt = (int)(block[0] * block[1] * block[2]);
    if (nt > MAXT || nt <= 0) {
        fprintf(stderr, "fcemu: bad block size %d\n", nt);
        return -1;
    }
    if (!stacks) stacks = (char *)malloc((size_t)STACK * MAXT);
    kfn = fn;
    kargs = args;
    gridDim = uint3{grid[0], grid[1], grid[2]};
    blockDim = uint3{block[0], block[1], block[2]};
    for (unsigned bz = 0; bz < grid[2]; bz++)
        for (unsigned by = 0; by < grid[1]; by++)
            for (unsigned bx = 0; bx < grid[0]; bx++) {
                blockIdx = uint3{bx, by, bz};
                nthr = nt;
                for (int i = 0; i < nt; i++) {
                    T[i].state = RUN;
                    T[i].tid = uint3{(unsigned)i % block[0], (unsigned)i / block[0] % block[1],
                                     (unsigned)i / (block[0] * block[1])};
                    getcontext(&T[i].ctx);
                    T[i].ctx.uc_stack.ss_sp = stacks + (size_t)i * STACK;
                    T[i].ctx.uc_stack.ss_size = STACK;
                    T[i].ctx.uc_link = &sched;
                    makecontext(&T[i].ctx, entry, 0);
                }
                for (;;) {
                    bool ran = false, live = false;
                    for (int i = 0; i < nt; i++) {
                        if (T[i].state != RUN) continue;
                        cur = i;
                        threadIdx = T[i].tid;
                        swapcontext(&sched, &T[i].ctx);
                        ran = true;
                    }
                    bool allblock = true;
                    for (int i = 0; i < nt; i++) {
                        if (T[i].state == DONE) continue;
                        live = true;
                        if (T[i].state != WAIT_BLOCK) allblock = false;
                    }
                    if (!live) break;
                    bool released = false;
                    if (allblock) {
                        for (int i = 0; i < nt; i++)
                            if (T[i].state == WAIT_BLOCK) T[i].state = RUN;
                        released = true;
                    }
                    for (int w = 0; w < nt && !released; w += 32) {
                        bool all = true, any = false;
                        for (int i = w; i < w + 32 && i < nt; i++) {
                            if (T[i].state == DONE) continue;
                            any = true;
                            if (T[i].state != WAIT_WARP) all = false;
                        }
                        if (all && any) {
                            for (int i = w; i < w + 32 && i < nt; i++)
                                if (T[i].state == WAIT_WARP) T[i].state = RUN;
                            released = true;
                        }
                    }
                    if (!released && !ran) {
                        fprintf(stderr, "fcemu: deadlock in block (%u, %u, %u)\n", bx, by, bz);
                        return -1;
                    }
                }
            }
    return 0;
}

#endif
