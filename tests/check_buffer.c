/* check_buffer.c - the read-offset byte buffer and its search helper. */
#include "testutil.h"

#include <errno.h>
#include <string.h>

static void assert_live(const as_buffer *b, const char *s)
{
    ck_assert_uint_eq(as_buffer_len(b), strlen(s));
    if (*s)
        ck_assert_int_eq(memcmp(as_buffer_data(b), s, strlen(s)), 0);
}

/* The two constructors: the usual shape, and *out NULL on every failure. */
START_TEST(bytes_constructors)
{
    as_bytes *x = NULL;

    ck_assert_int_eq(as_bytes_new("abc", 3, &x), 0);
    ck_assert_uint_eq(x->len, 3);
    ck_assert_int_eq(memcmp(x->data, "abc", 3), 0);
    free(x);
    ck_assert_int_eq(as_bytes_new(NULL, 0, &x), 0); /* b"" */
    ck_assert_uint_eq(x->len, 0);
    free(x);
    ck_assert_int_eq(as_bytes_alloc(7, &x), 0);
    ck_assert_uint_eq(x->len, 7);
    free(x);

    x = tu_poison();
    ck_assert_int_eq(as_bytes_new(NULL, 3, &x), AS_EINVAL); /* no bytes to copy */
    ck_assert_ptr_null(x);
    x = tu_poison();
    ck_assert_int_eq(as_bytes_alloc((size_t)-1, &x), -ENOMEM); /* absurd length */
    ck_assert_ptr_null(x);
    ck_assert_int_eq(as_bytes_new("abc", 3, NULL), AS_EINVAL);
    ck_assert_int_eq(as_bytes_alloc(1, NULL), AS_EINVAL);
}
END_TEST

/* Every call of buffer.h given a NULL buffer: the answer asyncstreams.h's
 * NULL rule promises (an empty buffer's), and the block offered to adopt
 * stays ours. */
START_TEST(every_call_accepts_a_null_buffer)
{
    as_bytes *block = tu_bytes("abc", 3);
    size_t avail = 7;
    tu_null_call calls[] = {
        TU_NULL_VOID(as_buffer_init(NULL)),
        TU_NULL_VOID(as_buffer_destroy(NULL)),
        TU_NULL_INT(as_buffer_len(NULL), 0),
        TU_NULL_PTR(as_buffer_data(NULL)),
        TU_NULL_INT(as_buffer_capacity(NULL), 0),
        TU_NULL_INT(as_buffer_append(NULL, "a", 1), AS_EINVAL),
        TU_NULL_PTR(as_buffer_reserve(NULL, 1, &avail)),
        TU_NULL_VOID(as_buffer_commit(NULL, 1)),
        TU_NULL_VOID(as_buffer_consume(NULL, 1)),
        TU_NULL_VOID(as_buffer_clear(NULL)),
        TU_NULL_VOID(as_buffer_trim(NULL, 0)),
        TU_NULL_INT(as_buffer_fit(NULL), AS_EINVAL),
        TU_NULL_PTR(as_buffer_detach(NULL)),
        TU_NULL_INT(as_buffer_adopt(NULL, block, block->len), AS_EINVAL),
        TU_NULL_PTR(as_buffer_take(NULL, 1)),
        TU_NULL_INT(as_buffer_find(NULL, "a", 1, 0, 1), AS_BUFFER_NPOS),
    };

    tu_check_null(calls);
    ck_assert_uint_eq(avail, 7);
    free(block);
}
END_TEST

