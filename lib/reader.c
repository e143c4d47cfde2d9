/*
 * reader.c - StreamReader (see reader.h for the contract).
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
 * A read that can be answered at once never allocates anything but its
 * future and its result: the step runs on a read_op on the stack, which is
 * copied to the heap (with its separators) only if it must wait.
 *
 * Cancellation is noticed lazily but synchronously: every entry point first
 * drops a waiter whose future is already done (cancelled), so a read right
 * after as_future_cancel() works without a loop turn, and nothing was
 * consumed because steps only consume when they produce their outcome.
 */
#include "reader.h"
#include "errors.h"
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum op_kind {
    OP_READ,     /* read(n > 0) */
    OP_READALL,  /* read(n < 0) */
    OP_EXACTLY,  /* readexactly(n) */
    OP_UNTIL,    /* readuntil(seps), readuntil_ex */
    OP_LINE,     /* readline(), readline_limit */
    OP_DISCARD,  /* discard_until(seps) */
    OP_LINES     /* iter_lines(): readline in a loop, calling line_fn */
};

typedef struct read_op {
    enum op_kind kind;
    as_future *future;        /* the caller's future; the op holds a ref when on the heap */
    size_t n;                 /* read / readexactly count */
    size_t limit;             /* until / line: this call's limit */
    unsigned long long scan;  /* stream position the separator search resumes at */
    unsigned long long dropped; /* discard: bytes dropped so far */
    const as_separator *seps; /* the separators (copied when on the heap) */
    size_t nseps;
    size_t minlen, maxlen;    /* shortest and longest separator */
    size_t heap_size;         /* on the heap: the block's size (op_to_heap) */
    int woken;                /* fed since it started waiting: retry on wake */
    int started;              /* iteration: first step has run */
    as_reader_line_fn line_fn;
    void *line_ud;
    as_destroy_fn line_destroy;
} read_op;

struct as_reader {
    int refs;
    as_loop *loop;
    size_t limit;
    size_t keep;       /* buffer storage kept when it empties (as_reader_new) */
    as_buffer buf;
    unsigned long long consumed; /* stream position of the first buffered byte */
    int eof;
    int exc_code;      /* stored exception, 0 if none */
    char *exc_msg;     /* its message, or NULL for as_strerror(exc_code) */
    read_op *waiter;   /* the one waiting read, or NULL */
    as_handle *wake_handle; /* runs on_wake() at the end of a turn; made once */
    as_bytes *spare;   /* a block to hold the next result (as__reader_recycle) */
    size_t spare_cap;  /* bytes it can hold: its length when it came back */
    as_reader_flow_fn pause_fn, resume_fn;
    void *flow_ud;
    as_destroy_fn flow_destroy;
    int paused;
    as__reader_tap_fn tap;  /* a layer above reading what arrives (internal.h) */
    void *tap_ud;
};

/* What a step produced: a result, or an error with message and detail. */
typedef struct outcome {
    int code;                 /* 0: result */
    const char *msg;          /* NULL: as_strerror(code) */
    char msgbuf[128];
    void *result;
    as_destroy_fn result_destroy;
    void *detail;
    as_destroy_fn detail_destroy;
} outcome;

static const char MSG_NOT_FOUND[] = "Separator is not found, and chunk exceed the limit";
static const char MSG_FOUND[] = "Separator is found, but chunk is longer than limit";

/* ------------------------------------------------------------ helpers */

/* Everything but msgbuf, which only a formatted message uses: clearing its
 * 128 bytes on every read would cost more than the rest of a read. */
static void outcome_init(outcome *o)
{
    o->code = 0;
    o->msg = NULL;
    o->result = NULL;
    o->result_destroy = NULL;
    o->detail = NULL;
    o->detail_destroy = NULL;
}

static void outcome_error(outcome *o, int code, const char *msg)
{
    o->code = code;
    o->msg = msg;
}

