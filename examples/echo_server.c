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
 * Usage: echo_server [--raw] [--threads N] [HOST] PORT
 *   HOST defaults to 127.0.0.1; PORT 0 lets the system pick a free port.
 *   --raw echoes bytes as they come (read(65536)) instead of lines: the
 *   echo benchmark (bench/run_echo.sh) sends messages that are not lines.
 *   --threads N runs N loops, one per thread, each with its own listener
 *   on the same port (SO_REUSEPORT: the kernel spreads the connections
 *   over them); HOST should then give one address.  (Chapter 15.)
 * Prints "echo_server: listening on ADDR:PORT" per listening socket, then
 * "PORT n".  Serves until SIGINT or SIGTERM, then shuts down gracefully
 * (clients get up to one second to finish) and exits 0.  A second signal
 * aborts the remaining connections at once.  With --threads it says on
 * stderr, at exit, how many connections each thread served.  (Chapter 10.)
 */
#include <asyncstreams.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

/* One loop, its server and its handlers.  With --threads there is one per
 * thread, and each is touched only by the thread that runs its loop. */
struct app {
    as_loop *loop;
    as_server *server;
    int raw;
    struct crew crew;
    as_future *shutdown;   /* once a signal came */
    unsigned long served;  /* connections accepted */
    pthread_t thread;      /* apps[1..]: the thread running the loop */
    int status;            /* what serve() returned on that thread */
};

/* Every app, for the signal callback: apps[0] runs on the main thread. */
struct fleet {
    struct app *apps;
    int n;
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
    app->served++;
    f = as_future_ref(as_task_future(t));
    as_task_unref(t);       /* the task runs on; the server watches f */
    return f;
}
/* end listing */

/* listing: stop_app */
/* Start a graceful shutdown: stop listening, EOF to every reader, cancel
 * every handler, and abort what is still open after one second.  Called
 * again, it aborts at once. */
static void stop_app(struct app *app)
{
    if (app->shutdown) {
        as_future_unref(as_server_shutdown(app->server, -1));
        return;
    }
    app->shutdown = as_server_shutdown(app->server, 1.0);
}
/* end listing */

/* listing: threads_signal */
static void stop_app_cb(void *userdata)
{
    stop_app(userdata);
}

/* Stop every loop: this thread's at once, the others on their own
 * threads, where the one call that may reach them from here is
 * call_soon_threadsafe() (design rule 10). */
static void stop_fleet(struct fleet *fleet)
{
    int i, err;

    stop_app(&fleet->apps[0]);
    for (i = 1; i < fleet->n; i++) {
        err = as_loop_call_soon_threadsafe(fleet->apps[i].loop, stop_app_cb,
                                           &fleet->apps[i], NULL);
        if (err < 0)
            fprintf(stderr, "echo_server: thread %d: %s\n", i, as_strerror(err));
    }
}
/* end listing */

/* listing: on_signal */
/* On the main loop, after the signal's byte woke it (lib/signals.c).  The
 * first signal starts a graceful shutdown, a second one aborts. */
static void on_signal(int signo, void *userdata)
{
    fprintf(stderr, "echo_server: %s, shutting down\n",
            signo == SIGINT ? "SIGINT" : "SIGTERM");
    stop_fleet(userdata);
}
/* end listing */

/* A loop with a server on host:port and an idle crew, or 1 after saying
 * why not.  reuse_port: share the port with the other threads' servers. */
static int app_open(struct app *app, int raw, const char *host, const char *port,
                    int reuse_port)
{
    as_server_options opts;
    as_future *f;
    int err;

    memset(app, 0, sizeof *app);
    memset(&opts, 0, sizeof opts);
    opts.reuse_port = reuse_port;
    app->raw = raw;
    if ((err = as_loop_new(&app->loop)) < 0) {
        fprintf(stderr, "echo_server: loop: %s\n", as_strerror(err));
        return 1;
    }
    if ((err = crew_init(&app->crew, app->loop)) < 0) {
        fprintf(stderr, "echo_server: %s\n", as_strerror(err));
        as_loop_close(app->loop);
        return 1;
    }
    /* listing: start */
    /* server = await asyncio.start_server(handle_echo, host, port) */
    f = as_start_server(app->loop, on_client, app, NULL, host, port, &opts);
    if ((err = f ? as_loop_run_until_complete(app->loop, f) : -ENOMEM) < 0) {
        fprintf(stderr, "echo_server: %s\n", f ? as_future_error_message(f) : as_strerror(err));
        as_future_unref(f);
        as_event_free(app->crew.idle);
        as_loop_close(app->loop);
        return 1;
    }
    app->server = as_future_take_result(f);
    as_future_unref(f);
    /* end listing */
    return 0;
}

/* listing: serve */
/* await server.serve_forever(): it ends CANCELLED when the shutdown that
 * a signal starts closes the server.  Then wait for every connection to
 * close (a second signal aborts them), then for every handler to return.
 * Returns the exit status. */
