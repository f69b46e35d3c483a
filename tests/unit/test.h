/*
 * test.h - a very small unit-test harness for fusec's C tests.
 *
 *   TEST(name) { CHECK(x == 1); }
 *   TEST_MAIN(name_a, name_b)
 *
 * Each failed CHECK prints file:line and the expression and marks the test
 * failed; the run ends with "N passed, M failed" and exits non-zero if any
 * test failed.
 */
#ifndef FUSEC_TEST_H
#define FUSEC_TEST_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int test_failed_;

#define TEST(name) static void test_##name(void)

#define CHECK(c)                                                                    \
    do {                                                                            \
        if (!(c)) {                                                                 \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #c);  \
            test_failed_ = 1;                                                       \
        }                                                                           \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                          \
    do {                                                                            \
        long long a_ = (long long)(a), b_ = (long long)(b);                         \
        if (a_ != b_) {                                                             \
            fprintf(stderr, "%s:%d: CHECK_EQ_INT failed: %s == %lld, %s == %lld\n", \
                    __FILE__, __LINE__, #a, a_, #b, b_);                            \
            test_failed_ = 1;                                                       \
        }                                                                           \
    } while (0)

#define CHECK_STR(a, b)                                                              \
    do {                                                                             \
        const char *a_ = (a), *b_ = (b);                                             \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                     \
            fprintf(stderr, "%s:%d: CHECK_STR failed:\n  %s = \"%s\"\n  %s = \"%s\"\n", \
                    __FILE__, __LINE__, #a, a_ ? a_ : "(null)", #b, b_ ? b_ : "(null)"); \
            test_failed_ = 1;                                                        \
        }                                                                            \
    } while (0)

typedef struct {
    const char *name;
    void (*fn)(void);
} test_case_;

static int test_run_(const test_case_ *cases, int n) {
    int passed = 0, failed = 0;
    for (int i = 0; i < n; i++) {
        test_failed_ = 0;
        cases[i].fn();
        if (test_failed_) {
            fprintf(stderr, "FAIL %s\n", cases[i].name);
            failed++;
        } else {
            passed++;
        }
    }
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

#define TEST_ENTRY_(name) {#name, test_##name},
#define TEST_FOR_EACH_1(m, a) m(a)
/* TEST_MAIN lists the tests to run, in order. */
#define TEST_MAIN(...)                                                        \
    int main(void) {                                                          \
        static const test_case_ cases_[] = {TEST_LIST_(__VA_ARGS__)};         \
        return test_run_(cases_, (int)(sizeof cases_ / sizeof cases_[0]));   \
    }
#define TEST_LIST_(...) TEST_MAP_(TEST_ENTRY_, __VA_ARGS__)
/* A bounded map over up to 64 arguments. */
#define TEST_MAP_(m, ...) TEST_MAP_N_(__VA_ARGS__, TEST_M64_, TEST_M63_, TEST_M62_, TEST_M61_, TEST_M60_, TEST_M59_, TEST_M58_, TEST_M57_, TEST_M56_, TEST_M55_, TEST_M54_, TEST_M53_, TEST_M52_, TEST_M51_, TEST_M50_, TEST_M49_, TEST_M48_, TEST_M47_, TEST_M46_, TEST_M45_, TEST_M44_, TEST_M43_, TEST_M42_, TEST_M41_, TEST_M40_, TEST_M39_, TEST_M38_, TEST_M37_, TEST_M36_, TEST_M35_, TEST_M34_, TEST_M33_, TEST_M32_, TEST_M31_, TEST_M30_, TEST_M29_, TEST_M28_, TEST_M27_, TEST_M26_, TEST_M25_, TEST_M24_, TEST_M23_, TEST_M22_, TEST_M21_, TEST_M20_, TEST_M19_, TEST_M18_, TEST_M17_, TEST_M16_, TEST_M15_, TEST_M14_, TEST_M13_, TEST_M12_, TEST_M11_, TEST_M10_, TEST_M9_, TEST_M8_, TEST_M7_, TEST_M6_, TEST_M5_, TEST_M4_, TEST_M3_, TEST_M2_, TEST_M1_)(m, __VA_ARGS__)
#define TEST_MAP_N_(_1, _2, _3, _4, _5, _6, _7, _8, _9, _10, _11, _12, _13, _14, _15, _16, _17, _18, _19, _20, _21, _22, _23, _24, _25, _26, _27, _28, _29, _30, _31, _32, _33, _34, _35, _36, _37, _38, _39, _40, _41, _42, _43, _44, _45, _46, _47, _48, _49, _50, _51, _52, _53, _54, _55, _56, _57, _58, _59, _60, _61, _62, _63, _64, N, ...) N
#define TEST_M1_(m, a) m(a)
#define TEST_M2_(m, a, ...) m(a) TEST_M1_(m, __VA_ARGS__)
#define TEST_M3_(m, a, ...) m(a) TEST_M2_(m, __VA_ARGS__)
#define TEST_M4_(m, a, ...) m(a) TEST_M3_(m, __VA_ARGS__)
#define TEST_M5_(m, a, ...) m(a) TEST_M4_(m, __VA_ARGS__)
#define TEST_M6_(m, a, ...) m(a) TEST_M5_(m, __VA_ARGS__)
#define TEST_M7_(m, a, ...) m(a) TEST_M6_(m, __VA_ARGS__)
#define TEST_M8_(m, a, ...) m(a) TEST_M7_(m, __VA_ARGS__)
#define TEST_M9_(m, a, ...) m(a) TEST_M8_(m, __VA_ARGS__)
#define TEST_M10_(m, a, ...) m(a) TEST_M9_(m, __VA_ARGS__)
#define TEST_M11_(m, a, ...) m(a) TEST_M10_(m, __VA_ARGS__)
#define TEST_M12_(m, a, ...) m(a) TEST_M11_(m, __VA_ARGS__)
#define TEST_M13_(m, a, ...) m(a) TEST_M12_(m, __VA_ARGS__)
#define TEST_M14_(m, a, ...) m(a) TEST_M13_(m, __VA_ARGS__)
#define TEST_M15_(m, a, ...) m(a) TEST_M14_(m, __VA_ARGS__)
#define TEST_M16_(m, a, ...) m(a) TEST_M15_(m, __VA_ARGS__)
#define TEST_M17_(m, a, ...) m(a) TEST_M16_(m, __VA_ARGS__)
#define TEST_M18_(m, a, ...) m(a) TEST_M17_(m, __VA_ARGS__)
#define TEST_M19_(m, a, ...) m(a) TEST_M18_(m, __VA_ARGS__)
#define TEST_M20_(m, a, ...) m(a) TEST_M19_(m, __VA_ARGS__)
#define TEST_M21_(m, a, ...) m(a) TEST_M20_(m, __VA_ARGS__)
#define TEST_M22_(m, a, ...) m(a) TEST_M21_(m, __VA_ARGS__)
#define TEST_M23_(m, a, ...) m(a) TEST_M22_(m, __VA_ARGS__)
#define TEST_M24_(m, a, ...) m(a) TEST_M23_(m, __VA_ARGS__)
#define TEST_M25_(m, a, ...) m(a) TEST_M24_(m, __VA_ARGS__)
#define TEST_M26_(m, a, ...) m(a) TEST_M25_(m, __VA_ARGS__)
#define TEST_M27_(m, a, ...) m(a) TEST_M26_(m, __VA_ARGS__)
#define TEST_M28_(m, a, ...) m(a) TEST_M27_(m, __VA_ARGS__)
#define TEST_M29_(m, a, ...) m(a) TEST_M28_(m, __VA_ARGS__)
#define TEST_M30_(m, a, ...) m(a) TEST_M29_(m, __VA_ARGS__)
#define TEST_M31_(m, a, ...) m(a) TEST_M30_(m, __VA_ARGS__)
#define TEST_M32_(m, a, ...) m(a) TEST_M31_(m, __VA_ARGS__)
#define TEST_M33_(m, a, ...) m(a) TEST_M32_(m, __VA_ARGS__)
#define TEST_M34_(m, a, ...) m(a) TEST_M33_(m, __VA_ARGS__)
#define TEST_M35_(m, a, ...) m(a) TEST_M34_(m, __VA_ARGS__)
#define TEST_M36_(m, a, ...) m(a) TEST_M35_(m, __VA_ARGS__)
#define TEST_M37_(m, a, ...) m(a) TEST_M36_(m, __VA_ARGS__)
#define TEST_M38_(m, a, ...) m(a) TEST_M37_(m, __VA_ARGS__)
#define TEST_M39_(m, a, ...) m(a) TEST_M38_(m, __VA_ARGS__)
#define TEST_M40_(m, a, ...) m(a) TEST_M39_(m, __VA_ARGS__)
#define TEST_M41_(m, a, ...) m(a) TEST_M40_(m, __VA_ARGS__)
#define TEST_M42_(m, a, ...) m(a) TEST_M41_(m, __VA_ARGS__)
#define TEST_M43_(m, a, ...) m(a) TEST_M42_(m, __VA_ARGS__)
#define TEST_M44_(m, a, ...) m(a) TEST_M43_(m, __VA_ARGS__)
#define TEST_M45_(m, a, ...) m(a) TEST_M44_(m, __VA_ARGS__)
#define TEST_M46_(m, a, ...) m(a) TEST_M45_(m, __VA_ARGS__)
#define TEST_M47_(m, a, ...) m(a) TEST_M46_(m, __VA_ARGS__)
#define TEST_M48_(m, a, ...) m(a) TEST_M47_(m, __VA_ARGS__)
#define TEST_M49_(m, a, ...) m(a) TEST_M48_(m, __VA_ARGS__)
#define TEST_M50_(m, a, ...) m(a) TEST_M49_(m, __VA_ARGS__)
#define TEST_M51_(m, a, ...) m(a) TEST_M50_(m, __VA_ARGS__)
#define TEST_M52_(m, a, ...) m(a) TEST_M51_(m, __VA_ARGS__)
#define TEST_M53_(m, a, ...) m(a) TEST_M52_(m, __VA_ARGS__)
#define TEST_M54_(m, a, ...) m(a) TEST_M53_(m, __VA_ARGS__)
#define TEST_M55_(m, a, ...) m(a) TEST_M54_(m, __VA_ARGS__)
#define TEST_M56_(m, a, ...) m(a) TEST_M55_(m, __VA_ARGS__)
#define TEST_M57_(m, a, ...) m(a) TEST_M56_(m, __VA_ARGS__)
#define TEST_M58_(m, a, ...) m(a) TEST_M57_(m, __VA_ARGS__)
#define TEST_M59_(m, a, ...) m(a) TEST_M58_(m, __VA_ARGS__)
#define TEST_M60_(m, a, ...) m(a) TEST_M59_(m, __VA_ARGS__)
#define TEST_M61_(m, a, ...) m(a) TEST_M60_(m, __VA_ARGS__)
#define TEST_M62_(m, a, ...) m(a) TEST_M61_(m, __VA_ARGS__)
#define TEST_M63_(m, a, ...) m(a) TEST_M62_(m, __VA_ARGS__)
#define TEST_M64_(m, a, ...) m(a) TEST_M63_(m, __VA_ARGS__)

#endif