static void result_bytes(outcome *o, as_bytes *b)
{
    if (!b) {
        outcome_error(o, -ENOMEM, NULL);
        return;
    }
    o->code = 0;
    o->result = b;
    o->result_destroy = free;
}

static void incomplete_free(void *p)
{
    as_incomplete_read *ir = p;
    if (ir) {
        free(ir->partial);
        free(ir);
    }
}

/* Settle a future with an outcome.  If the future is already done (it cannot
 * be, by construction, but a library never trusts that), free the pieces. */
static void settle(as_future *f, outcome *o)
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

static void consume(as_reader *r, size_t n)
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
static void take(as_reader *r, size_t n, outcome *o)
{
    size_t len = as_buffer_len(&r->buf);
    if (n > len)
        n = len;
    if (n >= HANDOFF_MIN && n == len && n == as_buffer_capacity(&r->buf)) {
        as_bytes *whole = as_buffer_detach(&r->buf);
        if (whole) {
            r->consumed += n;
            result_bytes(o, whole);
            return;
        }
    }
    as_bytes *b = result_block(r, n);
    if (b) {
        if (n)
            memcpy(b->data, as_buffer_data(&r->buf), n);
        consume(r, n);
    }
    result_bytes(o, b);
}

/* CPython's _maybe_resume_transport(). */
static void maybe_resume(as_reader *r)
{
    if (r->paused && as_buffer_len(&r->buf) <= r->limit) {
        r->paused = 0;
        if (r->resume_fn)
            r->resume_fn(r, r->flow_ud);
    }
}

/* IncompleteReadError(partial = whole buffer, expected), emptying it.
 * expected < 0 means None.  The detail is allocated first, so a failed
 * allocation consumes nothing. */
static void incomplete(as_reader *r, long long expected, outcome *o)
{
    as_incomplete_read *ir = malloc(sizeof *ir);
    as_bytes *partial = NULL;
    if (!ir || as_bytes_new(as_buffer_data(&r->buf), as_buffer_len(&r->buf),
                            &partial) < 0) {
        free(ir);
        outcome_error(o, -ENOMEM, NULL);
        return;
    }
    consume(r, partial->len);
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
    outcome_error(o, AS_EINCOMPLETE, o->msgbuf);
    o->detail = ir;
    o->detail_destroy = incomplete_free;
}

static void overrun(outcome *o, const char *msg, size_t consumed)
{
    as_limit_overrun *lo = malloc(sizeof *lo);
    if (!lo) {
        outcome_error(o, -ENOMEM, NULL);
        return;
    }
    lo->consumed = consumed;
    outcome_error(o, AS_ELIMIT, msg);
    o->detail = lo;
    o->detail_destroy = free;
}

static int stored_exception(as_reader *r, outcome *o)
{
    if (r->exc_code == 0)
        return 0;
    outcome_error(o, r->exc_code, r->exc_msg);
    return 1;
}

/* ------------------------------------------------------------ search */

/*
 * Look for the op's separators in the buffer from where the last search
 * stopped.  Returns 1 with *start, *end and *idx set to the winning match (the one
 * that ends first; on equal ends the shorter), or 0 having advanced
 * op->scan to len + 1 - maxlen, the first place a separator can still
 * start.  Each separator is searched only up to the best end found so
 * far, so bytes beyond the answer are not scanned either.
 */
