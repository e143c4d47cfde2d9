/*
 * serve.h - what the three server examples share (chapter 10):
 *
 *   - serve_announce(): print each listening socket's address, then
 *     "PORT n", so a script can find a server started on port 0;
 *   - serve_catch_signals(): SIGINT and SIGTERM as a loop callback;
 *   - a crew: a count of the handler tasks still running, with an event
 *     that is set whenever the count is zero, so main() can wait for the
 *     last handler to end before it closes the loop.
 *
 * Each is a few lines of plain code, kept here rather than pasted three
 * times; it is part of the examples, not of the library.
 */
#ifndef EXAMPLES_SERVE_H
#define EXAMPLES_SERVE_H

#include <asyncstreams.h>

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Room for "[IPv6 address]:port". */
#define SERVE_ADDRLEN (INET6_ADDRSTRLEN + 16)

/* "127.0.0.1:8888" or "[::1]:8888" into buf; returns buf. */
static char *serve_format_addr(const struct sockaddr_storage *ss, socklen_t len,
                               char *buf, size_t size)
{
    char host[INET6_ADDRSTRLEN + 1], port[8];
    int rc = getnameinfo((const struct sockaddr *)ss, len, host, sizeof host,
                         port, sizeof port, NI_NUMERICHOST | NI_NUMERICSERV);
    if (rc != 0)
        snprintf(buf, size, "(%s)", gai_strerror(rc));
    else if (ss->ss_family == AF_INET6)
        snprintf(buf, size, "[%s]:%s", host, port);
    else
        snprintf(buf, size, "%s:%s", host, port);
    return buf;
}

/* Print "listening on ADDR:PORT" for each socket, then "PORT n" for the
 * first, and flush: the reader may be a script waiting on a pipe.  A
 * failure here is reported, and the server serves on regardless. */
static void serve_announce(const char *prog, as_server *s)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char addr[SERVE_ADDRLEN];
    size_t i;
    int err;

    for (i = 0; i < as_server_nsockets(s); i++) {
        if ((err = as_server_sockname(s, i, &ss, &len)) < 0)
            fprintf(stderr, "%s: getsockname: %s\n", prog, as_strerror(err));
        else
            printf("%s: listening on %s\n", prog, serve_format_addr(&ss, len, addr, sizeof addr));
    }
    printf("PORT %d\n", as_server_port(s, 0));
    if (fflush(stdout) != 0)
        fprintf(stderr, "%s: stdout: %s\n", prog, strerror(errno));
}

/* listing: catch */
/* Call fn(signo, userdata) on the loop for each SIGINT or SIGTERM: the
 * library's signal handler only writes the signal's number into the loop's
 * wake-up pipe, and fn runs later, as ordinary loop code (lib/signals.c).
 * Returns 0 or an error code; after an error neither signal is caught. */
static int serve_catch_signals(as_loop *loop, as_signal_fn fn, void *userdata)
{
    int err = as_loop_add_signal_handler(loop, SIGINT, fn, userdata, NULL);
    if (err == 0 && (err = as_loop_add_signal_handler(loop, SIGTERM, fn, userdata, NULL)) < 0)
        as_loop_remove_signal_handler(loop, SIGINT);
    return err;
}

/* Give both signals back what they did before. */
static void serve_release_signals(as_loop *loop)
{
    as_loop_remove_signal_handler(loop, SIGINT);
    as_loop_remove_signal_handler(loop, SIGTERM);
}
/* end listing */

/*
 * A crew: the handler tasks still running.  wait_closed() and shutdown()
 * finish when the last connection is closed, which can be a loop turn
 * before the last handler has returned from its final await; main() waits
 * for `idle` as well before it closes the loop.
 */
struct crew {
    int live;
    as_event *idle;   /* set while live == 0 */
};

static int crew_init(struct crew *c, as_loop *loop)
{
    int err = as_event_new(loop, &c->idle);

    c->live = 0;
    if (err < 0)
        return err;
    as_event_set(c->idle);
    return 0;
}

static void crew_join(struct crew *c)
{
    if (c->live++ == 0)
        as_event_clear(c->idle);
}

static void crew_leave(struct crew *c)
{
    if (--c->live == 0)
        as_event_set(c->idle);
}

/* ------------------------------------------------------------ serving */

/* The signal side of serve_until_signal(): the first signal starts a
 * graceful shutdown, a second one aborts what is left. */
struct serve_run {
    as_server *server;
    as_future *shutdown;
};

static inline void serve_on_signal(int signo, void *userdata)
{
    struct serve_run *run = userdata;
    (void)signo;
    if (run->shutdown) {
        as_future_unref(as_server_shutdown(run->server, -1));
        return;
    }
    run->shutdown = as_server_shutdown(run->server, 1.0);
}

/*
 * Serve on 127.0.0.1:port until SIGINT or SIGTERM, shut down (within 1 s),
 * and wait for every handler in `crew` to return: the command-line mode of
 * you_said, chat_server and tls_echo_server (tls: TLS options, or NULL for
 * plaintext).  echo_server.c spells the same steps out in main(), for the
 * tutorial.  *server receives the server (release it with
 * as_server_unref(); NULL if it never started).  Returns the exit status.
 */
static inline int serve_until_signal(const char *prog, as_loop *loop,
                                     as_client_connected_fn on_client, void *userdata,
                                     const char *port, const as_tls_options *tls,
                                     struct crew *crew, as_server **server)
{
    struct serve_run run = {NULL, NULL};
    as_future *f;
    int err, status = 0;

    *server = NULL;
    f = as_start_server_tls(loop, on_client, userdata, NULL, "127.0.0.1", port, NULL,
                            tls);
    if ((err = f ? as_loop_run_until_complete(loop, f) : -ENOMEM) < 0) {
        fprintf(stderr, "%s: %s\n", prog, f ? as_future_error_message(f) : as_strerror(err));
        as_future_unref(f);
        return 1;
    }
    run.server = *server = as_future_take_result(f);
    as_future_unref(f);
    if ((err = serve_catch_signals(loop, serve_on_signal, &run)) < 0) {
        fprintf(stderr, "%s: signals: %s\n", prog, as_strerror(err));
        return 1;
    }
    serve_announce(prog, run.server);
    f = as_server_serve_forever(run.server);
    err = f ? as_loop_run_until_complete(loop, f) : -ENOMEM;
    as_future_unref(f);
    if (err != AS_ECANCELLED || !run.shutdown) {    /* not stopped by a signal */
        fprintf(stderr, "%s: serve_forever: %s\n", prog, as_strerror(err));
        if (!run.shutdown)
            run.shutdown = as_server_shutdown(run.server, 0);
        status = 1;
    }
    if (!run.shutdown || as_loop_run_until_complete(loop, run.shutdown) < 0)
        status = 1;
    as_future_unref(run.shutdown);
    f = as_event_wait(crew->idle);
    if (!f || as_loop_run_until_complete(loop, f) < 0)
        status = 1;
    as_future_unref(f);
    serve_release_signals(loop);
    return status;
}

#endif
