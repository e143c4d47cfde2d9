/*
 * reader_lines.c - feed a StreamReader by hand, in chunks, and read it line
 * by line, as every line protocol does.
 *
 * A timer plays the transport: every millisecond it feeds the next chunk,
 * and after the last one it feeds EOF.  The reader's limit is 16 bytes, and
 * one line is longer than that: readuntil_ex() reports the overrun without
 * consuming anything, discard_until() skips exactly that line, and reading
 * goes on with the next one.  The stream ends without a final newline, which
 * readuntil reports as an incomplete read holding the last partial line.
 */
#include <asyncstreams.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const chunks[] = {
    "HELLO\nthis line is",
    " far too long for the limit\nPI",
    "NG\n",
    "PING\nBYE (no newline)",
};
#define NCHUNKS (sizeof chunks / sizeof chunks[0])

struct app {
    as_loop *loop;
    as_reader *reader;
    size_t next_chunk;
    int lines;    /* complete lines read */
    int skipped;  /* over-long lines skipped */
    int status;   /* exit status: 0 unless something failed */
};

static void fail(struct app *app, const char *what, int code)
{
    fprintf(stderr, "reader_lines: %s: %s\n", what, as_strerror(code));
    app->status = 1;
    as_loop_stop(app->loop);
}

/* listing: feeder */
/* The "transport": one chunk per timer tick, then EOF. */
static void feed_next(void *userdata)
{
    struct app *app = userdata;
    int rc;

    if (app->next_chunk == NCHUNKS) {
        as_reader_feed_eof(app->reader);
        return;
    }
    const char *chunk = chunks[app->next_chunk++];
    rc = as_reader_feed_data(app->reader, chunk, strlen(chunk));
    if (rc == 0)
        rc = as_loop_call_later(app->loop, 0.001, feed_next, app, NULL, NULL);
    if (rc != 0)
        fail(app, "feeding", rc);
}
/* end listing */

static void read_lines(struct app *app);

/* listing: skip */
/* After an overrun: drop the long line up to its "\n", keep what follows. */
static void on_skipped(as_future *f, void *userdata)
{
    struct app *app = userdata;
    int rc = as_future_error(f);

    if (rc != 0) {
        fail(app, "discard_until", rc);
        return;
    }
    const as_discarded *d = as_future_result(f);
    printf("skipped %llu bytes\n", d->count);
    app->skipped++;
    read_lines(app);
}

static void skip_line(struct app *app)
{
    static const as_separator nl = { "\n", 1 };
    as_future *f = as_reader_discard_until(app->reader, &nl, 1);

    if (!f) {
        fail(app, "discard_until", AS_EINVAL);
        return;
    }
    int rc = as_future_add_done_callback(f, on_skipped, app, NULL);
    as_future_unref(f);
    if (rc != 0)
        fail(app, "add_done_callback", rc);
}
/* end listing */

/* listing: handle */
/*
 * One finished readuntil: returns 1 to read the next line at once, 0 when
 * reading continues elsewhere (a skip) or has ended.
 */
static int handle_line(struct app *app, as_future *f)
{
    int rc = as_future_error(f);

    if (rc == 0) {
        const as_bytes *line = as_future_result(f);
        printf("line: %.*s", (int)line->len, (const char *)line->data);
        app->lines++;
        return 1;
    }
    if (rc == AS_ELIMIT) {
        const as_limit_overrun *lo = as_future_error_detail(f);
        printf("too long: %s (consumed=%zu), skipping it\n",
               as_future_error_message(f), lo->consumed);
        skip_line(app);
        return 0;
    }
    if (rc == AS_EINCOMPLETE) {
        const as_incomplete_read *ir = as_future_error_detail(f);
        printf("EOF; last partial line: \"%.*s\"\n", (int)ir->partial->len,
               (const char *)ir->partial->data);
        as_loop_stop(app->loop);
        return 0;
    }
    fail(app, "readuntil", rc);
    return 0;
}
/* end listing */

/* listing: read_loop */
static void on_line(as_future *f, void *userdata)
{
    struct app *app = userdata;
    if (handle_line(app, f))
        read_lines(app);
}

/*
 * Read lines until one has to wait.  A read the buffer can answer returns a
 * future that is already done: take it now, with no loop turn, just as
 * `await` on a ready result does not yield in Python.
 */
static void read_lines(struct app *app)
{
    static const as_separator nl = { "\n", 1 };

    for (;;) {
        as_future *f = as_reader_readuntil_ex(app->reader, &nl, 1, 0);
        if (!f) {
            fail(app, "readuntil", AS_EINVAL);
            return;
        }
        if (!as_future_done(f)) {
            int rc = as_future_add_done_callback(f, on_line, app, NULL);
            as_future_unref(f);
            if (rc != 0)
                fail(app, "add_done_callback", rc);
            return;
        }
        int more = handle_line(app, f);
        as_future_unref(f);
        if (!more)
            return;
    }
}
/* end listing */

/* listing: main */
int main(void)
{
    struct app app = { NULL, NULL, 0, 0, 0, 0 };
    int rc = as_loop_new(&app.loop);

    if (rc != 0) {
        fprintf(stderr, "reader_lines: as_loop_new: %s\n", as_strerror(rc));
        return 1;
    }
    rc = as_reader_new(app.loop, 16, &app.reader);
    if (rc == 0)
        rc = as_loop_call_soon(app.loop, feed_next, &app, NULL, NULL);
    if (rc != 0) {
        fprintf(stderr, "reader_lines: setup: %s\n", as_strerror(rc));
        as_reader_unref(app.reader);
        as_loop_close(app.loop);
        return 1;
    }
    read_lines(&app);
    rc = as_loop_run_forever(app.loop);
    if (rc != 0)
        fail(&app, "run_forever", rc);

    printf("%d lines, %d skipped\n", app.lines, app.skipped);
    if (app.lines != 3 || app.skipped != 1)
        app.status = 1;
    as_reader_unref(app.reader);
    /* Stopped with the EOF handled: nothing may be left on the loop. */
    if (as_loop_pending(app.loop) != 0 || as_loop_close(app.loop) != 0) {
        fprintf(stderr, "reader_lines: the loop was not empty at the end\n");
        app.status = 1;
    }
    return app.status;
}
/* end listing */