static int serve(struct app *app)
{
    as_future *f = as_server_serve_forever(app->server);
    int err = f ? as_loop_run_until_complete(app->loop, f) : -ENOMEM;
    int status = 0;

    as_future_unref(f);
    if (err != AS_ECANCELLED || !app->shutdown) {   /* not stopped by a signal */
        fprintf(stderr, "echo_server: serve_forever: %s\n", as_strerror(err));
        if (!app->shutdown)
            app->shutdown = as_server_shutdown(app->server, 0);
        status = 1;
    }
    if (!app->shutdown || as_loop_run_until_complete(app->loop, app->shutdown) < 0)
        status = 1;
    f = as_event_wait(app->crew.idle);
    if (!f || as_loop_run_until_complete(app->loop, f) < 0)
        status = 1;
    as_future_unref(f);
    return status;
}
/* end listing */

/* Release what app_open() made and close the loop; 1 if something was
 * left alive.  A stop_app_cb() posted after the loop stopped running is
 * still in the loop's inbox: neither pending nor alive, dropped here. */
static int app_close(struct app *app)
{
    size_t pending;
    int status = 0;

    as_future_unref(app->shutdown);
    as_server_unref(app->server);
    as_event_free(app->crew.idle);
    pending = as_loop_pending(app->loop);   /* close() would drop them silently */
    if (as_loop_close(app->loop) != 0 || pending != 0) {
        fprintf(stderr, "echo_server: something was left alive\n");
        status = 1;
    }
    return status;
}

/* listing: threads */
/* The body of each further thread: its own loop, its own listener. */
static void *serve_thread(void *userdata)
{
    struct app *app = userdata;

    app->status = serve(app);
    return NULL;
}

/* Hand app's loop to a new thread.  main() made the loop and its server;
 * from pthread_create() on, only the new thread touches them, until
 * pthread_join() hands them back.  The thread starts with every signal
 * blocked, so SIGINT and SIGTERM are delivered to the main thread, whose
 * loop asked for them. */
static int start_thread(struct app *app)
{
    sigset_t all, old;
    int err;

    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_create(&app->thread, NULL, serve_thread, app);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return -err;
}
/* end listing */

int main(int argc, char **argv)
{
    struct fleet fleet = {NULL, 0};
    const char *host = "127.0.0.1", *port;
    char bound[16];
    long nthreads = 1;
    int argi = 1, raw = 0, running, status = 0, err = 0, i;

    for (; argi < argc && strncmp(argv[argi], "--", 2) == 0; argi++) {
        char *end;
        if (strcmp(argv[argi], "--raw") == 0) {
            raw = 1;
        } else if (strcmp(argv[argi], "--threads") == 0 && argi + 1 < argc) {
            nthreads = strtol(argv[++argi], &end, 10);
            if (*end || nthreads < 1 || nthreads > 1024)
                argi = argc;                        /* a usage error */
        } else {
            argi = argc;
        }
    }
    if (argc - argi == 2)
        host = argv[argi++];
    if (argc - argi != 1) {
        fprintf(stderr, "usage: echo_server [--raw] [--threads N] [HOST] PORT\n");
        return 2;
    }
    port = argv[argi];
    if (!(fleet.apps = calloc((size_t)nthreads, sizeof *fleet.apps))) {
        fprintf(stderr, "echo_server: %s\n", strerror(errno));
        return 1;
    }

    /* listing: main */
    /* One loop and one server per thread.  The first server picks the
     * port (PORT may be 0); the others listen on the same one. */
    for (i = 0; i < nthreads; i++) {
        if (app_open(&fleet.apps[i], raw, host, i == 0 ? port : bound, nthreads > 1) != 0)
            break;
        fleet.n++;
        snprintf(bound, sizeof bound, "%d", as_server_port(fleet.apps[0].server, 0));
    }
    /* Catch the signals first: whoever reads "PORT n" may signal at once. */
    if (fleet.n < nthreads ||
        (err = serve_catch_signals(fleet.apps[0].loop, on_signal, &fleet)) < 0) {
        if (fleet.n == nthreads)
            fprintf(stderr, "echo_server: signals: %s\n", as_strerror(err));
        while (fleet.n > 0)
            app_close(&fleet.apps[--fleet.n]);
        free(fleet.apps);
        return 1;
    }
    serve_announce("echo_server", fleet.apps[0].server);
    for (running = 1; running < fleet.n; running++) {
        if ((err = start_thread(&fleet.apps[running])) < 0) {
            fprintf(stderr, "echo_server: thread: %s\n", as_strerror(err));
            fleet.n = running;          /* the loops that will run */
            stop_fleet(&fleet);
            status = 1;
            break;
        }
    }
    if (serve(&fleet.apps[0]) != 0)
        status = 1;
    serve_release_signals(fleet.apps[0].loop);
    for (i = 1; i < running; i++) {
        pthread_join(fleet.apps[i].thread, NULL);
        if (fleet.apps[i].status != 0)
            status = 1;
    }
    /* end listing */

    for (i = 0; i < nthreads; i++) {
        if (nthreads > 1)
            fprintf(stderr, "echo_server: thread %d served %lu connections\n",
                    i, fleet.apps[i].served);
        if (app_close(&fleet.apps[i]) != 0)
            status = 1;
    }
    free(fleet.apps);
    return status;
}
