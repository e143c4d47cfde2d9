/*
 * reader.c - StreamReader (see reader.h for the contract): the reader
 * itself, and the reads that count bytes.  The reads that search for a
 * separator are in readuntil.c, the line iterator in lines.c; what the
 * three share (the structs, a few inline helpers) is in reader_impl.h.
 *
 * Shape, after CPython's streams.py: every read is a small "step" function
 * that looks at the buffer and either produces an outcome (bytes or an
 * error) or says it needs more data.  All of them then go through one path,
 * wait_for_data(), which makes the read the reader's single waiter.
 * feed_data() / feed_eof() mark the waiter woken and schedule on_wake() for
 * the end of the turn (as_loop_call_end_of_turn()); on_wake() runs the same
 * step again.  Deferring the retry until every feed of the turn is in is
 * what CPython's deferral to the next turn achieves too, and it matters:
 * read(30) after two feeds in one turn returns both chunks.  Doing it at the
 * end of this turn rather than in the next saves a whole loop turn (a
 * select() call) per read that had to wait.  A transport's feed, one per
 * turn anyway, retries at once instead (as__reader_feed_commit_now()).
 *
 * A read never allocates anything but its future and its result unless it
 * is a separator read that must wait: a count read (read, readexactly)
 * runs in the reader's own op slot, where it also waits, and a separator
 * read runs on a read op on the stack, which is copied to the heap (with
 * its separators) only if it must wait.  The slot exists because an echo
 * server's every read waits: the copy and its block were 4% of a round
 * trip.
 *
 * Cancellation is noticed lazily but synchronously: every entry point first
 * drops a waiter whose future is already done (cancelled), so a read right
 * after as_future_cancel() works without a loop turn, and nothing was
 * consumed because steps only consume when they produce their outcome.
 */
#include "reader_impl.h"
#include "internal.h"

#include <assert.h>
#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------ helpers */

/* Settle a future with an outcome.  If the future is already done (it cannot
 * be, by construction, but a library never trusts that), free the pieces. */
static void settle(as_future *f, as__read_outcome *o)
{
    int rc;
    if (o->code == 0) {
        rc = as_future_set_result(f, o->result, o->result_destroy);
        if (rc != 0 && o->result && o->result_destroy)
            o->result_destroy(o->result);
    } else if (o->detail) {
        rc = as_future_set_error_detail(f, o->code, o->msg, o->detail,
                                        o->detail_destroy);
        if (rc != 0 && o->detail_destroy)
            o->detail_destroy(o->detail);
    } else {
        rc = as_future_set_error(f, o->code, o->msg);
    }
    assert(rc != AS_ESTATE);
}

void as__reader_consume(as_reader *r, size_t n)
{
    size_t len = as_buffer_len(&r->buf);
    if (n > len)
        n = len;
    r->consumed += n;
    as_buffer_consume(&r->buf, n);
    if (as_buffer_len(&r->buf) == 0 && as_buffer_capacity(&r->buf) > r->keep)
        as_buffer_trim(&r->buf, r->keep);
    else if (r->eof || r->exc_code)
        (void)as_buffer_fit(&r->buf); /* nothing more comes: keep only what is left */
}

/* No more data will come (EOF or an error): give back every byte of
 * storage beyond the unread ones, now.  A binding's reader can stay alive
 * long after its connection (a reset's exception, its traceback and the
 * reader in a reference cycle until the collector runs), and it should
 * cost what its unread bytes cost.  If the copy cannot be allocated the
 * storage stays: nothing is lost. */
static void give_back_storage(as_reader *r)
{
    free(r->spare);
    r->spare = NULL;
    r->spare_cap = 0;
    (void)as_buffer_fit(&r->buf);
}

/*
 * Recycling: the connection's transport gives back the blocks of bytes it
 * sent for as_writer_write_bytes() (internal.h).  One is kept, up to
 * RECYCLE_MAX, and the next result that fits it without wasting more than
 * half goes in it instead of a new malloc().  With 500 connections, a
 * malloc() and free() per 1 KiB read cost about 1,100 instructions (glibc
 * keeps 7 blocks of a size per thread; a turn frees 500); an echo server's
 * bytes now go round in one block per connection.  Any as_bytes can come
 * back: its block holds at least its header and len bytes (buffer.h).
 */
