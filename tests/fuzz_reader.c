/*
 * fuzz_reader.c - a libFuzzer target that drives a StreamReader with an
 * arbitrary sequence of feeds, reads, cancels, errors and loop turns.
 *
 * Built by `./configure CC=clang --enable-fuzzer`; `make fuzz-short` runs it
 * for a few seconds.  Besides what ASan/UBSan/LeakSanitizer catch, it checks
 * the reader's promises on every input:
 *   - each successful result obeys its read (readexactly: n bytes; read(n):
 *     at most n; readuntil: ends with one of its separators, and no earlier
 *     match ends before it);
 *   - bytes are conserved: everything fed is either returned (results,
 *     incomplete-read partials), counted as discarded, or still buffered,
 *     unless readline dropped bytes on an overrun (CPython's rule);
 *   - at the end the loop closes with nothing alive.
 */
#include "asyncstreams.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXF 16

struct pending_read {
    as_future *f;
    int kind;            /* the op byte that made it */
    size_t n;            /* read / readexactly count */
    as_separator seps[3];
    unsigned char sepbuf[3][4];
    size_t nseps;
};

struct fz {
    const uint8_t *p, *end;
    as_loop *loop;
    as_reader *r;
    struct pending_read reads[MAXF];
    int nreads;
    unsigned long long fed, returned, lines;
    int dropped;         /* readline overran: conservation no longer exact */
    int flow_calls;
};

static unsigned next(struct fz *z)
{
    return z->p < z->end ? *z->p++ : 0;
}

static void noop(void *p)
{
    (void)p;
}

static void quiet(as_loop *loop, const as_error_context *c, void *u)
{
    (void)loop;
    (void)c;
    (void)u;
}

static int flow_hook(as_reader *r, void *u)
{
    struct fz *z = u;
    (void)r;
    z->flow_calls++;
    return (z->flow_calls % 7) == 0; /* sometimes "cannot pause" */
}

static int line_cb(as_reader *r, const as_bytes *line, void *u)
{
    struct fz *z = u;
    (void)r;
    z->returned += line->len;
    z->lines++;
    if (line->len == 0)
        abort(); /* iteration must never deliver the EOF marker */
    return (z->lines % 5) == 0;
}

static void turn(struct fz *z)
{
    if (as_loop_call_soon(z->loop, noop, NULL, NULL, NULL) == 0)
        as_loop_run_once(z->loop);
}

static void get_seps(struct fz *z, struct pending_read *pr, size_t count)
{
    pr->nseps = count;
    for (size_t i = 0; i < count; i++) {
        size_t len = next(z) % 4; /* 0 is an (invalid) empty separator */
        for (size_t k = 0; k < len; k++)
            pr->sepbuf[i][k] = (unsigned char)("ab\n\r"[next(z) % 4]);
        pr->seps[i].data = pr->sepbuf[i];
        pr->seps[i].len = len;
    }
}

/* Does sep end at position end of b? */
static int ends_with(const as_bytes *b, size_t end, const as_separator *s)
{
    return s->len <= end && memcmp(b->data + end - s->len, s->data, s->len) == 0;
}

