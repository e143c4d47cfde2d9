/*
 * writeq.h - a transport's write queue: the bytes written but not yet sent,
 * in order (internal, not installed).
 *
 * Bytes reach the queue in one of two ways:
 *
 *   - copied (as__writeq_copy): the caller keeps its memory, so the queue
 *     copies the bytes into one growing buffer of its own (buffer.h);
 *     consecutive copies stay contiguous and count as one piece;
 *   - adopted (as__writeq_adopt): the caller hands its buffer over together
 *     with a release hook, and the queue keeps a pointer: no copy at all.
 *     The hook runs once the last byte of the piece has been sent, or when
 *     the queue is cleared.  An echo server writing back the bytes a read
 *     returned (as_writer_write_bytes()) copies nothing on the way out.
 *
 * The queue is a FIFO of pieces.  A copied piece names no memory, only a
 * length: its bytes are the next ones in the copy buffer, which is consumed
 * in step.  as__writeq_iov() lays the front pieces out as an iovec array
 * for one sendmsg(), so a queue of many pieces still leaves in one call.
 *
 *      pieces:  [copy 40] [adopted 1024 -> caller's buffer] [copy 16]
 *      copies:  |<- 40 ->|<- 16 ->|
 *      iov:     {copies+0, 40} {buffer, 1024} {copies+40, 16}
 *
 * Cost: O(1) per write and per consumed piece (amortised: both arrays
 * double when full; the pieces are a ring, ring.h); no allocation per
 * write once warm.  Lifetimes: the
 * queue is a plain struct owned by its transport; adopted owners are the
 * queue's until their release hook has run.
 */
#ifndef AS_WRITEQ_H
#define AS_WRITEQ_H

#include <stddef.h>
#include <sys/uio.h>

#include "buffer.h"
#include "loop.h" /* as_destroy_fn */
#include "ring.h"

struct as__writeq_piece {
    const unsigned char *data; /* adopted: next byte to send; copied: NULL */
    size_t len;                /* bytes of the piece not yet sent */
    void *owner;               /* adopted: handed to release when done */
    as_destroy_fn release;
};

typedef struct as__writeq {
    as__ring pieces;                 /* of struct as__writeq_piece */
    as_buffer copies;                /* the copied pieces' bytes, in order */
    size_t len;                      /* bytes queued in all */
    void (*recycle)(void *ud, as_bytes *bytes); /* see as__writeq_bytes_done */
    void *recycle_ud;
} as__writeq;

/*
 * The release hook of an adopted as_bytes (as_writer_write_bytes()).  On
 * its own it frees the bytes; a queue with a recycler (set by its
 * transport) hands them to recycle(recycle_ud, bytes) instead, which gives
 * them to the connection's reader to hold its next result.
 */
void as__writeq_bytes_done(void *bytes);

/* Run a piece's release hook, recycling as above. */
void as__writeq_release(as__writeq *q, void *owner, as_destroy_fn release);

/* Empty; allocates nothing. */
void as__writeq_init(as__writeq *q);

/* Bytes queued. */
static inline size_t as__writeq_len(const as__writeq *q) { return q->len; }

/* Queue a copy of data[0..len).  Returns 0 or -ENOMEM (nothing queued). */
int as__writeq_copy(as__writeq *q, const void *data, size_t len);

/* Queue data[0..len) without copying; release(owner) runs once it has all
 * been sent or the queue is cleared.  len > 0.  Returns 0, or -ENOMEM:
 * nothing queued, release not called, owner still the caller's. */
int as__writeq_adopt(as__writeq *q, const void *data, size_t len, void *owner,
                     as_destroy_fn release);

/* Fill iov[0..max) with the front of the queue; returns how many were
 * filled (0 when empty).  Valid until the queue is next changed. */
int as__writeq_iov(const as__writeq *q, struct iovec *iov, int max);

/* The first n bytes were sent: drop them, releasing every adopted piece
 * that is now wholly sent.  n is clamped to the length. */
void as__writeq_consume(as__writeq *q, size_t n);

/* Drop everything, releasing every adopted piece; keeps no memory. */
void as__writeq_clear(as__writeq *q);

/* If the queue is empty and its copy buffer holds more than keep bytes of
 * storage, free that storage (after a burst). */
void as__writeq_trim(as__writeq *q, size_t keep);

#endif /* AS_WRITEQ_H */