#define RECYCLE_MAX 65536

void as__reader_recycle(as_reader *r, as_bytes *bytes)
{
    if (!r || bytes->len == 0 || bytes->len > RECYCLE_MAX || r->eof || r->exc_code) {
        free(bytes);
        return;
    }
    free(r->spare);
    r->spare = bytes;
    r->spare_cap = bytes->len;
}

/* A block for a result of n bytes: the spare if it fits, else malloc(). */
static as_bytes *result_block(as_reader *r, size_t n)
{
    as_bytes *b = r->spare;
    if (b && n <= r->spare_cap && n >= r->spare_cap / 2) {
        r->spare = NULL;
        b->len = n;
        return b;
    }
    (void)as_bytes_alloc(n, &b); /* b is NULL if it fails */
    return b;
}

/*
 * A big result that fills the buffer's whole storage (a recv() of 64 KiB
 * into a 64 KiB buffer, say) takes the storage itself instead of a copy
 * (as_buffer_detach()), and once written back with as_writer_write_bytes()
 * it is recycled and the next feed receives into it (feed_reserve).  An
 * echo of 64 KiB messages copied 64 KiB per read before.  Only an exact
 * fit: a block comes back knowing only its length, so a result shorter
 * than its block would come back as a smaller block than it is, and the
 * next buffer would have to be allocated anew.  Small results are cheaper
 * to copy than a buffer is to allocate.
 */
#define HANDOFF_MIN 16384

/* Take the first n bytes as the result, consuming them. */
void as__reader_take(as_reader *r, size_t n, as__read_outcome *o)
{
    size_t len = as_buffer_len(&r->buf);
    if (n > len)
        n = len;
    if (n >= HANDOFF_MIN && n == len && n == as_buffer_capacity(&r->buf)) {
        as_bytes *whole = as_buffer_detach(&r->buf);
        if (whole) {
            r->consumed += n;
            as__outcome_bytes(o, whole);
            return;
        }
    }
    as_bytes *b = result_block(r, n);
    if (b) {
        if (n)
            memcpy(b->data, as_buffer_data(&r->buf), n);
        as__reader_consume(r, n);
    }
    as__outcome_bytes(o, b);
}

void as__reader_incomplete_free(void *p)
{
    as_incomplete_read *ir = p;
    if (ir) {
        free(ir->partial);
        free(ir);
    }
}

/* IncompleteReadError(partial = whole buffer, expected), emptying it.
 * expected < 0 means None.  The detail is allocated first, so a failed
 * allocation consumes nothing. */
void as__reader_incomplete(as_reader *r, long long expected,
                           as__read_outcome *o)
{
    as_incomplete_read *ir = malloc(sizeof *ir);
    as_bytes *partial = NULL;
    if (!ir || as_bytes_new(as_buffer_data(&r->buf), as_buffer_len(&r->buf),
                            &partial) < 0) {
        free(ir);
        as__outcome_error(o, -ENOMEM, NULL);
        return;
    }
    as__reader_consume(r, partial->len);
    ir->partial = partial;
    ir->expected = expected;
    if (expected < 0)
        snprintf(o->msgbuf, sizeof o->msgbuf,
                 "%zu bytes read on a total of undefined expected bytes",
                 partial->len);
    else
        snprintf(o->msgbuf, sizeof o->msgbuf,
                 "%zu bytes read on a total of %lld expected bytes",
                 partial->len, expected);
    as__outcome_error(o, AS_EINCOMPLETE, o->msgbuf);
    o->detail = ir;
    o->detail_destroy = as__reader_incomplete_free;
}

/* ------------------------------------------------------------ steps */

/*
 * Each step returns 1 with *o filled in, or 0 if it must wait for data.
 * Steps consume bytes only when they return 1.  The separator steps are in
 * readuntil.c and the iteration's in lines.c; step() picks by kind.
 */

