/*
 * you_said.c - a line server that answers "You said: <line>" to each line,
 * and three clients that check it, on one loop.
 *
 *     async def handle(reader, writer):
 *         while line := await reader.readline():
 *             writer.write(b"You said: " + line)
 *             await writer.drain()
 *         writer.close()
 *         await writer.wait_closed()
 *
 *     async def client(port, k):
 *         reader, writer = await asyncio.open_connection('127.0.0.1', port)
 *         for i in range(LINES):
 *             writer.write(f"line {i} of client {k}\n".encode())
 *             await writer.drain()
 *             assert await reader.readline() == b"You said: " + ...
 *         writer.close()
 *         await writer.wait_closed()
 *
 *     async def main():
 *         server = await asyncio.start_server(handle, '127.0.0.1', 0)
 *         port = server.sockets[0].getsockname()[1]
 *         await asyncio.gather(*(client(port, k) for k in range(3)))
 *         server.close()
 *         await server.wait_closed()
 *
 * Usage: you_said [PORT]
 *   With no argument (as `make check` runs it): the self-check above; exits
 *   0 only if every reply was right.  With PORT: serve on 127.0.0.1:PORT
 *   (0 picks one; "PORT n" is printed) until SIGINT or SIGTERM; try it with
 *   `nc 127.0.0.1 PORT`.  (Chapter 10.)
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "serve.h"

#define CLIENTS 3
#define LINES 4

static const char PREFIX[] = "You said: ";

struct app {
    as_loop *loop;
    as_server *server;
    struct crew crew;
};

/* ------------------------------------------------------------ the server */

/* listing: handler */
struct handler {
    int pc;
    struct app *app;
    as_reader *reader;
    as_writer *writer;
    int err;
};

static as_step handler_step(as_task *t, void *p)
{
    struct handler *h = p;
    struct iovec iov[3];
    as_bytes *line;

    AS_TASK_BEGIN(h);
    for (;;) {
        AS_AWAIT(t, h, as_reader_readline(h->reader));
        if ((h->err = as_task_error(t)) != 0)
            break;
        line = as_task_result(t);
        if (line->len == 0)
            break;                                  /* EOF */
        /* One write of three pieces, without copying them together. */
        iov[0].iov_base = (void *)PREFIX;
        iov[0].iov_len = sizeof PREFIX - 1;
        iov[1].iov_base = line->data;
        iov[1].iov_len = line->len;
        iov[2].iov_base = (void *)"\n";             /* a last line without */
        iov[2].iov_len = line->data[line->len - 1] != '\n';
        if ((h->err = as_writer_writelines(h->writer, iov, 3)) < 0)
            break;
        AS_AWAIT(t, h, as_writer_drain(h->writer));
        if ((h->err = as_task_error(t)) != 0)
            break;
    }
    if (h->err != 0 && h->err != AS_ECANCELLED)
        fprintf(stderr, "you_said: client: %s\n", as_strerror(h->err));
    as_writer_close(h->writer);
    AS_AWAIT(t, h, as_writer_wait_closed(h->writer));
    if (h->err == AS_ECANCELLED)
        AS_TASK_FAIL(t, AS_ECANCELLED, NULL);
    AS_TASK_END(t);
}
/* end listing */

static void handler_free(void *p)
{
    struct handler *h = p;
    as_reader_unref(h->reader);
    as_writer_unref(h->writer);
    crew_leave(&h->app->crew);
    free(h);
}

static as_future *on_client(as_reader *reader, as_writer *writer, void *userdata)
{
    struct app *app = userdata;
    struct handler *h = calloc(1, sizeof *h);
    as_future *f;
    as_task *t;
    int err = -ENOMEM;

    if (!h || (err = as_task_new(app->loop, handler_step, h, handler_free, &t)) < 0) {
        fprintf(stderr, "you_said: cannot serve a client: %s\n", as_strerror(err));
        free(h);
        as_writer_close(writer);
        as_writer_unref(writer);
        as_reader_unref(reader);
        return NULL;
    }
    h->app = app;
    h->reader = reader;
    h->writer = writer;
    crew_join(&app->crew);
    f = as_future_ref(as_task_future(t));
    as_task_unref(t);
    return f;
}

/* ------------------------------------------------------------ the clients */

/* listing: client */
struct client {
    int pc;
    int k;
    char port[16];
    as_connection *conn;
    int i;
    char sent[64];
};

static as_step client_step(as_task *t, void *p)
{
    struct client *c = p;
    as_bytes *reply;
    size_t n;
    int err;

    AS_TASK_BEGIN(c);
    AS_AWAIT(t, c, as_open_connection(as_task_loop(t), "127.0.0.1", c->port, NULL));
    AS_TASK_CHECK(t);
    c->conn = as_task_take_result(t);
    for (c->i = 0; c->i < LINES; c->i++) {
        snprintf(c->sent, sizeof c->sent, "line %d of client %d\n", c->i, c->k);
        if ((err = as_writer_write(c->conn->writer, c->sent, strlen(c->sent))) < 0)
            AS_TASK_FAIL(t, err, "write");
        AS_AWAIT(t, c, as_writer_drain(c->conn->writer));
        AS_TASK_CHECK(t);
        AS_AWAIT(t, c, as_reader_readline(c->conn->reader));
        AS_TASK_CHECK(t);
        reply = as_task_result(t);
        n = strlen(c->sent);
        printf("client %d got: %.*s", c->k, (int)reply->len, (const char *)reply->data);
        if (reply->len != sizeof PREFIX - 1 + n ||
            memcmp(reply->data, PREFIX, sizeof PREFIX - 1) != 0 ||
            memcmp(reply->data + sizeof PREFIX - 1, c->sent, n) != 0)
            AS_TASK_FAIL(t, -EPROTO, "wrong reply");
    }
    as_writer_close(c->conn->writer);
    AS_AWAIT(t, c, as_writer_wait_closed(c->conn->writer));
    AS_TASK_CHECK(t);
    AS_TASK_END(t);
}