static int search(as_reader *r, read_op *op, size_t *start, size_t *end,
                  size_t *idx)
{
    size_t len = as_buffer_len(&r->buf);
    size_t offset = 0;
    if (op->scan > r->consumed) {
        unsigned long long rel = op->scan - r->consumed;
        offset = rel > len ? len : (size_t)rel;
    }
    if (len - offset < op->minlen)
        return 0;

    size_t best_end = AS_BUFFER_NPOS, best_start = 0, best_len = 0, best = 0;
    for (size_t i = 0; i < op->nseps; i++) {
        const as_separator *s = &op->seps[i];
        size_t to = best_end == AS_BUFFER_NPOS ? len : best_end;
        size_t pos = as_buffer_find(&r->buf, s->data, s->len, offset, to);
        if (pos == AS_BUFFER_NPOS)
            continue;
        size_t e = pos + s->len;
        if (best_end == AS_BUFFER_NPOS || e < best_end ||
            (e == best_end && s->len < best_len)) {
            best_end = e;
            best_start = pos;
            best_len = s->len;
            best = i;
        }
    }
    if (best_end != AS_BUFFER_NPOS) {
        *start = best_start;
        *end = best_end;
        *idx = best;
        return 1;
    }
    offset = len + 1 > op->maxlen ? len + 1 - op->maxlen : 0;
    op->scan = r->consumed + offset;
    return 0;
}

/* Offset of the search position in the current buffer. */
static size_t scan_offset(const as_reader *r, const read_op *op)
{
    if (op->scan <= r->consumed)
        return 0;
    return (size_t)(op->scan - r->consumed);
}

/* ------------------------------------------------------------ steps */

/*
 * Each step returns 1 with *o filled in, or 0 if it must wait for data.
 * Steps consume bytes only when they return 1.
 */

static int step_read(as_reader *r, read_op *op, outcome *o)
{
    if (stored_exception(r, o))
        return 1;
    if (as_buffer_len(&r->buf) == 0 && !r->eof)
        return 0;
    take(r, op->n, o);
    maybe_resume(r);
    return 1;
}

static int step_readall(as_reader *r, read_op *op, outcome *o)
{
    (void)op;
    if (stored_exception(r, o))
        return 1;
    if (!r->eof)
        return 0;
    take(r, as_buffer_len(&r->buf), o);
    maybe_resume(r);
    return 1;
}

static int step_exactly(as_reader *r, read_op *op, outcome *o)
{
    if (stored_exception(r, o))
        return 1;
    if (as_buffer_len(&r->buf) >= op->n) {
        take(r, op->n, o);
        maybe_resume(r);
        return 1;
    }
    if (r->eof) {
        incomplete(r, (long long)op->n, o);
        return 1;
    }
    return 0;
}

/* readuntil; also the heart of readline.  Returns as the steps do. */
static int step_until(as_reader *r, read_op *op, outcome *o)
{
    size_t start, end, idx;
    if (stored_exception(r, o))
        return 1;
    size_t before = scan_offset(r, op);
    size_t len = as_buffer_len(&r->buf);
    if (search(r, op, &start, &end, &idx)) {
        if (start > op->limit) {
            overrun(o, MSG_FOUND, start);
            return 1;
        }
        take(r, end, o);
        maybe_resume(r);
        return 1;
    }
    /* CPython checks the limit only after a search that ran. */
    if (len - (before > len ? len : before) >= op->minlen) {
        size_t offset = scan_offset(r, op);
        if (offset > op->limit) {
            overrun(o, MSG_NOT_FOUND, offset);
            return 1;
        }
    }
    if (r->eof) {
        incomplete(r, -1, o);
        return 1;
    }
    return 0;
}

/* readline: readuntil("\n") with CPython's two rewrites of its errors. */
static int step_line(as_reader *r, read_op *op, outcome *o)
{
    if (!step_until(r, op, o))
        return 0;
    if (o->code == AS_EINCOMPLETE) {
        /* EOF: the partial line (maybe b"") is the result. */
        as_incomplete_read *ir = o->detail;
        outcome_init(o);
        result_bytes(o, ir->partial);
        free(ir);
    } else if (o->code == AS_ELIMIT) {
        /* Drop the long line and its "\n" if the "\n" is there, else the
         * whole buffer; then fail with the same message and detail. */
        size_t consumed = ((as_limit_overrun *)o->detail)->consumed;
        const unsigned char *d = as_buffer_data(&r->buf);
        if (consumed < as_buffer_len(&r->buf) && d[consumed] == '\n')
            consume(r, consumed + 1);
        else
            consume(r, as_buffer_len(&r->buf));
        maybe_resume(r);
    }
    return 1;
}

