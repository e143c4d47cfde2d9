/*
 * line_reader.c - read a line protocol until it ends, and stop cleanly on
 * the two ways a line can go wrong:
 *
 *   - the stream ends in the middle of a line: readuntil() fails with an
 *     incomplete read (IncompleteReadError) whose `partial` holds the rest;
 *   - a line is longer than the reader's limit: readuntil() fails with a
 *     limit overrun (LimitOverrunError) and consumes nothing, so the caller
 *     decides what to do with the bytes.
 *
 *     while True:
 *         try:
 *             line = await reader.readuntil(b'\n')
 *         except asyncio.IncompleteReadError as e:
 *             print('incomplete:', e.partial); break
 *         except asyncio.LimitOverrunError as e:
 *             print('too long, consumed =', e.consumed); break
 *         print(line)
 *
 * The peer serves two connections with the same lines.  We read the first
 * with a 32-byte limit (it stops at the long line) and the second with the
 * default 64 KiB limit (it reads every line and stops at the unterminated
 * tail).  Usage: line_reader [HOST PORT].
 */
#include <asyncstreams.h>

#include <stdio.h>
#include <string.h>

#include "peer.h"

static const char lines[] =
    "first line\n"
    "second line\n"
    "a line that is much longer than thirty-two bytes\n"
    "last line\n"
    "tail without a newline";

struct app {
    as_loop *loop;
    const char *host, *port;
    as_connection *conn;
    int round; /* 0: limit 32, 1: default limit */
    int seen[2], stops[2];
    int status;
};

static void start_round(struct app *a);
static void next_line(struct app *a);

static void on_closed(as_future *f, void *userdata)
{
    struct app *a = userdata;
    (void)f;
    as_connection_free(a->conn);
    a->conn = NULL;
    if (++a->round < 2)
        start_round(a);
    else
        as_loop_stop(a->loop);
}

static void finish_round(struct app *a)
{
    as_future *closed;
    as_writer_close(a->conn->writer);
    closed = as_writer_wait_closed(a->conn->writer);
    if (!closed || as_future_add_done_callback(closed, on_closed, a, NULL) < 0) {
        a->status = 1;
        as_loop_stop(a->loop);
    }
    as_future_unref(closed);
}

/* listing: on_line */
static void on_line(as_future *f, void *userdata)
{
    struct app *a = userdata;
    int rc = as_future_error(f);

    if (rc == 0) {
        as_bytes *line = as_future_result(f);
        printf("  line: %.*s", (int)line->len, (const char *)line->data);
        a->seen[a->round]++;
        next_line(a);
        return;
    }
    if (rc == AS_EINCOMPLETE) {
        as_incomplete_read *e = as_future_error_detail(f);
        printf("  incomplete read: %s; partial = '%.*s'\n", as_future_error_message(f),
               (int)e->partial->len, (const char *)e->partial->data);
    } else if (rc == AS_ELIMIT) {
        as_limit_overrun *e = as_future_error_detail(f);
        printf("  limit overrun: %s; consumed = %zu\n", as_future_error_message(f),
               e->consumed);
    } else {
        printf("  error: %s\n", as_future_error_message(f));
        a->status = 1;
    }
    a->stops[a->round] = rc;
    finish_round(a);
}

static void next_line(struct app *a)
{
    as_future *f = as_reader_readuntil(a->conn->reader, "\n", 1);
    if (!f || as_future_add_done_callback(f, on_line, a, NULL) < 0) {
        a->status = 1;
        as_loop_stop(a->loop);
    }
    as_future_unref(f);
}
/* end listing */

static void on_connected(as_future *f, void *userdata)
{
    struct app *a = userdata;
    if (as_future_error(f) != 0) {
        fprintf(stderr, "line_reader: connect: %s\n", as_future_error_message(f));
        a->status = 1;
        as_loop_stop(a->loop);
        return;
    }
    a->conn = as_future_take_result(f);
    next_line(a);
}

static void start_round(struct app *a)
{
    as_connect_options opts = {0, 0, NULL, NULL};
    as_future *f;
    opts.limit = a->round == 0 ? 32 : 0;
    printf("reading with limit %zd:\n", opts.limit ? opts.limit : (ssize_t)AS_READER_DEFAULT_LIMIT);
    f = as_open_connection(a->loop, a->host, a->port, &opts);
    if (!f || as_future_add_done_callback(f, on_connected, a, NULL) < 0) {
        a->status = 1;
        as_loop_stop(a->loop);
    }
    as_future_unref(f);
}

/* The peer: send the lines, then close. */
static void send_lines(int fd, int index)
{
    (void)index;
    (void)peer_send_all(fd, lines, sizeof lines - 1);
}

int main(int argc, char **argv)
{
    struct app a;
    char port[16];
    pid_t peer = 0;
    int rc;

    memset(&a, 0, sizeof a);
    a.host = "127.0.0.1";
    a.port = port;
    if (argc >= 3) {
        a.host = argv[1];
        a.port = argv[2];
    } else if ((peer = peer_spawn(send_lines, 2, port)) < 0) {
        perror("line_reader: peer");
        return 1;
    }
    if ((rc = as_loop_new(&a.loop)) != 0) {
        fprintf(stderr, "line_reader: loop: %s\n", as_strerror(rc));
        return 1;
    }
    start_round(&a);
    if (as_loop_run_forever(a.loop) != 0)
        a.status = 1;
    as_connection_free(a.conn);
    /* What we expect from the peer's lines: 2 lines then the overrun; 4
     * lines then the incomplete tail. */
    if (a.seen[0] != 2 || a.stops[0] != AS_ELIMIT || a.seen[1] != 4 ||
        a.stops[1] != AS_EINCOMPLETE) {
        fprintf(stderr, "line_reader: unexpected result\n");
        a.status = 1;
    }
    if (as_loop_close(a.loop) != 0)
        a.status = 1;
    if (peer_wait(peer) != 0)
        a.status = 1;
    return a.status;
}
