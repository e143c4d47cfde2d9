/*
 * testutil.h - the few helpers every Check suite shares.
 */
#ifndef AS_TESTUTIL_H
#define AS_TESTUTIL_H

#include <check.h>
#include <stdlib.h>
#include "asyncstreams.h"

/* A fresh loop on the default backend; fails the test if it cannot. */
static inline as_loop *tu_loop(void)
{
    as_loop *loop = NULL;
    ck_assert_int_eq(as_loop_new(&loop), 0);
    ck_assert_ptr_nonnull(loop);
    return loop;
}

/* A fresh pending future on loop; fails the test if it cannot. */
static inline as_future *tu_future(as_loop *loop)
{
    as_future *f = NULL;
    ck_assert_int_eq(as_future_new(loop, &f), 0);
    ck_assert_ptr_nonnull(f);
    return f;
}

/* A new as_bytes holding a copy of data[0..len); fails the test if it
 * cannot. */
static inline as_bytes *tu_bytes(const void *data, size_t len)
{
    as_bytes *b = NULL;
    ck_assert_int_eq(as_bytes_new(data, len, &b), 0);
    return b;
}

/* A pointer no constructor returns: put it in *out before a call that must
 * fail, to see the call set *out to NULL. */
static inline void *tu_poison(void)
{
    static char byte;
    return &byte;
}

static inline void tu_noop(void *p)
{
    (void)p;
}

/* One turn that cannot block: something is ready, so select() only polls,
 * or, right after a turn that polled, is skipped (loop.h): pump I/O with
 * two of these, or in a loop until what you wait for has happened. */
static inline void tu_turn(as_loop *loop)
{
    ck_assert_int_eq(as_loop_call_soon(loop, tu_noop, NULL, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
}

/* True when `make valgrind` runs the suite (it sets AS_TEST_VALGRIND). */
static inline int tu_under_valgrind(void)
{
    return getenv("AS_TEST_VALGRIND") != NULL;
}

/* Workload size: `full` normally, `quick` under valgrind, which checks
 * memory, not scale, and runs ~50x slower.  The full size still runs in
 * make check and under the sanitizers. */
static inline int tu_scale(int full, int quick)
{
    return tu_under_valgrind() ? quick : full;
}

/* Every test ends here: nothing scheduled, nothing alive, loop freed. */
static inline void tu_close(as_loop *loop)
{
    ck_assert_uint_eq(as_loop_pending(loop), 0);
    ck_assert_uint_eq(as_loop_objects(loop), 0);
    ck_assert_int_eq(as_loop_close(loop), 0);
}

/* An error detail (as an incomplete read's partial bytes would be) that
 * counts how many times it is freed: moved, never copied, freed once. */
typedef struct tu_detail {
    int *freed;
} tu_detail;

static inline tu_detail *tu_detail_new(int *freed)
{
    tu_detail *d = malloc(sizeof *d);
    ck_assert_ptr_nonnull(d);
    d->freed = freed;
    return d;
}

static inline void tu_detail_free(void *p)
{
    tu_detail *d = p;
    ++*d->freed;
    free(d);
}

/*
 * A table of calls given NULL objects and the answer each one's header
 * promises (asyncstreams.h, "NULL"): the calls run as the table is built,
 * then tu_check_null() compares.  A call returning a pointer records
 * whether it was non-NULL, a void call records 0.
 */
typedef struct tu_null_call {
    const char *call;
    long long got, want;
} tu_null_call;

#define TU_NULL_INT(call, want) { #call, (long long)(call), (long long)(want) }
#define TU_NULL_PTR(call) { #call, (call) != NULL, 0 }
#define TU_NULL_VOID(call) { #call, ((void)(call), 0), 0 }

static inline void tu_check_null_calls(const tu_null_call *c, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        ck_assert_msg(c[i].got == c[i].want, "%s gave %lld, not %lld",
                      c[i].call, c[i].got, c[i].want);
}

#define tu_check_null(table)                                                   \
    tu_check_null_calls((table), sizeof(table) / sizeof((table)[0]))

/* Run a suite in fork mode (CK_FORK=no overrides, e.g. under valgrind). */
static inline int tu_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    int failed;
    srunner_run_all(sr, CK_NORMAL);
    failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
