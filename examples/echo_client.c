/*
 * echo_client.c - CPython's TCP echo client, written against asyncstreams.
 *
 *     async def tcp_echo_client(message):
 *         reader, writer = await asyncio.open_connection('127.0.0.1', 8888)
 *         print(f'Send: {message!r}')
 *         writer.write(message.encode())
 *         await writer.drain()
 *         data = await reader.read(100)
 *         print(f'Received: {data.decode()!r}')
 *         print('Close the connection')
 *         writer.close()
 *         await writer.wait_closed()
 *
 * Each `await` becomes a done callback: the code after an await moves into
 * the next function.  Usage: echo_client [HOST PORT [MESSAGE]]; with no
 * arguments it starts its own echo peer (peer.h).
 */
#include <asyncstreams.h>

#include <stdio.h>
#include <string.h>

#include "peer.h"

struct client {
    as_loop *loop;
    as_connection *conn;
    const char *message;
    int status;
};

static void fail(struct client *c, const char *what, as_future *f)
{
    fprintf(stderr, "echo_client: %s: %s\n", what, as_future_error_message(f));
    c->status = 1;
    as_loop_stop(c->loop);
}

/* listing: echo_client */
static void on_closed(as_future *f, void *userdata)
{
    struct client *c = userdata;
    if (as_future_error(f) != 0)
        fail(c, "close", f);
    as_loop_stop(c->loop);
}

static void on_reply(as_future *f, void *userdata)
{
    struct client *c = userdata;
    as_bytes *data;
    as_future *closed;

    if (as_future_error(f) != 0) {
        fail(c, "read", f);
        return;
    }
    data = as_future_result(f);
    printf("Received: '%.*s'\n", (int)data->len, (const char *)data->data);
    printf("Close the connection\n");
    as_writer_close(c->conn->writer);
    closed = as_writer_wait_closed(c->conn->writer);
    if (!closed || as_future_add_done_callback(closed, on_closed, c, NULL) < 0) {
        c->status = 1;
        as_loop_stop(c->loop);
    }
    as_future_unref(closed);
}

static void on_drained(as_future *f, void *userdata)
{
    struct client *c = userdata;
    as_future *reply;

    if (as_future_error(f) != 0) {
        fail(c, "drain", f);
        return;
    }
    reply = as_reader_read(c->conn->reader, 100);
    if (!reply || as_future_add_done_callback(reply, on_reply, c, NULL) < 0) {
        c->status = 1;
        as_loop_stop(c->loop);
    }
    as_future_unref(reply);
}

static void on_connected(as_future *f, void *userdata)
{
    struct client *c = userdata;
    as_future *drained;
    int rc;

    if (as_future_error(f) != 0) {
        fail(c, "connect", f);
        return;
    }
    c->conn = as_future_take_result(f);
    printf("Send: '%s'\n", c->message);
    rc = as_writer_write(c->conn->writer, c->message, strlen(c->message));
    if (rc != 0) {
        fprintf(stderr, "echo_client: write: %s\n", as_strerror(rc));
        c->status = 1;
        as_loop_stop(c->loop);
        return;
    }
    drained = as_writer_drain(c->conn->writer);
    if (!drained || as_future_add_done_callback(drained, on_drained, c, NULL) < 0) {
        c->status = 1;
        as_loop_stop(c->loop);
    }
    as_future_unref(drained);
}
/* end listing */

/* The peer: echo whatever arrives until the client closes. */
static void echo(int fd, int index)
{
    char buf[4096];
    ssize_t n;
    (void)index;
    while ((n = recv(fd, buf, sizeof buf, 0)) > 0)
        if (peer_send_all(fd, buf, (size_t)n) < 0)
            break;
}

int main(int argc, char **argv)
{
    struct client c = {NULL, NULL, "Hello World!", 0};
    char port[16];
    const char *host = "127.0.0.1", *portp = port;
    pid_t peer = 0;
    as_future *f;
    int rc;

    if (argc >= 3) {
        host = argv[1];
        portp = argv[2];
        if (argc >= 4)
            c.message = argv[3];
    } else if ((peer = peer_spawn(echo, 1, port)) < 0) {
        perror("echo_client: peer");
        return 1;
    }
    if ((rc = as_loop_new(&c.loop)) != 0) {
        fprintf(stderr, "echo_client: loop: %s\n", as_strerror(rc));
        return 1;
    }
    /* listing: main */
    f = as_open_connection(c.loop, host, portp, NULL);
    if (!f || as_future_add_done_callback(f, on_connected, &c, NULL) < 0) {
        fprintf(stderr, "echo_client: out of memory\n");
        return 1;
    }
    as_future_unref(f);
    rc = as_loop_run_forever(c.loop);
    /* end listing */
    if (rc != 0)
        c.status = 1;
    as_connection_free(c.conn);
    if (as_loop_close(c.loop) != 0) {
        fprintf(stderr, "echo_client: objects left alive\n");
        c.status = 1;
    }
    if (peer_wait(peer) != 0)
        c.status = 1;
    return c.status;
}
