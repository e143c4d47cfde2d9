/*
 * check_cache.c - the loop's cache of small blocks (lib/cache.h), an
 * internal module, tested on its own: it is compiled into this test, which
 * turns it on even under `make valgrind` (which turns it off for the other
 * suites), so valgrind checks that emptying the cache frees every block.
 */
#include "testutil.h"
#include "cache.h"

#include <stdlib.h>
#include <string.h>

/* The cache as this build has it: off under AddressSanitizer. */
static int cache_on(as__cache *c)
{
    unsetenv("ASYNCSTREAMS_MALLOC");
    as__cache_init(c);
    return !c->off;
}

START_TEST(a_freed_block_is_the_next_one_of_its_class)
{
    as__cache c;
    void *a, *b, *x;

    if (!cache_on(&c)) {
        as__cache_destroy(&c);
        return; /* an ASan build: plain malloc, nothing to check here */
    }
    a = as__cache_alloc(&c, 40);
    ck_assert_ptr_nonnull(a);
    memset(a, 0xab, 48);                  /* the whole 48-byte class is ours */
    as__cache_free(&c, a, 40);
    b = as__cache_alloc(&c, 33);          /* same class (33..48) */
    ck_assert_ptr_eq(b, a);
    x = as__cache_alloc(&c, 49);          /* next class: not that block */
    ck_assert_ptr_ne(x, a);
    as__cache_free(&c, b, 33);
    as__cache_free(&c, x, 49);
    /* Too big for any class: plain malloc and free, never kept. */
    a = as__cache_alloc(&c, AS__CACHE_GRAIN * AS__CACHE_CLASSES + 1);
    ck_assert_ptr_nonnull(a);
    as__cache_free(&c, a, AS__CACHE_GRAIN * AS__CACHE_CLASSES + 1);
    as__cache_free(&c, NULL, 16);         /* ignored */
    as__cache_destroy(&c);                /* valgrind: nothing left behind */
}
END_TEST

START_TEST(at_most_keep_blocks_are_kept_per_class)
{
    enum { N = AS__CACHE_KEEP + 10 };
    as__cache c;
    void **v = malloc(N * sizeof *v);
    size_t i, i16 = 0;

    if (!cache_on(&c)) {
        as__cache_destroy(&c);
        free(v);
        return;
    }
    for (i = 0; i < N; i++)
        ck_assert_ptr_nonnull(v[i] = as__cache_alloc(&c, 16));
    for (i = 0; i < N; i++)
        as__cache_free(&c, v[i], 16);
    ck_assert_uint_eq(c.kept[i16], AS__CACHE_KEEP); /* the rest went to free() */
    as__cache_destroy(&c);
    ck_assert_uint_eq(c.kept[i16], 0);
    ck_assert_ptr_null(c.free[i16]);
    free(v);
}
END_TEST

START_TEST(asyncstreams_malloc_turns_it_off)
{
    as__cache c;
    void *a, *b;

    setenv("ASYNCSTREAMS_MALLOC", "malloc", 1);
    as__cache_init(&c);
    ck_assert(c.off);
    a = as__cache_alloc(&c, 24);
    as__cache_free(&c, a, 24);
    ck_assert_uint_eq(c.kept[1], 0);      /* given back, not kept */
    b = as__cache_alloc(&c, 24);
    ck_assert_ptr_nonnull(b);
    as__cache_free(&c, b, 24);
    as__cache_destroy(&c);
    unsetenv("ASYNCSTREAMS_MALLOC");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("blocks");
    tcase_add_test(tc, a_freed_block_is_the_next_one_of_its_class);
    tcase_add_test(tc, at_most_keep_blocks_are_kept_per_class);
    tcase_add_test(tc, asyncstreams_malloc_turns_it_off);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
