/*
 * large_write.c - send a large amount of data without filling memory:
 * write in chunks, and drain whenever more than 64 KiB is waiting.
 *
 *     for chunk in chunks:
 *         writer.write(chunk)
 *         if writer.transport.get_write_buffer_size() > 64 * 1024:
 *             await writer.drain()
 *
 * write() never blocks: what the socket does not take at once waits in the
 * transport's write buffer.  drain() is where the producer waits for the
 * consumer, so the buffer never holds much more than 64 KiB, however much
 * we send and however slow the peer is.  (drain() checks the high-water
 * mark itself and returns at once below it, so the explicit test only saves
 * a call; it shows where the threshold is.)  The peer counts the bytes and
 * answers with the total after our EOF.
 *
 * Usage: large_write [HOST PORT]; with no arguments it starts its own peer.
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"

#define TOTAL (8u << 20) /* 8 MiB */
#define CHUNK 16384
#define THRESHOLD (64 * 1024)

struct app {
    as_loop *loop;
    as_connection *conn;
    unsigned char chunk[CHUNK];
    size_t sent;
    size_t max_buffered;
    int drains; /* how often we had to wait */
    int status;
};

static void stop(struct app *a, const char *what, int code, const char *msg)
{
    if (code) {
        fprintf(stderr, "large_write: %s: %s\n", what, msg ? msg : as_strerror(code));
        a->status = 1;
    }
    as_loop_stop(a->loop);
}

static void on_reply(as_future *f, void *userdata);
static void send_more(struct app *a);

static void on_drained(as_future *f, void *userdata)
{
    struct app *a = userdata;
    int rc = as_future_error(f);
    if (rc != 0) {
        stop(a, "drain", rc, as_future_error_message(f));
        return;
    }
    send_more(a);
}

/* listing: drain_loop */
static void send_more(struct app *a)
{
    as_writer *w = a->conn->writer;
    as_future *f;
    int rc;

    while (a->sent < TOTAL) {
        if ((rc = as_writer_write(w, a->chunk, CHUNK)) != 0) {
            stop(a, "write", rc, NULL);
            return;
        }
        a->sent += CHUNK;
        if (as_writer_get_write_buffer_size(w) > a->max_buffered)
            a->max_buffered = as_writer_get_write_buffer_size(w);
        if (as_writer_get_write_buffer_size(w) > THRESHOLD) {
            /* await writer.drain(): continue in on_drained(). */
            a->drains++;
            f = as_writer_drain(w);
            if (!f || as_future_add_done_callback(f, on_drained, a, NULL) < 0)
                stop(a, "drain", -ENOMEM, NULL);
            as_future_unref(f);
            return;
        }
    }
    /* Everything is written (maybe not sent yet): EOF goes after it. */
    if ((rc = as_writer_write_eof(w)) != 0) {
        stop(a, "write_eof", rc, NULL);
        return;
    }
    f = as_reader_readline(a->conn->reader);
    if (!f || as_future_add_done_callback(f, on_reply, a, NULL) < 0)
        stop(a, "readline", -ENOMEM, NULL);
    as_future_unref(f);
}
/* end listing */

static void on_closed(as_future *f, void *userdata)
{
    struct app *a = userdata;
    int rc = as_future_error(f);
    stop(a, "close", rc, as_future_error_message(f));
}

static void on_reply(as_future *f, void *userdata)
{
    struct app *a = userdata;
    as_bytes *line;
    as_future *closed;
    int rc = as_future_error(f);

    if (rc != 0) {
        stop(a, "readline", rc, as_future_error_message(f));
        return;
    }
    line = as_future_result(f);
    printf("sent %zu bytes, waited in drain() %d times, at most %zu bytes buffered\n",
           a->sent, a->drains, a->max_buffered);
    printf("peer says: %.*s", (int)line->len, (const char *)line->data);
    if (strtoul((const char *)line->data, NULL, 10) != TOTAL) {
        fprintf(stderr, "large_write: the peer got a different count\n");
        a->status = 1;
    }
    as_writer_close(a->conn->writer);
    closed = as_writer_wait_closed(a->conn->writer);
    if (!closed || as_future_add_done_callback(closed, on_closed, a, NULL) < 0)
        stop(a, "close", -ENOMEM, NULL);
    as_future_unref(closed);
}

static void on_connected(as_future *f, void *userdata)
{
    struct app *a = userdata;
    int rc = as_future_error(f);
    if (rc != 0) {
        stop(a, "connect", rc, as_future_error_message(f));
        return;
    }
    a->conn = as_future_take_result(f);
    send_more(a);
}

/* The peer: a slow reader (small reads) that counts, then answers. */
static void count_bytes(int fd, int index)
{
    char buf[2048], reply[32];
    unsigned long total = 0;
    ssize_t n;
    (void)index;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        total += (unsigned long)n;
    snprintf(reply, sizeof reply, "%lu\n", total);
    (void)peer_send_all(fd, reply, strlen(reply));
}

int main(int argc, char **argv)
{
    static struct app a; /* zeroed */
    char port[16];
    const char *host = "127.0.0.1", *portp = port;
    pid_t peer = 0;
    as_future *f;
    int rc;

    if (argc >= 3) {
        host = argv[1];
        portp = argv[2];
    } else if ((peer = peer_spawn(count_bytes, 1, port)) < 0) {
        perror("large_write: peer");
        return 1;
    }
    memset(a.chunk, 'x', sizeof a.chunk);
    if ((rc = as_loop_new(&a.loop)) != 0) {
        fprintf(stderr, "large_write: loop: %s\n", as_strerror(rc));
        return 1;
    }
    f = as_open_connection(a.loop, host, portp, NULL);
    if (!f || as_future_add_done_callback(f, on_connected, &a, NULL) < 0) {
        fprintf(stderr, "large_write: out of memory\n");
        return 1;
    }
    as_future_unref(f);
    if (as_loop_run_forever(a.loop) != 0)
        a.status = 1;
    if (a.max_buffered > THRESHOLD + CHUNK) {
        fprintf(stderr, "large_write: the buffer grew past the threshold\n");
        a.status = 1;
    }
    as_connection_free(a.conn);
    if (as_loop_close(a.loop) != 0)
        a.status = 1;
    if (peer_wait(peer) != 0)
        a.status = 1;
    return a.status;
}