static int step_read(as_reader *r, as__read_op *op, as__read_outcome *o)
{
    if (as__reader_stored_exception(r, o))
        return 1;
    if (as_buffer_len(&r->buf) == 0 && !r->eof)
        return 0;
    as__reader_take(r, op->n, o);
    as__reader_maybe_resume(r);
    return 1;
}

static int step_readall(as_reader *r, as__read_op *op, as__read_outcome *o)
{
    (void)op;
    if (as__reader_stored_exception(r, o))
        return 1;
    if (!r->eof)
        return 0;
    as__reader_take(r, as_buffer_len(&r->buf), o);
    as__reader_maybe_resume(r);
    return 1;
}

static int step_exactly(as_reader *r, as__read_op *op, as__read_outcome *o)
{
    if (as__reader_stored_exception(r, o))
        return 1;
    if (as_buffer_len(&r->buf) >= op->n) {
        as__reader_take(r, op->n, o);
        as__reader_maybe_resume(r);
        return 1;
    }
    if (r->eof) {
        as__reader_incomplete(r, (long long)op->n, o);
        return 1;
    }
    return 0;
}

static int step(as_reader *r, as__read_op *op, as__read_outcome *o)
{
    switch (op->kind) {
    case AS__OP_READ: return step_read(r, op, o);
    case AS__OP_READALL: return step_readall(r, op, o);
    case AS__OP_EXACTLY: return step_exactly(r, op, o);
    case AS__OP_UNTIL: return as__reader_step_until(r, op, o);
    case AS__OP_LINE: return as__reader_step_line(r, op, o);
    case AS__OP_DISCARD: return as__reader_step_discard(r, op, o);
    case AS__OP_LINES: return as__reader_step_lines(r, op, o);
    }
    as__outcome_error(o, AS_EINVAL, NULL);
    return 1;
}

static const char *func_name(const as__read_op *op)
{
    switch (op->kind) {
    case AS__OP_READ:
    case AS__OP_READALL: return "read";
    case AS__OP_EXACTLY: return "readexactly";
    case AS__OP_DISCARD: return "discard_until";
    default: return "readuntil";
    }
}

/* ------------------------------------------------------------ op life */

void as__read_op_free(as__read_op *op)
{
    as_future *f = op->future;
    as_loop *loop = as_future_loop(f);
    if (op->line_destroy)
        op->line_destroy(op->line_ud);
    if (op->heap_size == 0) {
        /* The reader's slot: free again before the unref, which may run
         * an exception handler that reads from this reader. */
        op->future = NULL;
        as_future_unref(f);
        return;
    }
    as_future_unref(f);
    as__loop_free(loop, op, op->heap_size);
}

/*
 * Copy a stack op to the heap with a future reference and its own copy of
 * the separators, all in one block from the loop's cache:
 *
 *      [ as__read_op | as_separator[nseps] | separator bytes ]
 *
 * (sizeof(as__read_op) is a multiple of its alignment, which suits the
 * array.)  A readline that waits costs one small block.
 */
as__read_op *as__read_op_to_heap(const as__read_op *src)
{
    as_loop *loop = as_future_loop(src->future);
    size_t total = 0, at = 0, size;
    as__read_op *op;
    as_separator *seps;
    unsigned char *bytes;

    for (size_t i = 0; i < src->nseps; i++)
        total += src->seps[i].len;
    size = sizeof *op + src->nseps * sizeof *seps + total;
    if (!(op = as__loop_alloc(loop, size)))
        return NULL;
    *op = *src;
    op->heap_size = size;
    seps = (as_separator *)(op + 1);
    bytes = (unsigned char *)(seps + src->nseps);
    for (size_t i = 0; i < src->nseps; i++) {
        memcpy(bytes + at, src->seps[i].data, src->seps[i].len);
        seps[i].data = bytes + at;
        seps[i].len = src->seps[i].len;
        at += src->seps[i].len;
    }
    op->seps = seps;
    as_future_ref(op->future);
    return op;
}

/* A waiter whose future is done (cancelled) waits no more: drop it now, so
 * the next read, such as a retry right after a timeout, needs no loop turn
 * and does not fail with AS_EBUSY. */
