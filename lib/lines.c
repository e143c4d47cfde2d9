/*
 * lines.c - the StreamReader's line iterator, as_reader_iter_lines()
 * (`async for line in reader`; contract in reader.h).  Split off reader.c:
 * an iteration is one more kind of read op (AS__OP_LINES, reader_impl.h)
 * that reader.c waits, wakes and settles like any other read.  What is
 * here is its step, a readline step (readuntil.c) in a loop that hands
 * each line to the callback, and its start, which puts the first step on
 * the loop so the callback never runs inside as_reader_iter_lines().
 * reader.c's run() knows one thing of it: an iteration that ends well
 * finishes with no result.
 */
#include "reader_impl.h"
#include "internal.h"

/* The iteration's separator; as__read_op_to_heap() copies it into the op. */
static const as_separator NEWLINE = { "\n", 1 };

/* ------------------------------------------------------------ the step */

/* The iteration: deliver every buffered line to line_fn, re-reading the
 * state after each call (the callback may read, feed, cancel or unref). */
int as__reader_step_lines(as_reader *r, as__read_op *op, as__read_outcome *o)
{
    for (;;) {
        if (as_future_done(op->future))
            return 1; /* cancelled (from the callback or before): stop */
        as__read_outcome line;
        as__outcome_init(&line);
        if (!as__reader_step_line(r, op, &line))
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

/* ------------------------------------------------------------ the start */

/* The first step of an iteration runs from the loop, never inside
 * as_reader_iter_lines() (no user callback runs synchronously). */
typedef struct lines_start {
    as_reader *reader; /* a reference, until the first step has run */
    as__read_op *op;
    int started;
} lines_start;

static void lines_first(void *userdata)
{
    lines_start *s = userdata;
    s->started = 1;
    as__reader_run_op(s->reader, s->op);
}

static void lines_start_free(void *userdata)
{
    lines_start *s = userdata;
    if (!s->started)
        as__read_op_free(s->op); /* the loop closed first: the iteration never ran */
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
    as__read_op proto, *op = NULL;
    if (f) {
        as__read_op_init(&proto, AS__OP_LINES);
        proto.future = f;
        proto.seps = &NEWLINE;
        proto.nseps = 1;
        proto.minlen = proto.maxlen = 1;
        proto.limit = r->limit;
        proto.scan = r->consumed;
        op = as__read_op_to_heap(&proto); /* takes the op's own future reference */
    }
    if (!f || !s || !op) {
        if (op)
            as__read_op_free(op);
        as_future_unref(f);
        free(s);
        return NULL;
    }
    s->reader = as_reader_ref(r);
    s->op = op;
    s->started = 0;
    int rc = as_loop_call_soon(r->loop, lines_first, s, lines_start_free, NULL);
    if (rc != 0) {
        as__read_op_free(op);
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