static int step_discard(as_reader *r, read_op *op, outcome *o)
{
    size_t start, end, idx;
    if (stored_exception(r, o))
        return 1;
    if (search(r, op, &start, &end, &idx)) {
        as_discarded *res = malloc(sizeof *res);
        if (!res) {
            outcome_error(o, -ENOMEM, NULL);
            return 1;
        }
        consume(r, end);
        op->dropped += end;
        res->count = op->dropped;
        res->separator = idx;
        o->code = 0;
        o->result = res;
        o->result_destroy = free;
        maybe_resume(r);
        return 1;
    }
    /* Nothing before the search position can start a separator: drop it,
     * so junk of any length costs no memory. */
    size_t drop = scan_offset(r, op);
    if (r->eof)
        drop = as_buffer_len(&r->buf);
    consume(r, drop);
    op->dropped += drop;
    maybe_resume(r);
    if (r->eof) {
        as_incomplete_read *ir = malloc(sizeof *ir);
        as_bytes *partial = NULL;
        if (!ir || as_bytes_alloc(0, &partial) < 0) {
            free(ir);
            outcome_error(o, -ENOMEM, NULL);
            return 1;
        }
        ir->partial = partial;
        ir->expected = -1;
        snprintf(o->msgbuf, sizeof o->msgbuf,
                 "%llu bytes discarded, separator not found before EOF",
                 op->dropped);
        outcome_error(o, AS_EINCOMPLETE, o->msgbuf);
        o->detail = ir;
        o->detail_destroy = incomplete_free;
        return 1;
    }
    return 0;
}

static int step_lines(as_reader *r, read_op *op, outcome *o);

static int step(as_reader *r, read_op *op, outcome *o)
{
    switch (op->kind) {
    case OP_READ: return step_read(r, op, o);
    case OP_READALL: return step_readall(r, op, o);
    case OP_EXACTLY: return step_exactly(r, op, o);
    case OP_UNTIL: return step_until(r, op, o);
    case OP_LINE: return step_line(r, op, o);
    case OP_DISCARD: return step_discard(r, op, o);
    case OP_LINES: return step_lines(r, op, o);
    }
    outcome_error(o, AS_EINVAL, NULL);
    return 1;
}

static const char *func_name(const read_op *op)
{
    switch (op->kind) {
    case OP_READ:
    case OP_READALL: return "read";
    case OP_EXACTLY: return "readexactly";
    case OP_DISCARD: return "discard_until";
    default: return "readuntil";
    }
}

/* ------------------------------------------------------------ op life */

static void op_free(read_op *op)
{
    as_loop *loop = as_future_loop(op->future);
    if (op->line_destroy)
        op->line_destroy(op->line_ud);
    as_future_unref(op->future);
    as__loop_free(loop, op, op->heap_size);
}

/*
 * Copy a stack op to the heap with a future reference and its own copy of
 * the separators, all in one block from the loop's cache:
 *
 *      [ read_op | as_separator[nseps] | separator bytes ]
 *
 * (sizeof(read_op) is a multiple of its alignment, which suits the array.)
 * A readline that waits costs one small block.
 */
static read_op *op_to_heap(const read_op *src)
{
    as_loop *loop = as_future_loop(src->future);
    size_t total = 0, at = 0, size;
    read_op *op;
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
        read_op *op = r->waiter;
        r->waiter = NULL;
        op_free(op);
    }
}

/*
 * CPython's _wait_for_data(): the one place a read starts waiting.
 * Makes *opp the waiter (copying it to the heap if it is not already
 * there) and returns 1, or fills *o with the busy error and returns 0.
 */