/* The storage handed over as an as_bytes, and a block taken back. */
START_TEST(detach_and_adopt)
{
    as_buffer b;
    as_bytes *x;
    const unsigned char *where;

    as_buffer_init(&b);
    ck_assert_ptr_null(as_buffer_detach(&b)); /* no storage */
    ck_assert_int_eq(as_buffer_append(&b, "hello world", 11), 0);
    as_buffer_consume(&b, 6);
    ck_assert_ptr_null(as_buffer_detach(&b)); /* not from the front: refused */
    assert_live(&b, "world");
    as_buffer_clear(&b);
    ck_assert_int_eq(as_buffer_append(&b, "whole", 5), 0);
    where = as_buffer_data(&b);
    x = as_buffer_detach(&b);
    ck_assert_ptr_nonnull(x);
    ck_assert_ptr_eq(x->data, where);       /* the same bytes: no copy */
    ck_assert_uint_eq(x->len, 5);
    ck_assert_int_eq(memcmp(x->data, "whole", 5), 0);
    ck_assert_uint_eq(as_buffer_len(&b), 0);  /* empty, with no storage */
    ck_assert_uint_eq(as_buffer_capacity(&b), 0);
    /* Taken back as storage for at most its length. */
    ck_assert_int_eq(as_buffer_adopt(&b, NULL, 5), AS_EINVAL);
    ck_assert_int_eq(as_buffer_adopt(&b, x, x->len), 0);
    ck_assert_uint_eq(as_buffer_capacity(&b), 5);
    ck_assert_int_eq(as_buffer_append(&b, "12345", 5), 0);
    ck_assert_ptr_eq(as_buffer_data(&b), where);
    ck_assert_int_eq(as_buffer_adopt(&b, x, 5), AS_EINVAL); /* has storage */
    ck_assert_int_eq(as_buffer_append(&b, "6", 1), 0);    /* grows: a new block */
    assert_live(&b, "123456");
    as_buffer_destroy(&b);
}
END_TEST

START_TEST(append_consume_take)
{
    as_buffer b;
    as_bytes *x;

    as_buffer_init(&b);
    ck_assert_uint_eq(as_buffer_len(&b), 0);
    ck_assert_int_eq(as_buffer_append(&b, NULL, 0), 0);
    ck_assert_uint_eq(as_buffer_capacity(&b), 0); /* nothing allocated */
    ck_assert_int_eq(as_buffer_append(&b, "hello world", 11), 0);
    assert_live(&b, "hello world");
    as_buffer_consume(&b, 6);
    assert_live(&b, "world");
    x = as_buffer_take(&b, 3);
    ck_assert_ptr_nonnull(x);
    ck_assert_uint_eq(x->len, 3);
    ck_assert_int_eq(memcmp(x->data, "wor", 3), 0);
    free(x);
    assert_live(&b, "ld");
    x = as_buffer_take(&b, 100); /* clamped */
    ck_assert_uint_eq(x->len, 2);
    free(x);
    ck_assert_uint_eq(as_buffer_len(&b), 0);
    as_buffer_consume(&b, 5); /* consuming from empty is harmless */
    as_buffer_destroy(&b);
    ck_assert_ptr_null(b.mem);
}
END_TEST

/* Consuming never moves bytes; the slide happens only when the dead prefix
 * is at least as big as the live part, so bytes are not moved per read. */
START_TEST(compaction_is_lazy)
{
    as_buffer b;
    unsigned char chunk[100];
    size_t cap, i, moves = 0;
    const unsigned char *before;

    memset(chunk, 'x', sizeof chunk);
    as_buffer_init(&b);
    ck_assert_int_eq(as_buffer_append(&b, chunk, 100), 0);
    cap = as_buffer_capacity(&b);
    /* Steady state: append 10, consume 10, many times over.  Capacity must
     * not grow, and the live bytes move only now and then. */
    for (i = 0; i < 10000; i++) {
        before = as_buffer_data(&b);
        ck_assert_int_eq(as_buffer_append(&b, chunk, 10), 0);
        if (as_buffer_data(&b) != before)
            moves++;
        as_buffer_consume(&b, 10);
        ck_assert_uint_eq(as_buffer_len(&b), 100);
    }
    ck_assert_uint_eq(as_buffer_capacity(&b), cap);
    ck_assert_uint_lt(moves, 10000 / 10);
    as_buffer_destroy(&b);
}
END_TEST

