/*
 * readuntil.c - the StreamReader's separator reads: readuntil (one
 * separator or several, with the call's own limit), readline and
 * discard_until.  Split off reader.c, which owns the reader and runs every
 * read: here are the search, the steps that reader.c's step() calls for
 * these kinds of read op (reader_impl.h), and the public calls, which
 * reader.c's as__reader_start_search() checks and starts.  Contracts:
 * reader.h.
 *
 * A read that waits keeps how far it has searched as a stream position
 * (op->scan), not a buffer offset, so it resumes where it stopped even if
 * another read consumed bytes meanwhile, and never scans a byte twice.
 */
#include "reader_impl.h"
#include "internal.h"

#include <stdint.h>
#include <stdio.h>

static const char MSG_NOT_FOUND[] = "Separator is not found, and chunk exceed the limit";
static const char MSG_FOUND[] = "Separator is found, but chunk is longer than limit";

static void overrun(as__read_outcome *o, const char *msg, size_t consumed)
{
    as_limit_overrun *lo = malloc(sizeof *lo);
    if (!lo) {
        as__outcome_error(o, -ENOMEM, NULL);
        return;
    }
    lo->consumed = consumed;
    as__outcome_error(o, AS_ELIMIT, msg);
    o->detail = lo;
    o->detail_destroy = free;
}

/* ------------------------------------------------------------ search */

/*
 * Look for the op's separators in the buffer from where the last search
 * stopped.  Returns 1 with *start, *end and *idx set to the winning match
 * (the one that ends first; on equal ends the shorter), or 0 having advanced
 * op->scan to len + 1 - maxlen, the first place a separator can still
 * start.  Each separator is searched only up to the best end found so
 * far, so bytes beyond the answer are not scanned either.
 */
static int search(as_reader *r, as__read_op *op, size_t *start, size_t *end,
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
static size_t scan_offset(const as_reader *r, const as__read_op *op)
{
    if (op->scan <= r->consumed)
        return 0;
    return (size_t)(op->scan - r->consumed);
}

/* ------------------------------------------------------------ steps */

/* readuntil; also the heart of readline.  Returns as the steps do. */
int as__reader_step_until(as_reader *r, as__read_op *op, as__read_outcome *o)
{
    size_t start, end, idx;
    if (as__reader_stored_exception(r, o))
        return 1;
    size_t before = scan_offset(r, op);
    size_t len = as_buffer_len(&r->buf);
    if (search(r, op, &start, &end, &idx)) {
        if (start > op->limit) {
            overrun(o, MSG_FOUND, start);
            return 1;
        }
        as__reader_take(r, end, o);
        as__reader_maybe_resume(r);
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
        as__reader_incomplete(r, -1, o);
        return 1;
    }
    return 0;
}

/* readline: readuntil("\n") with CPython's two rewrites of its errors. */
int as__reader_step_line(as_reader *r, as__read_op *op, as__read_outcome *o)
{
    if (!as__reader_step_until(r, op, o))
        return 0;
    if (o->code == AS_EINCOMPLETE) {
        /* EOF: the partial line (maybe b"") is the result. */
        as_incomplete_read *ir = o->detail;
        as__outcome_init(o);
        as__outcome_bytes(o, ir->partial);
        free(ir);
    } else if (o->code == AS_ELIMIT) {
        /* Drop the long line and its "\n" if the "\n" is there, else the
         * whole buffer; then fail with the same message and detail. */
        size_t consumed = ((as_limit_overrun *)o->detail)->consumed;
        const unsigned char *d = as_buffer_data(&r->buf);
        if (consumed < as_buffer_len(&r->buf) && d[consumed] == '\n')
            as__reader_consume(r, consumed + 1);
        else
            as__reader_consume(r, as_buffer_len(&r->buf));
        as__reader_maybe_resume(r);
    }
    return 1;
}

int as__reader_step_discard(as_reader *r, as__read_op *op, as__read_outcome *o)
{
    size_t start, end, idx;
    if (as__reader_stored_exception(r, o))
        return 1;
    if (search(r, op, &start, &end, &idx)) {
        as_discarded *res = malloc(sizeof *res);
        if (!res) {
            as__outcome_error(o, -ENOMEM, NULL);
            return 1;
        }
        as__reader_consume(r, end);
        op->dropped += end;
        res->count = op->dropped;
        res->separator = idx;
        o->code = 0;
        o->result = res;
        o->result_destroy = free;
        as__reader_maybe_resume(r);
        return 1;
    }
    /* Nothing before the search position can start a separator: drop it,
     * so junk of any length costs no memory. */
    size_t drop = scan_offset(r, op);
    if (r->eof)
        drop = as_buffer_len(&r->buf);
    as__reader_consume(r, drop);
    op->dropped += drop;
    as__reader_maybe_resume(r);
    if (r->eof) {
        as_incomplete_read *ir = malloc(sizeof *ir);
        as_bytes *partial = NULL;
        if (!ir || as_bytes_alloc(0, &partial) < 0) {
            free(ir);
            as__outcome_error(o, -ENOMEM, NULL);
            return 1;
        }
        ir->partial = partial;
        ir->expected = -1;
        snprintf(o->msgbuf, sizeof o->msgbuf,
                 "%llu bytes discarded, separator not found before EOF",
                 op->dropped);
        as__outcome_error(o, AS_EINCOMPLETE, o->msgbuf);
        o->detail = ir;
        o->detail_destroy = as__reader_incomplete_free;
        return 1;
    }
    return 0;
}

/* ------------------------------------------------------------ reads */

as_future *as_reader_readuntil(as_reader *r, const void *separator, size_t seplen)
{
    if (!r)
        return NULL;
    as_separator s = { separator, seplen };
    if (seplen == 0)
        return as__future_failed(r->loop, AS_EINVAL,
                                 "Separator should be at least one-byte string");
    return as__reader_start_search(r, AS__OP_UNTIL, &s, 1, 0);
}

as_future *as_reader_readuntil_any(as_reader *r, const as_separator *seps,
                                   size_t nseps)
{
    return as__reader_start_search(r, AS__OP_UNTIL, seps, nseps, 0);
}

as_future *as_reader_readuntil_ex(as_reader *r, const as_separator *seps,
                                  size_t nseps, size_t limit)
{
    return as__reader_start_search(r, AS__OP_UNTIL, seps, nseps, limit);
}

static const as_separator NEWLINE = { "\n", 1 };

as_future *as_reader_readline(as_reader *r)
{
    return as__reader_start_search(r, AS__OP_LINE, &NEWLINE, 1, 0);
}

as_future *as_reader_readline_limit(as_reader *r, size_t limit)
{
    return as__reader_start_search(r, AS__OP_LINE, &NEWLINE, 1, limit);
}

as_future *as_reader_discard_until(as_reader *r, const as_separator *seps,
                                   size_t nseps)
{
    return as__reader_start_search(r, AS__OP_DISCARD, seps, nseps, SIZE_MAX);
}