/* The `finally`: whichever way the task ended, the connection goes. */
static void client_free(void *p)
{
    struct client *c = p;
    if (c->conn) {
        as_writer_close(c->conn->writer);
        as_connection_free(c->conn);
    }
    free(c);
}
/* end listing */

static as_future *client_spawn(as_loop *loop, int k, int port)
{
    struct client *c = calloc(1, sizeof *c);
    as_future *f;
    as_task *t;

    if (!c)
        return NULL;
    c->k = k;
    snprintf(c->port, sizeof c->port, "%d", port);
    if (as_task_new(loop, client_step, c, client_free, &t) < 0) {
        free(c);
        return NULL;
    }
    f = as_future_ref(as_task_future(t));
    as_task_unref(t);
    return f;
}

/* ------------------------------------------------------------ main */

/* listing: selfcheck */
/* The self-check's main(), a task too. */
struct selfcheck {
    int pc;
    struct app *app;
    int failed;
};

static as_step selfcheck_step(as_task *t, void *p)
{
    struct selfcheck *s = p;
    struct app *app = s->app;
    as_future *clients[CLIENTS];
    as_gather_result *r;
    size_t i;

    AS_TASK_BEGIN(s);
    AS_AWAIT(t, s, as_start_server(app->loop, on_client, app, NULL, "127.0.0.1", "0", NULL));
    AS_TASK_CHECK(t);
    app->server = as_task_take_result(t);
    printf("serving on port %d\n", as_server_port(app->server, 0));

    for (i = 0; i < CLIENTS; i++)
        clients[i] = client_spawn(app->loop, (int)i + 1, as_server_port(app->server, 0));
    /* return_exceptions: see each client's outcome, not only the first. */
    AS_AWAIT(t, s, as_gather(app->loop, clients, CLIENTS, 1));
    AS_TASK_CHECK(t);
    r = as_task_result(t);
    for (i = 0; i < r->count; i++) {
        if (as_future_error(r->futures[i]) != 0) {
            fprintf(stderr, "you_said: client %zu: %s\n", i + 1,
                    as_future_error_message(r->futures[i]));
            s->failed++;
        }
    }

    /* The clients have gone: stop listening, wait for their connections
     * to close, then for their handlers to return. */
    as_server_close(app->server);
    AS_AWAIT(t, s, as_server_wait_closed(app->server));
    AS_TASK_CHECK(t);
    AS_AWAIT(t, s, as_event_wait(app->crew.idle));
    AS_TASK_CHECK(t);
    AS_TASK_END(t);
}
/* end listing */

static int selfcheck(struct app *app)
{
    struct selfcheck s = {0, app, 0};
    as_task *t;
    int err;

    /* The frame lives on main's stack: the task is done before it returns. */
    if ((err = as_task_new(app->loop, selfcheck_step, &s, NULL, &t)) < 0) {
        fprintf(stderr, "you_said: %s\n", as_strerror(err));
        return 1;
    }
    err = as_loop_run_until_complete(app->loop, as_task_future(t));
    if (err != 0)
        fprintf(stderr, "you_said: %s\n", as_future_error_message(as_task_future(t)));
    as_task_unref(t);
    if (err == 0 && s.failed == 0)
        printf("all %d clients got every reply right\n", CLIENTS);
    return err != 0 || s.failed != 0;
}

int main(int argc, char **argv)
{
    struct app app;
    size_t pending;
    int err, status;

    memset(&app, 0, sizeof app);
    if (argc > 2) {
        fprintf(stderr, "usage: you_said [PORT]\n");
        return 2;
    }
    if ((err = as_loop_new(&app.loop)) < 0) {
        fprintf(stderr, "you_said: loop: %s\n", as_strerror(err));
        return 1;
    }
    if ((err = crew_init(&app.crew, app.loop)) < 0) {
        fprintf(stderr, "you_said: %s\n", as_strerror(err));
        as_loop_close(app.loop);
        return 1;
    }
    status = argc == 2 ? serve_until_signal("you_said", app.loop, on_client, &app, argv[1],
                                            NULL, &app.crew, &app.server)
                       : selfcheck(&app);
    as_server_unref(app.server);
    as_event_free(app.crew.idle);
    pending = as_loop_pending(app.loop);   /* close() would drop them silently */
    if (as_loop_close(app.loop) != 0 || pending != 0) {
        fprintf(stderr, "you_said: something was left alive\n");
        status = 1;
    }
    return status;
}