static int wait_for_data(as_reader *r, read_op **opp, int on_heap, outcome *o)
{
    if (r->waiter) {
        snprintf(o->msgbuf, sizeof o->msgbuf,
                 "%s() called while another coroutine is already waiting "
                 "for incoming data", func_name(*opp));
        outcome_error(o, AS_EBUSY, o->msgbuf);
        return 0;
    }
    if (!on_heap) {
        read_op *op = op_to_heap(*opp);
        if (!op) {
            outcome_error(o, -ENOMEM, NULL);
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
static void run(as_reader *r, read_op *op, int on_heap)
{
    outcome o;
    outcome_init(&o);
    if (!step(r, op, &o) && wait_for_data(r, &op, on_heap, &o))
        return;
    if (op->kind == OP_LINES && o.code == 0) {
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
        op_free(op);
}

/* The iteration: deliver every buffered line to line_fn, re-reading the
 * state after each call (the callback may read, feed, cancel or unref). */
static int step_lines(as_reader *r, read_op *op, outcome *o)
{
    for (;;) {
        if (as_future_done(op->future))
            return 1; /* cancelled (from the callback or before): stop */
        outcome line;
        outcome_init(&line);
        if (!step_line(r, op, &line))
            return 0;
        if (line.code != 0) {
            *o = line;
            if (o->msg == line.msgbuf)
                o->msg = o->msgbuf;
            return 1;
        }
        as_bytes *b = line.result;
        if (b->len == 0) {
            free(b);
            return 1; /* EOF */
        }
        int stop = op->line_fn(r, b, op->line_ud);
        free(b);
        if (stop)
            return 1;
    }
}

/* The end-of-turn retry.  It holds the reader reference wake() took
 * (lifetime rule 3) and drops it when done. */
static void on_wake(void *userdata)
{
    as_reader *r = userdata;
    read_op *op = r->waiter;
    if (op && op->woken) {
        r->waiter = NULL; /* CPython: finally: self._waiter = None */
        op->woken = 0;
        if (as_future_done(op->future))
            op_free(op);
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
        read_op *op = r->waiter;
        r->waiter = NULL;
        as_future_set_error(op->future, rc, NULL);
        op_free(op);
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
        read_op *op = r->waiter;
        r->waiter = NULL;
        as_future_cancel(op->future, "reader freed");
        op_free(op);
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
    read_op *op;

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
        read_op *op = r->waiter;
        r->waiter = NULL;
        as_future_set_error(op->future, code, message);
        op_free(op);
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
static as_future *start(as_reader *r, read_op *op)
{
    as_future *f;
    if (as_future_new(r->loop, &f) < 0)
        return NULL;
    op->future = f;
    drop_abandoned(r);
    run(r, op, 0);
    return f;
}

static void op_init(read_op *op, enum op_kind kind)
{
    memset(op, 0, sizeof *op);
    op->kind = kind;
}

as_future *as_reader_read(as_reader *r, ssize_t n)
{
    if (!r)
        return NULL;
    read_op op;
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
    op_init(&op, n < 0 ? OP_READALL : OP_READ);
    op.n = n < 0 ? 0 : (size_t)n;
    return start(r, &op);
}

as_future *as_reader_readexactly(as_reader *r, ssize_t n)
{
    if (!r)
        return NULL;
    read_op op;
    if (n < 0)
        return as__future_failed(r->loop, AS_EINVAL,
                                 "readexactly size can not be less than zero");
    op_init(&op, OP_EXACTLY);
    op.n = (size_t)n;
    return start(r, &op);
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

static as_future *start_search(as_reader *r, enum op_kind kind,
                               const as_separator *seps, size_t nseps,
                               size_t limit)
{
    if (!r)
        return NULL;
    read_op op;
    op_init(&op, kind);
    const char *err = check_seps(seps, nseps, &op.minlen, &op.maxlen);
    if (err)
        return as__future_failed(r->loop, AS_EINVAL, err);
    op.seps = seps;
    op.nseps = nseps;
    op.limit = limit ? limit : r->limit;
    op.scan = r->consumed;
    return start(r, &op);
}

as_future *as_reader_readuntil(as_reader *r, const void *separator, size_t seplen)
{
    if (!r)
        return NULL;
    as_separator s = { separator, seplen };
    if (seplen == 0)
        return as__future_failed(r->loop, AS_EINVAL,
                                 "Separator should be at least one-byte string");
    return start_search(r, OP_UNTIL, &s, 1, 0);
}

as_future *as_reader_readuntil_any(as_reader *r, const as_separator *seps,
                                   size_t nseps)
{
    return start_search(r, OP_UNTIL, seps, nseps, 0);
}

as_future *as_reader_readuntil_ex(as_reader *r, const as_separator *seps,
                                  size_t nseps, size_t limit)
{
    return start_search(r, OP_UNTIL, seps, nseps, limit);
}

static const as_separator NEWLINE = { "\n", 1 };

as_future *as_reader_readline(as_reader *r)
{
    return start_search(r, OP_LINE, &NEWLINE, 1, 0);
}

as_future *as_reader_readline_limit(as_reader *r, size_t limit)
{
    return start_search(r, OP_LINE, &NEWLINE, 1, limit);
}

as_future *as_reader_discard_until(as_reader *r, const as_separator *seps,
                                   size_t nseps)
{
    return start_search(r, OP_DISCARD, seps, nseps, SIZE_MAX);
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

/* ------------------------------------------------------------ iteration */

/* The first step of an iteration runs from the loop, never inside
 * as_reader_iter_lines() (no user callback runs synchronously). */
typedef struct lines_start {
    as_reader *reader; /* a reference, until the first step has run */
    read_op *op;
    int started;
} lines_start;

static void lines_first(void *userdata)
{
    lines_start *s = userdata;
    s->started = 1;
    drop_abandoned(s->reader);
    run(s->reader, s->op, 1);
}

static void lines_start_free(void *userdata)
{
    lines_start *s = userdata;
    if (!s->started)
        op_free(s->op); /* the loop closed first: the iteration never ran */
    as_reader_unref(s->reader);
    free(s);
}

as_future *as_reader_iter_lines(as_reader *r, as_reader_line_fn fn,
                                void *userdata, as_destroy_fn destroy)
{
    if (!r)
        return NULL;
    if (!fn)
        return as__future_failed(r->loop, AS_EINVAL,
                                 "iter_lines needs a line callback");
    as_future *f;
    (void)as_future_new(r->loop, &f); /* NULL if it fails */
    lines_start *s = malloc(sizeof *s);
    read_op proto, *op = NULL;
    if (f) {
        op_init(&proto, OP_LINES);
        proto.future = f;
        proto.seps = &NEWLINE;
        proto.nseps = 1;
        proto.minlen = proto.maxlen = 1;
        proto.limit = r->limit;
        proto.scan = r->consumed;
        op = op_to_heap(&proto); /* takes the op's own future reference */
    }
    if (!f || !s || !op) {
        if (op)
            op_free(op);
        as_future_unref(f);
        free(s);
        return NULL;
    }
    s->reader = as_reader_ref(r);
    s->op = op;
    s->started = 0;
    int rc = as_loop_call_soon(r->loop, lines_first, s, lines_start_free, NULL);
    if (rc != 0) {
        op_free(op);
        as_reader_unref(r);
        free(s);
        as_future_set_error(f, rc, NULL);
        return f;
    }
    /* Only now does the op own userdata: on failure above destroy must not
     * run (loop.h rule 3). */
    op->line_fn = fn;
    op->line_ud = userdata;
    op->line_destroy = destroy;
    return f;
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

void as__reader_consume(as_reader *r, size_t n)
{
    consume(r, n);
    maybe_resume(r);
}

int as_reader_paused(const as_reader *r)
{
    if (!r)
        return 0;
    return r->paused;
}
