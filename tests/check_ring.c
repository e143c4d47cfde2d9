/*
 * check_ring.c - the power-of-two ring (lib/ring.h: the loop's ready
 * queues, a write queue's pieces) on its own.  It is internal, so this test
 * compiles it in.  It holds no loop, so there is no tu_close() here; each
 * test empties and destroys what it made, and valgrind checks that.
 */
#include "testutil.h"
#include "ring.h"

#include <stdlib.h>

/* ------------------------------------------------------------ ring */

static void push_int(as__ring *r, int v)
{
    ck_assert_int_eq(as__ring_push(r, &v, sizeof v), 0);
}

static int pop_int(as__ring *r)
{
    int v = *(int *)as__ring_front(r, sizeof v);
    as__ring_pop(r);
    return v;
}

START_TEST(a_ring_is_first_in_first_out)
{
    as__ring r;
    int i;

    as__ring_init(&r);
    ck_assert_uint_eq(r.len, 0);
    ck_assert_ptr_null(r.items); /* an empty ring allocates nothing */
    for (i = 0; i < 1000; i++)
        push_int(&r, i);
    ck_assert_uint_eq(r.len, 1000);
    ck_assert_uint_eq(r.cap & (r.cap - 1), 0); /* a power of two */
    for (i = 0; i < 1000; i++)
        ck_assert_int_eq(*(int *)as__ring_at(&r, (size_t)i, sizeof(int)), i);
    for (i = 0; i < 1000; i++)
        ck_assert_int_eq(pop_int(&r), i);
    ck_assert_uint_eq(r.len, 0);
    as__ring_destroy(&r);
    ck_assert_ptr_null(r.items);
    ck_assert_uint_eq(r.cap, 0);
}
END_TEST

START_TEST(a_ring_wraps_around_without_growing)
{
    as__ring r;
    size_t cap, i;
    int next_in = 0, next_out = 0;

    as__ring_init(&r);
    push_int(&r, next_in++);
    cap = r.cap;
    ck_assert_uint_gt(cap, 1);
    /* Keep it half full while pushing many times its capacity: the head
     * goes round the array again and again, and the array stays. */
    while ((size_t)next_in < cap / 2)
        push_int(&r, next_in++);
    for (i = 0; i < 10 * cap; i++) {
        push_int(&r, next_in++);
        ck_assert_int_eq(pop_int(&r), next_out++);
        ck_assert_uint_eq(r.cap, cap);
    }
    while (r.len > 0)
        ck_assert_int_eq(pop_int(&r), next_out++);
    ck_assert_int_eq(next_out, next_in);
    as__ring_destroy(&r);
}
END_TEST

/* An element larger than a pointer, as a write queue's piece is. */
struct wide {
    int v;
    double pad[3];
};

START_TEST(a_ring_grown_while_wrapped_keeps_its_order)
{
    as__ring r;
    size_t cap, i;
    int next_in = 0, next_out = 0;
    struct wide w = {0, {0, 0, 0}};

    as__ring_init(&r);
    /* Fill it, take three off the front, and refill: the oldest element is
     * now near the end of the array and the newest at its start. */
    do {
        w.v = next_in++;
        ck_assert_int_eq(as__ring_push(&r, &w, sizeof w), 0);
    } while (r.len < r.cap);
    cap = r.cap;
    for (i = 0; i < 3; i++) {
        ck_assert_int_eq(((struct wide *)as__ring_front(&r, sizeof w))->v, next_out++);
        as__ring_pop(&r);
    }
    for (i = 0; i < 3; i++) {
        w.v = next_in++;
        ck_assert_int_eq(as__ring_push(&r, &w, sizeof w), 0);
    }
    ck_assert_uint_eq(r.cap, cap);
    ck_assert_uint_ne(r.head, 0); /* wrapped */
    /* One more grows it: the elements must come out in the same order. */
    w.v = next_in++;
    ck_assert_int_eq(as__ring_push(&r, &w, sizeof w), 0);
    ck_assert_uint_eq(r.cap, 2 * cap);
    for (i = 0; i < r.len; i++)
        ck_assert_int_eq(((struct wide *)as__ring_at(&r, i, sizeof w))->v,
                         next_out + (int)i);
    while (r.len > 0) {
        ck_assert_int_eq(((struct wide *)as__ring_front(&r, sizeof w))->v, next_out++);
        as__ring_pop(&r);
    }
    ck_assert_int_eq(next_out, next_in);
    as__ring_destroy(&r);
}
END_TEST

START_TEST(reserving_room_adds_nothing)
{
    as__ring r;
    size_t cap;

    as__ring_init(&r);
    ck_assert_int_eq(as__ring_reserve(&r, sizeof(int)), 0);
    ck_assert_uint_eq(r.len, 0);
    ck_assert_uint_gt(r.cap, 0);
    cap = r.cap;
    ck_assert_int_eq(as__ring_reserve(&r, sizeof(int)), 0); /* still room */
    ck_assert_uint_eq(r.cap, cap);
    push_int(&r, 7);
    ck_assert_uint_eq(r.len, 1);
    ck_assert_int_eq(pop_int(&r), 7);
    as__ring_destroy(&r);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ring");
    TCase *tc = tcase_create("ring");
    tcase_add_test(tc, a_ring_is_first_in_first_out);
    tcase_add_test(tc, a_ring_wraps_around_without_growing);
    tcase_add_test(tc, a_ring_grown_while_wrapped_keeps_its_order);
    tcase_add_test(tc, reserving_room_adds_nothing);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
