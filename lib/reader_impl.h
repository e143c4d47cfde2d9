/*
 * reader_impl.h - the StreamReader's insides, shared by the three files
 * that implement reader.h (internal: not installed):
 *
 *   reader.c     the reader itself: its life, feeding, flow control, how a
 *                read waits and is retried, and the reads that count bytes
 *                (read, readexactly);
 *   readuntil.c  the reads that search for a separator (readuntil,
 *                readline, discard_until) and the search itself;
 *   lines.c      the line iterator (as_reader_iter_lines()).
 *
 * A read is a read op that a "step" function checks against the buffer;
 * reader.c's opening comment tells the whole story.  What more than one of
 * the files needs is here: the structs, the few-line helpers every step
 * uses (static inline, so the split costs the hot path no calls), and the
 * as__reader_ calls that each file offers the others.
 */
#ifndef AS_READER_IMPL_H
#define AS_READER_IMPL_H

#include "reader.h"
#include "errors.h"
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

enum as__read_kind {
    AS__OP_READ,     /* read(n > 0) */
    AS__OP_READALL,  /* read(n < 0) */
    AS__OP_EXACTLY,  /* readexactly(n) */
    AS__OP_UNTIL,    /* readuntil(seps), readuntil_ex */
    AS__OP_LINE,     /* readline(), readline_limit */
    AS__OP_DISCARD,  /* discard_until(seps) */
    AS__OP_LINES     /* iter_lines(): readline in a loop, calling line_fn */
};

typedef struct as__read_op {
    enum as__read_kind kind;
    as_future *future;        /* the caller's future; the op holds a ref when on the heap */
    size_t n;                 /* read / readexactly count */
    size_t limit;             /* until / line: this call's limit */
    unsigned long long scan;  /* stream position the separator search resumes at */
    unsigned long long dropped; /* discard: bytes dropped so far */
    const as_separator *seps; /* the separators (copied when on the heap) */
    size_t nseps;
    size_t minlen, maxlen;    /* shortest and longest separator */
    size_t heap_size;         /* on the heap: the block's size (as__read_op_to_heap);
                                 0 for the reader's own slot (struct as_reader) */
    int woken;                /* fed since it started waiting: retry on wake */
    int started;              /* iteration: first step has run */
    as_reader_line_fn line_fn;
    void *line_ud;
    as_destroy_fn line_destroy;
} as__read_op;

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
    as__read_op *waiter; /* the one waiting read, or NULL */
    /* A count read (read, readexactly) runs in this slot when it is free
     * (slot.future NULL), so one that waits is not copied to the heap:
     * there is one waiter at most, and an echo's reads wait every time. */
    as__read_op slot;
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
typedef struct as__read_outcome {
    int code;                 /* 0: result */
    const char *msg;          /* NULL: as_strerror(code) */
    char msgbuf[128];
    void *result;
    as_destroy_fn result_destroy;
    void *detail;
    as_destroy_fn detail_destroy;
} as__read_outcome;

/* ------------------------------------------------- small shared helpers */

/* Everything but msgbuf, which only a formatted message uses: clearing its
 * 128 bytes on every read would cost more than the rest of a read. */
static inline void as__outcome_init(as__read_outcome *o)
{
    o->code = 0;
    o->msg = NULL;
    o->result = NULL;
    o->result_destroy = NULL;
    o->detail = NULL;
    o->detail_destroy = NULL;
}

static inline void as__outcome_error(as__read_outcome *o, int code,
                                     const char *msg)
{
    o->code = code;
    o->msg = msg;
}

/* The result is b (NULL: allocating it failed). */
static inline void as__outcome_bytes(as__read_outcome *o, as_bytes *b)
{
    if (!b) {
        as__outcome_error(o, -ENOMEM, NULL);
        return;
    }
    o->code = 0;
    o->result = b;
    o->result_destroy = free;
}

/* 1 with *o set to the stored exception if there is one, else 0. */
static inline int as__reader_stored_exception(as_reader *r, as__read_outcome *o)
{
    if (r->exc_code == 0)
        return 0;
    as__outcome_error(o, r->exc_code, r->exc_msg);
    return 1;
}

/* CPython's _maybe_resume_transport(). */
static inline void as__reader_maybe_resume(as_reader *r)
{
    if (r->paused && as_buffer_len(&r->buf) <= r->limit) {
        r->paused = 0;
        if (r->resume_fn)
            r->resume_fn(r, r->flow_ud);
    }
}

static inline void as__read_op_init(as__read_op *op, enum as__read_kind kind)
{
    memset(op, 0, sizeof *op);
    op->kind = kind;
}

/* ------------------------------------------------- reader.c offers */

/* Drop n buffered bytes (at most all of them), trimming the storage. */
void as__reader_consume(as_reader *r, size_t n);
/* Take the first n bytes (at most all) as the result, consuming them. */
void as__reader_take(as_reader *r, size_t n, as__read_outcome *o);
/* IncompleteReadError(partial = the whole buffer, expected), emptying the
 * buffer; expected < 0 means None.  On -ENOMEM nothing is consumed. */
void as__reader_incomplete(as_reader *r, long long expected,
                           as__read_outcome *o);
/* The destroy hook of an as_incomplete_read detail. */
void as__reader_incomplete_free(void *detail);
/* Start a separator read of kind (UNTIL, LINE, DISCARD): check the
 * separators as CPython does (AS_EINVAL and its message), set up the op
 * (limit 0 = the reader's), make its future and run it once.  NULL for a
 * NULL reader or if no future could be made. */
as_future *as__reader_start_search(as_reader *r, enum as__read_kind kind,
                                   const as_separator *seps, size_t nseps,
                                   size_t limit);
/* A copy of op on the heap, with its separators and a future reference
 * (NULL on ENOMEM); as__read_op_free() gives it back. */
as__read_op *as__read_op_to_heap(const as__read_op *src);
void as__read_op_free(as__read_op *op);
/* Run a heap op now, from a loop callback: step it, and make it the
 * waiter or settle and free it. */
void as__reader_run_op(as_reader *r, as__read_op *op);

/* ------------------------------------------------- the steps elsewhere */

/*
 * Each step returns 1 with *o filled in, or 0 if it must wait for data,
 * and consumes bytes only when it returns 1.  reader.c's step() calls
 * these for the kinds it does not step itself.
 */
/* readuntil.c: readuntil (UNTIL), readline (LINE, and one line of LINES),
 * discard_until (DISCARD). */
int as__reader_step_until(as_reader *r, as__read_op *op, as__read_outcome *o);
int as__reader_step_line(as_reader *r, as__read_op *op, as__read_outcome *o);
int as__reader_step_discard(as_reader *r, as__read_op *op, as__read_outcome *o);
/* lines.c: LINES, every buffered line to the iteration's callback. */
int as__reader_step_lines(as_reader *r, as__read_op *op, as__read_outcome *o);

#endif /* AS_READER_IMPL_H */