static void drop_abandoned(as_reader *r)
{
    if (r->waiter && as_future_done(r->waiter->future)) {
        as__read_op *op = r->waiter;
        r->waiter = NULL;
        as__read_op_free(op);
    }
}

/*
 * CPython's _wait_for_data(): the one place a read starts waiting.
 * Makes *opp the waiter (copying it to the heap if it is not already
 * there) and returns 1, or fills *o with the busy error and returns 0.
 */
static int wait_for_data(as_reader *r, as__read_op **opp, int on_heap,
                         as__read_outcome *o)
{
    if (r->waiter) {
        snprintf(o->msgbuf, sizeof o->msgbuf,
                 "%s() called while another coroutine is already waiting "
                 "for incoming data", func_name(*opp));
        as__outcome_error(o, AS_EBUSY, o->msgbuf);
        return 0;
    }
    if (!on_heap) {
        as__read_op *op = as__read_op_to_heap(*opp);
        if (!op) {
            as__outcome_error(o, -ENOMEM, NULL);
            return 0;
        }
        *opp = op;
    }
    /* A read that must wait resumes the transport even above the limit,
     * or readexactly(n > 2 x limit) would wait for ever. */
    if (r->paused) {
        r->paused = 0;
        if (r->resume_fn)
            r->resume_fn(r, r->flow_ud);
    }
    (*opp)->woken = 0;
    r->waiter = *opp;
    return 1;
}

/*
 * Run op: step it; if it must wait, make it the waiter; otherwise (or if it
 * cannot wait) settle its future.  A heap op that finishes is freed.
 */
static void run(as_reader *r, as__read_op *op, int on_heap)
{
    as__read_outcome o;
    as__outcome_init(&o);
    if (!step(r, op, &o) && wait_for_data(r, &op, on_heap, &o))
        return;
    if (op->kind == AS__OP_LINES && o.code == 0) {
        /* The iteration ended normally: no result. */
        if (!as_future_done(op->future))
            as_future_set_result(op->future, NULL, NULL);
    } else if (!as_future_done(op->future)) {
        settle(op->future, &o);
    } else {
        if (o.result && o.result_destroy)
            o.result_destroy(o.result);
        if (o.detail && o.detail_destroy)
            o.detail_destroy(o.detail);
    }
    if (on_heap)
        as__read_op_free(op);
}

/* lines.c's first step, from a loop callback (reader_impl.h). */
void as__reader_run_op(as_reader *r, as__read_op *op)
{
    drop_abandoned(r);
    run(r, op, 1);
}

/* The end-of-turn retry.  It holds the reader reference wake() took
 * (lifetime rule 3) and drops it when done. */
static void on_wake(void *userdata)
{
    as_reader *r = userdata;
    as__read_op *op = r->waiter;
    if (op && op->woken) {
        r->waiter = NULL; /* CPython: finally: self._waiter = None */
        op->woken = 0;
        if (as_future_done(op->future))
            as__read_op_free(op);
        else
            run(r, op, 1);
    }
    as_reader_unref(r);
}

static void reader_unref_cb(void *userdata)
{
    as_reader_unref(userdata);
}

/* Mark the waiter woken and make sure on_wake() runs at the end of the turn. */
static void wake(as_reader *r)
{
    drop_abandoned(r);
    if (!r->waiter)
        return;
    r->waiter->woken = 1;
    if (r->wake_handle && as__handle_queued(r->wake_handle))
        return;
    if (!r->wake_handle)
        r->wake_handle = as__handle_new(r->loop, on_wake, r, reader_unref_cb);
    int rc = r->wake_handle ? as__handle_post(r->wake_handle, 1) : -ENOMEM;
    if (rc != 0) {
        /* The read could never be woken: fail it rather than hang. */
        as__read_op *op = r->waiter;
        r->waiter = NULL;
        as_future_set_error(op->future, rc, NULL);
        as__read_op_free(op);
        return;
    }
    as_reader_ref(r); /* until on_wake() has run (lifetime rule 3) */
}

/* ------------------------------------------------------------ life */

