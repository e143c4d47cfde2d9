/*
 * echo_server.c - CPython's TCP echo server, written against asyncstreams.
 *
 *     async def handle_echo(reader, writer):
 *         while line := await reader.readline():
 *             writer.write(line)
 *             await writer.drain()
 *         writer.close()
 *         await writer.wait_closed()
 *
 *     async def main():
 *         server = await asyncio.start_server(handle_echo, '127.0.0.1', 8888)
 *         async with server:
 *             await server.serve_forever()
 *
 * Usage: echo_server [--raw] [HOST] PORT
 *   HOST defaults to 127.0.0.1; PORT 0 lets the system pick a free port.
 *   --raw echoes bytes as they come (read(65536)) instead of lines: the
 *   echo benchmark (bench/run_echo.sh) sends messages that are not lines.
 * Prints "echo_server: listening on ADDR:PORT" per listening socket, then
 * "PORT n".  Serves until SIGINT or SIGTERM, then shuts down gracefully
 * (clients get up to one second to finish) and exits 0.  A second signal
 * aborts the remaining connections at once.  (Chapter 10.)
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

struct app {
    as_loop *loop;
    as_server *server;
    int raw;
    struct crew crew;
    as_future *shutdown;   /* once a signal came */
};

/* listing: handler */
/* One client's coroutine: its frame holds what lives across awaits. */
struct echo {
    int pc;
    struct app *app;
    as_reader *reader;
    as_writer *writer;
    int err;               /* why the loop ended; 0 at EOF */
};

static as_step echo_step(as_task *t, void *p)
{
    struct echo *e = p;
    as_bytes *data;

    AS_TASK_BEGIN(e);
    for (;;) {
        AS_AWAIT(t, e, e->app->raw ? as_reader_read(e->reader, 65536)
                                   : as_reader_readline(e->reader));
        if ((e->err = as_task_error(t)) != 0)
            break;                      /* reset, line too long, cancelled */
        data = as_task_take_result(t);  /* the bytes are ours now */
        if (data->len == 0) {
            free(data);
            break;                      /* b"": the client closed */
        }
        /* writer.write(data), handing the bytes over: no copy is made */
        if ((e->err = as_writer_write_bytes(e->writer, data)) < 0)
            break;
        AS_AWAIT(t, e, as_writer_drain(e->writer));
        if ((e->err = as_task_error(t)) != 0)
            break;
    }
    if (e->err != 0 && e->err != AS_ECANCELLED)
        fprintf(stderr, "echo_server: client: %s\n", as_strerror(e->err));
    as_writer_close(e->writer);
    AS_AWAIT(t, e, as_writer_wait_closed(e->writer));
    /* Cleaned up: now let a cancellation (server shutdown) through. */
    if (e->err == AS_ECANCELLED)
        AS_TASK_FAIL(t, AS_ECANCELLED, NULL);
    AS_TASK_END(t);
}

static void echo_free(void *p)
{
    struct echo *e = p;
    as_reader_unref(e->reader);
    as_writer_unref(e->writer);
    crew_leave(&e->app->crew);
    free(e);
}

/* client_connected_cb: start the coroutine, give the server its future. */
static as_future *on_client(as_reader *reader, as_writer *writer, void *userdata)
{
    struct app *app = userdata;
    struct echo *e = calloc(1, sizeof *e);
    as_future *f;
    as_task *t;
    int err = -ENOMEM;

    if (!e || (err = as_task_new(app->loop, echo_step, e, echo_free, &t)) < 0) {
        fprintf(stderr, "echo_server: cannot serve a client: %s\n", as_strerror(err));
        free(e);
        as_writer_close(writer);
        as_writer_unref(writer);
        as_reader_unref(reader);
        return NULL;
    }
    e->app = app;
    e->reader = reader;     /* the server handed us these references */
    e->writer = writer;
    crew_join(&app->crew);
    f = as_future_ref(as_task_future(t));
    as_task_unref(t);       /* the task runs on; the server watches f */
    return f;
}
/* end listing */

