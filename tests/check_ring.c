/*
 * check_ring.c - the two containers the loop is built on, on their own: the
 * power-of-two ring (lib/ring.h: the loop's ready queues, a write queue's
 * pieces) and the timer heap (lib/heap.h).  Both are internal, so this test
 * compiles them in.  They hold no loop, so there is no tu_close() here;
 * each test empties and destroys what it made, and valgrind checks that.
 */
#include "testutil.h"
#include "heap.h"
#include "ring.h"

#include <stdint.h>
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

/* ------------------------------------------------------------ heap */

struct timer {
    as__heap_node node; /* not first: the heap finds it by address */
    int id;
};

/* Take the earliest off the heap; its id. */
static int heap_pop_id(as__heap *h)
{
    as__heap_node *n = as__heap_top(h);
    ck_assert_ptr_nonnull(n);
    as__heap_remove(h, n);
    ck_assert(!as__heap_holds(n));
    return ((struct timer *)((char *)n - offsetof(struct timer, node)))->id;
}

/* Every node sits where its index says, and no child comes before its
 * parent. */
static void check_heap(const as__heap *h)
{
    size_t i;
    for (i = 0; i < h->len; i++) {
        const as__heap_node *n = h->nodes[i], *p;
        ck_assert_uint_eq(n->index, i);
        if (i == 0)
            continue;
        p = h->nodes[(i - 1) / 2];
        ck_assert(p->when < n->when || (p->when == n->when && p->seq < n->seq));
    }
}

/* n timers with ids 0..n-1, pushed in id order onto a new heap *h, timer
 * i due at deadline(i); checked, and to be freed by the caller. */
static struct timer *push_timers(as__heap *h, int n, double (*deadline)(int))
{
    struct timer *t = malloc((size_t)n * sizeof *t);
    int i;

    ck_assert_ptr_nonnull(t);
    as__heap_init(h);
    ck_assert_ptr_null(as__heap_top(h));
    for (i = 0; i < n; i++) {
        t[i].id = i;
        as__heap_node_init(&t[i].node);
        ck_assert(!as__heap_holds(&t[i].node));
        ck_assert_int_eq(as__heap_push(h, &t[i].node, deadline(i)), 0);
        ck_assert(as__heap_holds(&t[i].node));
    }
    ck_assert_uint_eq(h->len, (size_t)n);
    check_heap(h);
    return t;
}

static double spread_out(int i)
{
    (void)i;
    return (double)(rand() % 1000);
}

/* Three deadlines, interleaved: 2, 1, 0, 2, 1, 0... */
static double three_apart(int i)
{
    return (double)(2 - i % 3);
}

/* Few distinct deadlines, so ties are everywhere. */
static double crowded(int i)
{
    (void)i;
    return (double)(rand() % 20);
}

START_TEST(the_heap_gives_the_earliest_first)
{
    enum { N = 500 };
    struct timer *t;
    as__heap h;
    double last = -1;
    int i;

    srand(12);
    t = push_timers(&h, N, spread_out);
    for (i = 0; i < N; i++) {
        int id = heap_pop_id(&h);
        ck_assert(t[id].node.when >= last);
        last = t[id].node.when;
    }
    ck_assert_ptr_null(as__heap_top(&h));
    as__heap_destroy(&h);
    free(t);
}
END_TEST

START_TEST(equal_deadlines_leave_in_the_order_they_came)
{
    enum { N = 200 };
    as__heap h;
    /* Pushed in id order: within each deadline the ids must come out
     * rising, whatever the heap did to place them. */
    struct timer *t = push_timers(&h, N, three_apart);
    int i, next[3] = {0, 1, 2};

    for (i = 0; i < N; i++) {
        int id = heap_pop_id(&h);
        int key = id % 3;
        /* Deadline 0 (key 2) first, then 1 (key 1), then 2 (key 0). */
        ck_assert_int_eq(id, next[key]);
        next[key] += 3;
        if (i + 1 < N)
            ck_assert(as__heap_top(&h)->when >= t[id].node.when);
    }
    as__heap_destroy(&h);
    free(t);
}
END_TEST

START_TEST(any_node_can_be_removed)
{
    enum { N = 300 };
    struct timer *t;
    unsigned char *gone = calloc(N, 1);
    as__heap h;
    int i, left = N, prev = -1;

    ck_assert_ptr_nonnull(gone);
    srand(34);
    t = push_timers(&h, N, crowded);
    /* Remove two thirds at random places (the top, the last, the middle),
     * checking the heap after each. */
    while (left > N / 3) {
        i = rand() % N;
        if (gone[i])
            continue;
        as__heap_remove(&h, &t[i].node);
        ck_assert(!as__heap_holds(&t[i].node));
        gone[i] = 1;
        left--;
        ck_assert_uint_eq(h.len, (size_t)left);
        check_heap(&h);
    }
    /* What is left comes out by (deadline, push order). */
    while (left-- > 0) {
        int id = heap_pop_id(&h);
        ck_assert(!gone[id]);
        if (prev >= 0)
            ck_assert(t[prev].node.when < t[id].node.when ||
                      (t[prev].node.when == t[id].node.when && prev < id));
        prev = id;
    }
    ck_assert_uint_eq(h.len, 0);
    as__heap_destroy(&h);
    free(gone);
    free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("ring and heap");
    TCase *tc = tcase_create("ring");
    tcase_add_test(tc, a_ring_is_first_in_first_out);
    tcase_add_test(tc, a_ring_wraps_around_without_growing);
    tcase_add_test(tc, a_ring_grown_while_wrapped_keeps_its_order);
    tcase_add_test(tc, reserving_room_adds_nothing);
    suite_add_tcase(s, tc);
    tc = tcase_create("heap");
    tcase_add_test(tc, the_heap_gives_the_earliest_first);
    tcase_add_test(tc, equal_deadlines_leave_in_the_order_they_came);
    tcase_add_test(tc, any_node_can_be_removed);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