int as_reader_new(as_loop *loop, ssize_t limit, as_reader **out)
{
    if (out)
        *out = NULL;
    if (!loop || !out || limit <= 0)
        return AS_EINVAL;
    if (as_loop_is_closed(loop))
        return AS_ECLOSED;
    as_reader *r = calloc(1, sizeof *r);
    if (!r)
        return -ENOMEM;
    r->refs = 1;
    r->loop = loop;
    r->limit = (size_t)limit;
    /* Give back memory a big read grew, but keep enough to avoid malloc
     * churn (and glibc's trim/mmap trap) on every feed. */
    r->keep = r->limit > (SIZE_MAX / 4) ? SIZE_MAX : 4 * r->limit;
    if (r->keep < ((size_t)1 << 20))
        r->keep = (size_t)1 << 20;
    as_buffer_init(&r->buf);
    as__loop_obj_ref(loop);
    *out = r;
    return 0;
}

as_reader *as_reader_ref(as_reader *r)
{
    if (r)
        r->refs++;
    return r;
}

static void drop_flow(as_reader *r)
{
    as_destroy_fn destroy = r->flow_destroy;
    void *ud = r->flow_ud;
    r->pause_fn = r->resume_fn = NULL;
    r->flow_ud = NULL;
    r->flow_destroy = NULL;
    r->paused = 0;
    if (destroy)
        destroy(ud);
}

static AS__NOINLINE void reader_free(as_reader *r)
{
    if (r->waiter) {
        as__read_op *op = r->waiter;
        r->waiter = NULL;
        as_future_cancel(op->future, "reader freed");
        as__read_op_free(op);
    }
    drop_flow(r);
    /* A queued run holds a reference, so it cannot be queued now. */
    assert(!r->wake_handle || !as__handle_queued(r->wake_handle));
    as__handle_free(r->wake_handle);
    free(r->spare);
    as_buffer_destroy(&r->buf);
    free(r->exc_msg);
    as_loop *loop = r->loop;
    free(r);
    as__loop_obj_unref(loop);
}

void as_reader_unref(as_reader *r)
{
    if (r && --r->refs == 0)
        reader_free(r);
}

as_loop *as_reader_loop(const as_reader *r)
{
    return r ? r->loop : NULL;
}

size_t as_reader_limit(const as_reader *r)
{
    return r ? r->limit : 0;
}

/* ------------------------------------------------------------ feeding */

/* A transport's feed (as__reader_feed_commit_now()): retry the waiting
 * read at once instead of at the end of the turn.  It holds a reference:
 * an iteration's line callback may drop the last one. */
static void answer_now(as_reader *r)
{
    as__read_op *op;

    drop_abandoned(r);
    if (!(op = r->waiter))
        return;
    r->waiter = NULL;
    op->woken = 0;
    as_reader_ref(r);
    run(r, op, 1);
    as_reader_unref(r);
}

/* After bytes were appended: tell the tap (the layer above takes what it
 * can now), maybe pause the transport, then wake (or, now, answer) the
 * waiter.  Pausing comes first: a read answered at once that still has to
 * wait then finds the transport paused and resumes it, as CPython's woken
 * read does in _wait_for_data().  The other way round, a readexactly() of
 * more than 2 x limit already waiting when one feed crossed 2 x limit
 * paused its own feed and waited for ever. */
static void fed(as_reader *r, int now)
{
    int tapped = r->tap != NULL;
    if (tapped) {
        as_reader_ref(r); /* the tap may drop references */
        r->tap(r, AS__TAP_DATA, r->tap_ud);
    }
    if (r->pause_fn && !r->paused && as_buffer_len(&r->buf) > 2 * r->limit) {
        if (r->pause_fn(r, r->flow_ud) != 0)
            drop_flow(r); /* cannot pause: buffer everything, as CPython */
        else
            r->paused = 1;
    }
    if (now)
        answer_now(r);
    else
        wake(r);
    if (tapped)
        as_reader_unref(r);
}