/* listing: on_signal */
/* On the loop, after the self-pipe woke it.  The first signal starts a
 * graceful shutdown: stop listening, EOF to every reader, cancel every
 * handler, and abort what is still open after one second.  A second
 * signal aborts at once. */
static void on_signal(int signo, void *userdata)
{
    struct app *app = userdata;

    fprintf(stderr, "echo_server: %s, shutting down\n",
            signo == SIGINT ? "SIGINT" : "SIGTERM");
    if (app->shutdown) {
        as_future_unref(as_server_shutdown(app->server, -1));
        return;
    }
    app->shutdown = as_server_shutdown(app->server, 1.0);
}
/* end listing */

int main(int argc, char **argv)
{
    struct app app;
    struct stop_signal stop;
    const char *host = "127.0.0.1", *port;
    as_future *f;
    size_t pending;
    int argi = 1, status = 0, err;

    memset(&app, 0, sizeof app);
    if (argi < argc && strcmp(argv[argi], "--raw") == 0) {
        app.raw = 1;
        argi++;
    }
    if (argc - argi == 2)
        host = argv[argi++];
    if (argc - argi != 1) {
        fprintf(stderr, "usage: echo_server [--raw] [HOST] PORT\n");
        return 2;
    }
    port = argv[argi];
    if ((err = as_loop_new(&app.loop)) < 0) {
        fprintf(stderr, "echo_server: loop: %s\n", as_strerror(err));
        return 1;
    }
    if ((err = crew_init(&app.crew, app.loop)) < 0) {
        fprintf(stderr, "echo_server: %s\n", as_strerror(err));
        as_loop_close(app.loop);
        return 1;
    }

    /* listing: main */
    /* server = await asyncio.start_server(handle_echo, host, port) */
    f = as_start_server(app.loop, on_client, &app, NULL, host, port, NULL);
    if ((err = f ? as_loop_run_until_complete(app.loop, f) : -ENOMEM) < 0) {
        fprintf(stderr, "echo_server: %s\n", f ? as_future_error_message(f) : as_strerror(err));
        as_future_unref(f);
        as_event_free(app.crew.idle);
        as_loop_close(app.loop);
        return 1;
    }
    app.server = as_future_take_result(f);
    as_future_unref(f);

    /* Catch the signals first: whoever reads "PORT n" may signal at once. */
    if ((err = stop_signal_install(&stop, app.loop, on_signal, &app)) < 0) {
        fprintf(stderr, "echo_server: signals: %s\n", as_strerror(err));
        as_server_unref(app.server);
        as_event_free(app.crew.idle);
        as_loop_close(app.loop);
        return 1;
    }
    serve_announce("echo_server", app.server);
    /* await server.serve_forever(): it ends CANCELLED when the
     * shutdown that a signal starts closes the server. */
    f = as_server_serve_forever(app.server);
    err = f ? as_loop_run_until_complete(app.loop, f) : -ENOMEM;
    as_future_unref(f);
    if (err != AS_ECANCELLED || !app.shutdown) {    /* not stopped by a signal */
        fprintf(stderr, "echo_server: serve_forever: %s\n", as_strerror(err));
        if (!app.shutdown)
            app.shutdown = as_server_shutdown(app.server, 0);
        status = 1;
    }
    /* Wait for every connection to close (a second signal aborts them),
     * then for every handler to return. */
    if (!app.shutdown || as_loop_run_until_complete(app.loop, app.shutdown) < 0)
        status = 1;
    as_future_unref(app.shutdown);
    f = as_event_wait(app.crew.idle);
    if (!f || as_loop_run_until_complete(app.loop, f) < 0)
        status = 1;
    as_future_unref(f);
    stop_signal_remove(&stop);
    as_server_unref(app.server);
    /* end listing */

    as_event_free(app.crew.idle);
    pending = as_loop_pending(app.loop);   /* close() would drop them silently */
    if (as_loop_close(app.loop) != 0 || pending != 0) {
        fprintf(stderr, "echo_server: something was left alive\n");
        status = 1;
    }
    return status;
}