START_TEST(reserve_commit_and_trim)
{
    as_buffer b;
    size_t avail = 0;
    unsigned char *p;

    as_buffer_init(&b);
    p = as_buffer_reserve(&b, 4096, &avail);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(avail, 4096);
    memcpy(p, "abc", 3);
    ck_assert_uint_eq(as_buffer_len(&b), 0); /* not live before commit */
    as_buffer_commit(&b, 3);
    assert_live(&b, "abc");
    as_buffer_trim(&b, 0); /* not empty: kept */
    assert_live(&b, "abc");
    as_buffer_clear(&b);
    as_buffer_trim(&b, 1 << 20); /* small enough: kept */
    ck_assert_uint_gt(as_buffer_capacity(&b), 0);
    as_buffer_trim(&b, 16);
    ck_assert_uint_eq(as_buffer_capacity(&b), 0);
    as_buffer_destroy(&b);
}
END_TEST

START_TEST(find_bounds)
{
    as_buffer b;

    as_buffer_init(&b);
    ck_assert_uint_eq(as_buffer_find(&b, "a", 1, 0, 10), AS_BUFFER_NPOS);
    as_buffer_append(&b, "--xxQWEaaXYaaa", 14);
    as_buffer_consume(&b, 2);
    ck_assert_uint_eq(as_buffer_find(&b, "aaa", 3, 0, 100), 9);
    ck_assert_uint_eq(as_buffer_find(&b, "aa", 2, 0, 100), 5);
    ck_assert_uint_eq(as_buffer_find(&b, "aa", 2, 6, 100), 9);
    ck_assert_uint_eq(as_buffer_find(&b, "aaa", 3, 0, 11), AS_BUFFER_NPOS);
    ck_assert_uint_eq(as_buffer_find(&b, "aaa", 3, 0, 12), 9);
    ck_assert_uint_eq(as_buffer_find(&b, "", 0, 0, 12), AS_BUFFER_NPOS);
    ck_assert_uint_eq(as_buffer_find(&b, "x", 1, 0, 12), 0);
    ck_assert_uint_eq(as_buffer_find(&b, "xxQWEaaXYaaaZ", 13, 0, 12), AS_BUFFER_NPOS);
    as_buffer_destroy(&b);
}
END_TEST

START_TEST(fit_keeps_only_the_live_bytes)
{
    as_buffer b;
    static char big[10000];
    as_buffer_init(&b);
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = 'z';
    ck_assert_int_eq(as_buffer_append(&b, big, sizeof big), 0);
    as_buffer_consume(&b, sizeof big - 3);
    ck_assert_int_eq(as_buffer_fit(&b), 0);
    ck_assert_uint_eq(as_buffer_capacity(&b), 3);
    ck_assert_uint_eq(as_buffer_len(&b), 3);
    ck_assert_int_eq(memcmp(as_buffer_data(&b), "aaz", 3), 0);
    /* Already tight: nothing moves. */
    ck_assert_int_eq(as_buffer_fit(&b), 0);
    ck_assert_uint_eq(as_buffer_capacity(&b), 3);
    /* Still a buffer: it grows again. */
    ck_assert_int_eq(as_buffer_append(&b, "!", 1), 0);
    ck_assert_int_eq(memcmp(as_buffer_data(&b), "aaz!", 4), 0);
    as_buffer_consume(&b, 4);
    ck_assert_int_eq(as_buffer_fit(&b), 0);
    ck_assert_uint_eq(as_buffer_capacity(&b), 0);
    as_buffer_destroy(&b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("buffer");
    TCase *tc = tcase_create("buffer");
    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, bytes_constructors);
    tcase_add_test(tc, every_call_accepts_a_null_buffer);
    tcase_add_test(tc, append_consume_take);
    tcase_add_test(tc, detach_and_adopt);
    tcase_add_test(tc, compaction_is_lazy);
    tcase_add_test(tc, reserve_commit_and_trim);
    tcase_add_test(tc, find_bounds);
    tcase_add_test(tc, fit_keeps_only_the_live_bytes);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