int as_reader_feed_data(as_reader *r, const void *data, size_t len)
{
    if (!r)
        return AS_EINVAL;
    if (r->eof)
        return AS_ESTATE;
    if (len == 0)
        return 0;
    if (!data)
        return AS_EINVAL;
    int rc = as_buffer_append(&r->buf, data, len);
    if (rc < 0)
        return rc;
    fed(r, 0);
    return 0;
}

unsigned char *as_reader_feed_reserve(as_reader *r, size_t want, size_t *avail)
{
    if (!r || !avail || r->eof)
        return NULL;
    /* No storage (a result took it): receive into a recycled block. */
    if (as_buffer_capacity(&r->buf) == 0 && r->spare && r->spare_cap >= want &&
        as_buffer_adopt(&r->buf, r->spare, r->spare_cap) == 0)
        r->spare = NULL;
    return as_buffer_reserve(&r->buf, want, avail);
}

static int commit(as_reader *r, size_t n, int now)
{
    if (!r)
        return AS_EINVAL;
    if (r->eof)
        return AS_ESTATE;
    if (n == 0)
        return 0;
    as_buffer_commit(&r->buf, n);
    fed(r, now);
    return 0;
}

int as_reader_feed_commit(as_reader *r, size_t n)
{
    return commit(r, n, 0);
}

/*
 * A transport feeds a reader once per loop turn per connection (one recv()
 * per readiness), so waiting for the end of the turn, which lets all of a
 * turn's feeds reach one read, gains nothing there; answering at once does
 * the copy into the result while the received bytes are still in the
 * cache, and saves the end-of-turn wake.  Bytes fed by hand later in the
 * same turn wait for the next read (internal.h).
 */
int as__reader_feed_commit_now(as_reader *r, size_t n)
{
    return commit(r, n, 1);
}

void as_reader_feed_eof(as_reader *r)
{
    if (!r)
        return;
    r->eof = 1;
    give_back_storage(r);
    wake(r);
    if (r->tap)
        r->tap(r, AS__TAP_EOF, r->tap_ud);
}

int as_reader_at_eof(const as_reader *r)
{
    if (!r)
        return 0;
    return r->eof && as_buffer_len(&r->buf) == 0;
}

int as_reader_set_exception(as_reader *r, int code, const char *message)
{
    if (!r)
        return AS_EINVAL;
    if (code >= 0)
        return AS_EINVAL;
    char *copy = NULL;
    if (message && !(copy = as__strdup(message)))
        return -ENOMEM;
    free(r->exc_msg);
    r->exc_msg = copy;
    r->exc_code = code;
    give_back_storage(r);
    drop_abandoned(r);
    if (r->waiter) {
        as__read_op *op = r->waiter;
        r->waiter = NULL;
        as_future_set_error(op->future, code, message);
        as__read_op_free(op);
    }
    if (r->tap)
        r->tap(r, AS__TAP_ERROR, r->tap_ud);
    return 0;
}

int as_reader_exception(const as_reader *r, const char **message)
{
    if (!r) {
        if (message)
            *message = NULL;
        return AS_EINVAL;
    }
    if (message)
        *message = r->exc_code == 0 ? NULL
                   : r->exc_msg    ? r->exc_msg
                                   : as_strerror(r->exc_code);
    return r->exc_code;
}

/* ------------------------------------------------------------ reads */

/* Start a read: a new future, then run the op once, synchronously. */
static as_future *start(as_reader *r, as__read_op *op)
{
    as_future *f;
    if (as_future_new(r->loop, &f) < 0)
        return NULL;
    op->future = f;
    drop_abandoned(r);
    run(r, op, 0);
    return f;
}

/* Start a count read (no separators to copy), in the reader's slot when
 * it is free: the op then never moves, whether it waits or not.  The slot
 * holds its own future reference, as a heap op does. */
static as_future *start_count(as_reader *r, enum as__read_kind kind, size_t n)
{
    as__read_op op, *slot = &r->slot;
    as_future *f;

    if (as_future_new(r->loop, &f) < 0)
        return NULL;
    drop_abandoned(r);
    if (slot->future) {
        as__read_op_init(&op, kind); /* another read waits in the slot */
        op.n = n;
        op.future = f;
        run(r, &op, 0);
        return f;
    }
    as__read_op_init(slot, kind); /* heap_size 0: the slot */
    slot->n = n;
    slot->future = as_future_ref(f);
    run(r, slot, 1);
    return f;
}