static void check_result(struct fz *z, struct pending_read *pr)
{
    as_future *f = pr->f;
    int rc = as_future_error(f);

    /* discard_until drops junk as it goes: if it does not finish, the
     * count of what it dropped is not reported (documented). */
    if (pr->kind == 8 && rc != 0 && rc != AS_EINVAL)
        z->dropped = 1;
    if (rc == AS_EINCOMPLETE) {
        const as_incomplete_read *ir = as_future_error_detail(f);
        if (!ir || !ir->partial)
            abort();
        z->returned += ir->partial->len;
        if (pr->kind == 3 && ir->expected != (long long)pr->n)
            abort();
        return;
    }
    if (rc == AS_ELIMIT && (pr->kind == 6 || pr->kind == 7 || pr->kind == 9))
        z->dropped = 1;
    if (rc != 0)
        return;
    if (pr->kind == 9) {
        /* An iteration finishes with no result; its lines were counted. */
        if (as_future_result(f))
            abort();
        return;
    }
    if (pr->kind == 8) {
        const as_discarded *d = as_future_result(f);
        z->returned += d->count;
        return;
    }
    const as_bytes *b = as_future_result(f);
    if (!b)
        abort();
    z->returned += b->len;
    switch (pr->kind) {
    case 2:
        if (pr->n > 0 && b->len > pr->n)
            abort();
        break;
    case 3:
        if (b->len != pr->n)
            abort();
        break;
    case 4:
    case 5: {
        int ok = 0;
        for (size_t i = 0; i < pr->nseps; i++)
            ok |= ends_with(b, b->len, &pr->seps[i]);
        if (!ok)
            abort();
        /* No separator may end earlier. */
        for (size_t e = 1; e < b->len; e++)
            for (size_t i = 0; i < pr->nseps; i++)
                if (ends_with(b, e, &pr->seps[i]))
                    abort();
        break;
    }
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fz z;
    memset(&z, 0, sizeof z);
    z.p = data;
    z.end = data + size;
    if (as_loop_new(&z.loop) != 0)
        return 0;
    as_loop_set_exception_handler(z.loop, quiet, NULL, NULL);
    if (as_reader_new(z.loop, 1 + (ssize_t)(next(&z) % 32), &z.r) != 0)
        abort();

    while (z.p < z.end) {
        unsigned op = next(&z) % 17;
        struct pending_read *pr = z.nreads < MAXF ? &z.reads[z.nreads] : NULL;
        as_future *f = NULL;
        if (op >= 2 && op <= 9 && !pr)
            op = 11;
        if (pr)
            memset(pr, 0, sizeof *pr);
        switch (op) {
        case 0: { /* feed */
            size_t n = next(&z) % 48;
            if (n > (size_t)(z.end - z.p))
                n = (size_t)(z.end - z.p);
            if (as_reader_feed_data(z.r, z.p, n) == 0)
                z.fed += n;
            z.p += n;
            break;
        }
        case 1:
            as_reader_feed_eof(z.r);
            break;
        case 2:
            pr->n = next(&z) % 40;
            if (next(&z) % 8 == 0)
                pr->n = 0; /* read(-1): no bound to check */
            f = as_reader_read(z.r, pr->n ? (ssize_t)pr->n : -1);
            break;
        case 3:
            pr->n = next(&z) % 64;
            f = as_reader_readexactly(z.r, next(&z) % 16 == 0 ? -1 : (ssize_t)pr->n);
            break;
        case 4:
            get_seps(&z, pr, 1);
            f = as_reader_readuntil(z.r, pr->seps[0].data, pr->seps[0].len);
            break;
        case 5:
            get_seps(&z, pr, 1 + next(&z) % 3);
            f = as_reader_readuntil_ex(z.r, pr->seps, pr->nseps, next(&z) % 24);
            break;
        case 6:
            f = as_reader_readline(z.r);
            break;
        case 7:
            f = as_reader_readline_limit(z.r, next(&z) % 24);
            break;
        case 8:
            get_seps(&z, pr, 1 + next(&z) % 3);
            f = as_reader_discard_until(z.r, pr->seps, pr->nseps);
            break;
        case 9:
            f = as_reader_iter_lines(z.r, line_cb, &z, NULL);
            break;
        case 10: /* cancel one */
            if (z.nreads)
                as_future_cancel(z.reads[next(&z) % z.nreads].f, NULL);
            break;
        case 11:
        case 12:
            turn(&z);
            break;
        case 13:
            as_reader_set_exception(z.r, -(int)(1 + next(&z) % 100), NULL);
            break;
        case 14: {
            const unsigned char *peek;
            size_t n = as_reader_peek(z.r, &peek);
            if (n != as_reader_buffered(z.r) || (n && !peek))
                abort();
            break;
        }
        case 15:
            if (next(&z) % 2)
                as_reader_set_flow_control(z.r, flow_hook, flow_hook, &z, NULL);
            else
                as_reader_set_flow_control(z.r, NULL, NULL, NULL, NULL);
            break;
        case 16: { /* zero-copy feed */
            size_t avail = 0, n = next(&z) % 48;
            unsigned char *w = as_reader_feed_reserve(z.r, n, &avail);
            if (n > (size_t)(z.end - z.p))
                n = (size_t)(z.end - z.p);
            if (w) {
                if (avail < n)
                    abort();
                memcpy(w, z.p, n);
                if (as_reader_feed_commit(z.r, n) == 0)
                    z.fed += n;
            }
            z.p += n;
            break;
        }
        }
        if (f) {
            pr->f = f;
            pr->kind = (int)op;
            z.nreads++;
        }
    }

    /* Let woken reads retry, then end every read still waiting. */
    for (int i = 0; i < 4; i++)
        turn(&z);
    for (int i = 0; i < z.nreads; i++)
        if (!as_future_done(z.reads[i].f))
            as_future_cancel(z.reads[i].f, NULL);
    while (as_loop_pending(z.loop))
        as_loop_run_once(z.loop);
    for (int i = 0; i < z.nreads; i++) {
        if (!as_future_done(z.reads[i].f))
            abort();
        check_result(&z, &z.reads[i]);
    }
    if (!z.dropped && z.returned + as_reader_buffered(z.r) != z.fed) {
        fprintf(stderr, "fed %llu, returned %llu, buffered %zu\n", z.fed,
                z.returned, as_reader_buffered(z.r));
        abort();
    }
    for (int i = 0; i < z.nreads; i++)
        as_future_unref(z.reads[i].f);
    as_reader_unref(z.r);
    while (as_loop_pending(z.loop))
        as_loop_run_once(z.loop);
    if (as_loop_close(z.loop) != 0)
        abort();
    return 0;
}
