/*
 * writeq.c - a transport's write queue (see writeq.h for the picture).
 */
#include "writeq.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

void as__writeq_init(as__writeq *q)
{
    as__ring_init(&q->pieces);
    as_buffer_init(&q->copies);
    q->len = 0;
    q->recycle = NULL;
    q->recycle_ud = NULL;
}

void as__writeq_bytes_done(void *bytes)
{
    free(bytes);
}

void as__writeq_release(as__writeq *q, void *owner, as_destroy_fn release)
{
    if (release == as__writeq_bytes_done && q->recycle)
        q->recycle(q->recycle_ud, owner);
    else
        release(owner);
}

/* The pieces are a ring (ring.h) of struct as__writeq_piece. */
static struct as__writeq_piece *piece_at(const as__writeq *q, size_t i)
{
    return as__ring_at(&q->pieces, i, sizeof(struct as__writeq_piece));
}

static struct as__writeq_piece *front_piece(const as__writeq *q)
{
    return as__ring_front(&q->pieces, sizeof(struct as__writeq_piece));
}

/* Room for one more piece, so that queueing cannot fail half-way. */
static int reserve_piece(as__writeq *q)
{
    return as__ring_reserve(&q->pieces, sizeof(struct as__writeq_piece));
}

/* After reserve_piece(), which made the room.  Inline: it is most of what
 * queueing a write does. */
static inline void push_piece(as__writeq *q, const unsigned char *data, size_t len,
                       void *owner, as_destroy_fn release)
{
    struct as__writeq_piece p;
    int rc;
    p.data = data;
    p.len = len;
    p.owner = owner;
    p.release = release;
    rc = as__ring_push(&q->pieces, &p, sizeof p);
    assert(rc == 0);
    (void)rc;
}

int as__writeq_copy(as__writeq *q, const void *data, size_t len)
{
    size_t count = q->pieces.len;
    struct as__writeq_piece *last = count ? piece_at(q, count - 1) : NULL;
    int merge = last && !last->data;

    if (len == 0)
        return 0;
    if ((!merge && reserve_piece(q) < 0) || as_buffer_append(&q->copies, data, len) < 0)
        return -ENOMEM;
    if (merge)
        last->len += len;
    else
        push_piece(q, NULL, len, NULL, NULL);
    q->len += len;
    return 0;
}

int as__writeq_adopt(as__writeq *q, const void *data, size_t len, void *owner,
                     as_destroy_fn release)
{
    if (reserve_piece(q) < 0)
        return -ENOMEM;
    push_piece(q, data, len, owner, release);
    q->len += len;
    return 0;
}

int as__writeq_iov(const as__writeq *q, struct iovec *iov, int max)
{
    const unsigned char *copied = as_buffer_data(&q->copies);
    size_t i;
    int n = 0;

    for (i = 0; i < q->pieces.len && n < max; i++, n++) {
        const struct as__writeq_piece *p = piece_at(q, i);
        if (p->data) {
            iov[n].iov_base = (void *)p->data;
        } else {
            iov[n].iov_base = (void *)copied;
            copied += p->len;
        }
        iov[n].iov_len = p->len;
    }
    return n;
}

/* Take the front piece off the ring, then release it: a release hook may
 * run any code, even a write to this queue, so the queue is consistent
 * before it runs. */
static void pop_piece(as__writeq *q)
{
    struct as__writeq_piece p = *front_piece(q);
    as__ring_pop(&q->pieces);
    if (p.release)
        as__writeq_release(q, p.owner, p.release);
}

void as__writeq_consume(as__writeq *q, size_t n)
{
    while (n > 0 && q->pieces.len > 0) {
        struct as__writeq_piece *p = front_piece(q);
        size_t take = n < p->len ? n : p->len;
        if (p->data)
            p->data += take;
        else
            as_buffer_consume(&q->copies, take);
        p->len -= take;
        q->len -= take;
        n -= take;
        if (p->len == 0)
            pop_piece(q);
    }
}

void as__writeq_clear(as__writeq *q)
{
    while (q->pieces.len > 0) {
        q->len -= front_piece(q)->len;
        pop_piece(q);
    }
    as__ring_destroy(&q->pieces);
    as_buffer_destroy(&q->copies);
    q->len = 0;
}

void as__writeq_trim(as__writeq *q, size_t keep)
{
    if (q->len == 0)
        as_buffer_trim(&q->copies, keep);
}