as_future *as_reader_read(as_reader *r, ssize_t n)
{
    if (!r)
        return NULL;
    if (r->exc_code == 0 && n == 0) {
        as_future *f;
        as_bytes *empty;
        (void)as_future_new(r->loop, &f); /* each is NULL if it fails */
        (void)as_bytes_alloc(0, &empty);
        if (f && empty)
            as_future_set_result(f, empty, free);
        else if (f)
            as_future_set_error(f, -ENOMEM, NULL);
        else
            free(empty);
        return f;
    }
    return start_count(r, n < 0 ? AS__OP_READALL : AS__OP_READ,
                       n < 0 ? 0 : (size_t)n);
}

as_future *as_reader_readexactly(as_reader *r, ssize_t n)
{
    if (!r)
        return NULL;
    if (n < 0)
        return as__future_failed(r->loop, AS_EINVAL,
                                 "readexactly size can not be less than zero");
    return start_count(r, AS__OP_EXACTLY, (size_t)n);
}

/* Validate separators as CPython does; 0 or the ValueError message. */
static const char *check_seps(const as_separator *seps, size_t nseps,
                              size_t *minlen, size_t *maxlen)
{
    if (nseps == 0 || !seps)
        return "Separator should contain at least one element";
    size_t lo = SIZE_MAX, hi = 0;
    for (size_t i = 0; i < nseps; i++) {
        if (seps[i].len == 0 || !seps[i].data)
            return "Separator should be at least one-byte string";
        if (seps[i].len < lo)
            lo = seps[i].len;
        if (seps[i].len > hi)
            hi = seps[i].len;
    }
    *minlen = lo;
    *maxlen = hi;
    return NULL;
}

/* Every separator read (readuntil.c's entry points) starts here, beside
 * start(), so that start() is inlined into it: a readline pays no extra
 * call for the split. */
as_future *as__reader_start_search(as_reader *r, enum as__read_kind kind,
                                   const as_separator *seps, size_t nseps,
                                   size_t limit)
{
    if (!r)
        return NULL;
    as__read_op op;
    as__read_op_init(&op, kind);
    const char *err = check_seps(seps, nseps, &op.minlen, &op.maxlen);
    if (err)
        return as__future_failed(r->loop, AS_EINVAL, err);
    op.seps = seps;
    op.nseps = nseps;
    op.limit = limit ? limit : r->limit;
    op.scan = r->consumed;
    return start(r, &op);
}

size_t as_reader_peek(const as_reader *r, const unsigned char **data)
{
    if (!r) {
        if (data)
            *data = NULL;
        return 0;
    }
    if (data)
        *data = as_buffer_data(&r->buf);
    return as_buffer_len(&r->buf);
}

size_t as_reader_buffered(const as_reader *r)
{
    if (!r)
        return 0;
    return as_buffer_len(&r->buf);
}

size_t as_reader_memory(const as_reader *r)
{
    if (!r)
        return 0;
    return as_buffer_capacity(&r->buf) + (r->spare ? r->spare_cap : 0);
}

/* ------------------------------------------------------------ flow control */

int as_reader_set_flow_control(as_reader *r, as_reader_flow_fn pause,
                               as_reader_flow_fn resume, void *userdata,
                               as_destroy_fn destroy)
{
    if (!r)
        return AS_EINVAL;
    drop_flow(r);
    if (pause) {
        r->pause_fn = pause;
        r->resume_fn = resume;
        r->flow_ud = userdata;
        r->flow_destroy = destroy;
    }
    return 0;
}

void as__reader_set_tap(as_reader *r, as__reader_tap_fn fn, void *userdata)
{
    r->tap = fn;
    r->tap_ud = fn ? userdata : NULL;
}

void as__reader_tap_consume(as_reader *r, size_t n)
{
    as__reader_consume(r, n);
    as__reader_maybe_resume(r);
}

int as_reader_paused(const as_reader *r)
{
    if (!r)
        return 0;
    return r->paused;
}
