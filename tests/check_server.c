/* check_server.c - start_server, start_unix_server and the Server lifecycle.
 *
 * The clients here are plain blocking sockets on a thread of their own, so
 * the server is checked against something that shares no code with it. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ an echo handler
 * readline -> write -> (drain if above high water) -> readline ... until EOF,
 * then close.  Written with done callbacks, no tasks. */

struct echo_stats {
    int connections;
    int finished;
    long lines;
};

struct echo {
    as_reader *r;
    as_writer *w;
    struct echo_stats *stats;
    as_future *done;  /* what the server watches: finished at EOF */
};

static void echo_next(struct echo *e);

static void echo_end(struct echo *e, int err)
{
    as_writer_close(e->w);
    e->stats->finished++;
    if (err)
        as_future_set_error(e->done, err, NULL);
    else
        as_future_set_result(e->done, NULL, NULL);
    as_future_unref(e->done);
    as_writer_unref(e->w);
    as_reader_unref(e->r);
    free(e);
}

static void echo_drained(as_future *f, void *p)
{
    struct echo *e = p;
    int err = as_future_error(f);
    if (err)
        echo_end(e, err == AS_ECONNLOST ? 0 : err);
    else
        echo_next(e);
}

static void echo_line(as_future *f, void *p)
{
    struct echo *e = p;
    int err = as_future_error(f);
    as_bytes *line;

    if (err) {
        echo_end(e, err == AS_ECANCELLED ? AS_ECANCELLED : err);
        return;
    }
    line = as_future_result(f);
    if (line->len == 0) {
        echo_end(e, 0);
        return;
    }
    e->stats->lines++;
    if (as_writer_write(e->w, line->data, line->len) < 0) {
        echo_end(e, 0);
        return;
    }
    if (as_writer_get_write_buffer_size(e->w) > AS_TRANSPORT_DEFAULT_HIGH_WATER) {
        as_future *d = as_writer_drain(e->w);
        as_future_add_done_callback(d, echo_drained, e, NULL);
        as_future_unref(d);
        return;
    }
    echo_next(e);
}

static void echo_next(struct echo *e)
{
    as_future *f = as_reader_readline(e->r);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(as_future_add_done_callback(f, echo_line, e, NULL), 0);
    as_future_unref(f);
}

static as_future *echo_handler(as_reader *r, as_writer *w, void *p)
{
    struct echo *e = calloc(1, sizeof *e);
    ck_assert_ptr_nonnull(e);
    e->r = r;
    e->w = w;
    e->stats = p;
    e->stats->connections++;
    e->done = tu_future(as_reader_loop(r));
    echo_next(e);
    return as_future_ref(e->done);
}

/* ------------------------------------------------------------ helpers */

static as_server *start_tcp(as_loop *loop, const char *host,
                            as_client_connected_fn cb, void *ud,
                            const as_server_options *o)
{
    as_future *f = as_start_server(loop, cb, ud, NULL, host, "0", o);
    as_server *s;
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);
    s = as_future_take_result(f);
    as_future_unref(f);
    ck_assert_ptr_nonnull(s);
    return s;
}

static void run_until(as_loop *loop, as_future *f)
{
    as_loop_run_until_complete(loop, f);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int connect_to(int port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        int err = errno;
        close(fd);
        return -err;
    }
    return fd;
}

/* Turn the loop until fd has something to read (the server's replies leave
 * at the end of a loop turn, so a blocking read before that would hang). */
static void run_until_readable(as_loop *loop, int fd)
{
    double deadline = now() + 5;
    for (;;) {
        /* poll(), not select(): fd may be above FD_SETSIZE. */
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 0) > 0)
            return;
        ck_assert_msg(now() < deadline, "no reply within 5 s");
        tu_turn(loop);
    }
}

static int write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read until EOF into buf; returns the byte count, or -errno. */
static long read_all(int fd, char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = read(fd, buf + got, cap - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n == 0 || got + (size_t)n == cap)
            return (long)(got + (size_t)n);
        got += (size_t)n;
    }
}

/* ------------------------------------------------------------ many clients */

enum { MAX_CLIENTS = 200, MAX_LINES = 1000 };

struct crowd {
    int port;
    int ok;
    int clients, lines;
};

static void *crowd_thread(void *p)
{
    struct crowd *c = p;
    static int fds[MAX_CLIENTS];
    static char sent[MAX_LINES * 16], got[MAX_LINES * 16 + 1];
    const int CLIENTS = c->clients, LINES = c->lines;
    size_t len = 0;
    int i, j;

    for (i = 0; i < CLIENTS; i++)
        fds[i] = connect_to(c->port);
    for (i = 0; i < CLIENTS; i++) {
        if (fds[i] < 0)
            return NULL;
        len = 0;
        for (j = 0; j < LINES; j++)
            len += (size_t)sprintf(sent + len, "c%d l%d\n", i, j);
        if (write_all(fds[i], sent, len) < 0)
            return NULL;
        shutdown(fds[i], SHUT_WR);
    }
    for (i = 0; i < CLIENTS; i++) {
        long n = read_all(fds[i], got, sizeof got);
        len = 0;
        for (j = 0; j < LINES; j++)
            len += (size_t)sprintf(sent + len, "c%d l%d\n", i, j);
        if (n != (long)len || memcmp(got, sent, len) != 0)
            return NULL;
        close(fds[i]);
    }
    c->ok = 1;
    return NULL;
}

struct watch_stats {
    struct echo_stats *stats;
    int target;
    as_future *all_done;
};

static void check_all_finished(void *p)
{
    struct watch_stats *w = p;
    if (w->stats->finished >= w->target)
        as_future_set_result(w->all_done, NULL, NULL);
    else
        as_loop_call_later(as_future_loop(w->all_done), 0.01, check_all_finished, w, NULL, NULL);
}

START_TEST(two_hundred_clients_each_echo_a_thousand_lines)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    struct crowd crowd = {0, 0, 0, 0};
    const int CLIENTS = tu_scale(MAX_CLIENTS, 20), LINES = tu_scale(MAX_LINES, 100);
    struct watch_stats ws;
    as_server *s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, NULL);
    as_future *wc;
    pthread_t th;

    ck_assert(as_server_is_serving(s));
    ck_assert_uint_eq(as_server_nsockets(s), 1);
    crowd.port = as_server_port(s, 0);
    crowd.clients = CLIENTS;
    crowd.lines = LINES;
    ck_assert_int_gt(crowd.port, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, crowd_thread, &crowd), 0);

    ws.stats = &stats;
    ws.target = CLIENTS;
    ws.all_done = tu_future(loop);
    as_loop_call_soon(loop, check_all_finished, &ws, NULL, NULL);
    run_until(loop, ws.all_done);
    pthread_join(th, NULL);
    ck_assert_msg(crowd.ok, "a client got a wrong or short echo");
    ck_assert_int_eq(stats.connections, CLIENTS);
    ck_assert_int_eq(stats.lines, (long)CLIENTS * LINES);

    as_server_close(s);
    wc = as_server_wait_closed(s);
    ck_assert_int_eq(as_loop_run_until_complete(loop, wc), 0);
    ck_assert_uint_eq(as_server_active_connections(s), 0);
    as_future_unref(wc);
    as_future_unref(ws.all_done);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ close */

struct idle {
    int port;
    int n;
    double hold;       /* seconds to keep the connections open */
    int fds[8];
    int connected;
};

static void *idle_thread(void *p)
{
    struct idle *c = p;
    struct timespec ts;
    int i;
    for (i = 0; i < c->n; i++)
        c->fds[i] = connect_to(c->port);
    c->connected = 1;
    ts.tv_sec = (time_t)c->hold;
    ts.tv_nsec = (long)((c->hold - (double)ts.tv_sec) * 1e9);
    nanosleep(&ts, NULL);
    for (i = 0; i < c->n; i++)
        if (c->fds[i] >= 0)
            close(c->fds[i]);
    return NULL;
}

static void stop_loop(void *p)
{
    as_loop_stop(p);
}

/* Turn the loop for `seconds`. */
static void run_for(as_loop *loop, double seconds)
{
    ck_assert_int_eq(as_loop_call_later(loop, seconds, stop_loop, loop, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
}

/* One turn that waits at most 20 ms, so a wait loop whose event never
 * comes fails on its deadline instead of hanging. */
static void short_turn(as_loop *loop)
{
    as_handle *h;
    ck_assert_int_eq(as_loop_call_later(loop, 0.02, tu_noop, NULL, NULL, &h), 0);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    as_handle_cancel(h);
    as_handle_unref(h);
}

static void wait_for_connections(as_loop *loop, as_server *s, size_t n)
{
    double deadline = now() + 5;
    while (as_server_active_connections(s) < n && now() < deadline)
        short_turn(loop);
    ck_assert_uint_eq(as_server_active_connections(s), n);
}

/* A done callback that notes the order in which futures finished. */
struct finish_order {
    int ids[4];
    int n;
};

struct finish_note {
    struct finish_order *order;
    int id;
};

static void note_finished(as_future *f, void *p)
{
    struct finish_note *note = p;
    (void)f;
    if (note->order->n < 4)
        note->order->ids[note->order->n++] = note->id;
}

START_TEST(close_stops_listening_and_wait_closed_waits_for_clients)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    struct idle idle = {0, 3, 0.3, {0}, 0};
    as_server *s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, NULL);
    as_future *wc, *wc2, *wx, *wc3;
    struct finish_order order = {{0}, 0};
    struct finish_note first = {&order, 1}, last = {&order, 3};
    pthread_t th;
    double t0;

    idle.port = as_server_port(s, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, idle_thread, &idle), 0);
    wait_for_connections(loop, s, 3);

    t0 = now();
    as_server_close(s);
    ck_assert(as_server_is_closed(s));
    ck_assert(!as_server_is_serving(s));
    ck_assert_uint_eq(as_server_nsockets(s), 0);
    /* Not listening any more: a new connection is refused at once. */
    ck_assert_int_eq(connect_to(idle.port), -ECONNREFUSED);
    /* The idle connections stay; wait_closed returns once they go. */
    ck_assert_uint_eq(as_server_active_connections(s), 3);
    wc = as_server_wait_closed(s);
    ck_assert(!as_future_done(wc));
    /* A wait that is cancelled leaves the others waiting; those finish in
     * the order they asked, as asyncio's do. */
    wx = as_server_wait_closed(s);
    wc3 = as_server_wait_closed(s);
    ck_assert_int_eq(as_future_cancel(wx, NULL), 1);
    ck_assert_int_eq(as_future_add_done_callback(wc, note_finished, &first, NULL), 0);
    ck_assert_int_eq(as_future_add_done_callback(wc3, note_finished, &last, NULL), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, wc3), 0);
    ck_assert_int_eq(as_future_error(wc), 0);
    ck_assert(as_future_cancelled(wx));
    ck_assert_int_eq(order.n, 2);
    ck_assert_int_eq(order.ids[0], 1);
    ck_assert_int_eq(order.ids[1], 3);
    ck_assert_double_ge(now() - t0, 0.2);
    ck_assert_uint_eq(as_server_active_connections(s), 0);
    /* Afterwards it is immediate. */
    wc2 = as_server_wait_closed(s);
    ck_assert(as_future_done(wc2));
    pthread_join(th, NULL);
    as_future_unref(wc);
    as_future_unref(wc2);
    as_future_unref(wx);
    as_future_unref(wc3);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

static int open_fd_count(void)
{
    int fd, n = 0;
    for (fd = 0; fd < 4096; fd++)
        if (fcntl(fd, F_GETFD) >= 0)
            n++;
    return n;
}

START_TEST(shutdown_with_idle_clients_ends_in_time_with_no_fd_left)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    struct idle idle = {0, 4, 1.0, {0}, 0};
    int fds_before = open_fd_count();
    as_server *s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, NULL);
    as_future *sd;
    pthread_t th;
    double t0;

    idle.port = as_server_port(s, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, idle_thread, &idle), 0);
    wait_for_connections(loop, s, 4);

    t0 = now();
    sd = as_server_shutdown(s, 0.5);
    ck_assert_int_eq(as_loop_run_until_complete(loop, sd), 0);
    ck_assert_double_le(now() - t0, 0.6);
    ck_assert_uint_eq(as_server_active_connections(s), 0);
    ck_assert_int_eq(stats.finished, 4);
    as_future_unref(sd);
    as_server_unref(s);
    /* Our side's fds are all gone (the idle thread still holds its 4). */
    ck_assert_int_eq(open_fd_count(), fds_before + 4);
    pthread_join(th, NULL);
    tu_close(loop);
}
END_TEST

/* A handler that writes a lot to a client that never reads: closing cannot
 * flush, so only the deadline's abort ends it. */
static as_future *flood_handler(as_reader *r, as_writer *w, void *p)
{
    static char block[1 << 16];
    int i;
    (void)p;
    for (i = 0; i < 160; i++) /* 10 MiB, far more than the socket buffers */
        ck_assert_int_eq(as_writer_write(w, block, sizeof block), 0);
    as_reader_unref(r);
    as_writer_unref(w); /* not closed: the server's shutdown will */
    return NULL;
}

static void ignore_reports(as_loop *loop, const as_error_context *c, void *p)
{
    int *n = p;
    (void)loop;
    (void)c;
    (*n)++;
}

START_TEST(shutdown_aborts_what_cannot_flush_by_the_deadline)
{
    as_loop *loop = tu_loop();
    /* The client must outlast the deadline by far, even when connecting and
     * waiting for the connection take long on a loaded machine. */
    struct idle idle = {0, 1, 3.0, {0}, 0};
    int reports = 0;
    as_server *s;
    as_future *sd;
    pthread_t th;
    double t0;

    as_loop_set_exception_handler(loop, ignore_reports, &reports, NULL);
    s = start_tcp(loop, "127.0.0.1", flood_handler, NULL, NULL);
    idle.port = as_server_port(s, 0);
    ck_assert_int_eq(pthread_create(&th, NULL, idle_thread, &idle), 0);
    wait_for_connections(loop, s, 1);
    t0 = now();
    sd = as_server_shutdown(s, 0.3);
    ck_assert_int_eq(as_loop_run_until_complete(loop, sd), 0);
    ck_assert_double_ge(now() - t0, 0.29);
    ck_assert_double_le(now() - t0, 0.6);
    ck_assert_uint_eq(as_server_active_connections(s), 0);
    as_future_unref(sd);
    as_server_unref(s);
    pthread_join(th, NULL);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ handler errors */

struct report_log {
    int count;
    int code;
    char message[96];
};

static void record_report(as_loop *loop, const as_error_context *c, void *p)
{
    struct report_log *l = p;
    (void)loop;
    l->count++;
    l->code = c->code;
    snprintf(l->message, sizeof l->message, "%s", c->message);
}

struct held {
    as_reader *r;
    as_writer *w;
};

static void release_held(void *p)
{
    struct held *h = p;
    as_reader_unref(h->r);
    as_writer_unref(h->w);
    free(h);
}

/* Fails at once, but keeps its reader and writer for 0.3 s: if the
 * connection ends before that, the server closed it. */
static as_future *failing_handler(as_reader *r, as_writer *w, void *p)
{
    as_future *f = tu_future(as_reader_loop(r));
    struct held *h = malloc(sizeof *h);
    int *calls = p;
    (*calls)++;
    h->r = r;
    h->w = w;
    as_loop_call_later(as_reader_loop(r), 0.3, release_held, h, NULL, NULL);
    as_future_set_error(f, -EPROTO, "handler gave up");
    return f; /* handing our reference to the server */
}

START_TEST(a_failing_handler_is_reported_once_and_its_connection_closed)
{
    as_loop *loop = tu_loop();
    struct report_log log;
    int calls = 0, fd, fd2;
    char buf[16];
    as_server *s;
    as_future *wc;
    double t0;

    memset(&log, 0, sizeof log);
    as_loop_set_exception_handler(loop, record_report, &log, NULL);
    s = start_tcp(loop, "127.0.0.1", failing_handler, &calls, NULL);
    fd = connect_to(as_server_port(s, 0));
    ck_assert_int_ge(fd, 0);
    wait_for_connections(loop, s, 1);
    t0 = now();
    while (as_server_active_connections(s) > 0 && now() - t0 < 5)
        short_turn(loop);
    ck_assert_double_lt(now() - t0, 0.2); /* not the handler's release */
    ck_assert_int_eq(log.count, 1);
    ck_assert_int_eq(log.code, -EPROTO);
    ck_assert_str_eq(log.message, "Unhandled exception in client_connected_cb");
    /* The client sees the connection end. */
    ck_assert_int_le(read(fd, buf, sizeof buf), 0);
    close(fd);
    /* And the server goes on serving. */
    fd2 = connect_to(as_server_port(s, 0));
    ck_assert_int_ge(fd2, 0);
    wait_for_connections(loop, s, 1);
    ck_assert_int_eq(calls, 2);
    close(fd2);
    as_server_close(s);
    wc = as_server_wait_closed(s);
    as_loop_run_until_complete(loop, wc);
    run_for(loop, 0.4); /* the handlers release their reader and writer */
    /* Two handler failures; no "unclosed StreamWriter": the server had
     * already closed those connections. */
    ck_assert_int_eq(log.count, 2);
    as_future_unref(wc);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ loop closes first
 *
 * Every order of {a served connection closes, the loop stops, the loop
 * closes, the server is unref'd, the handler drops its reader and writer}
 * must be safe and leave nothing behind.  The loop's memory goes only when
 * the last object built on it does (loop.h, rule 1), and the exception
 * handler's destroy hook runs exactly then: it is the proof that nothing
 * leaked.  Under ASan or valgrind a wrong order shows as an invalid access. */

enum order {
    ABORTED_LOOP_CLOSED_THEN_SERVER,   /* connection gone, its callback pending */
    ABORTED_SERVER_THEN_LOOP_CLOSED,
    OPEN_LOOP_CLOSED_THEN_HANDLER_THEN_SERVER,
    OPEN_LOOP_CLOSED_THEN_SERVER_THEN_HANDLER,
    OPEN_SERVER_THEN_LOOP_CLOSED_THEN_HANDLER,
    PENDING_HANDLER_LOOP_CLOSED_THEN_SERVER,
    NORDERS
};

struct first_close {
    enum order order;
    as_reader *r;
    as_writer *w;
    as_future *handler;   /* a handler future that never finishes */
    int loop_freed;
    struct report_log log; /* "unclosed StreamWriter" reports land here */
};

static as_future *stop_on_connect(as_reader *r, as_writer *w, void *p)
{
    struct first_close *fc = p;
    fc->r = r;
    fc->w = w;
    as_loop_stop(as_reader_loop(r));
    if (fc->order <= ABORTED_SERVER_THEN_LOOP_CLOSED) {
        /* The connection closes: its closed future's callbacks are now
         * scheduled, and the loop stops before they run. */
        as_writer_abort(w);
        as_writer_unref(w);
        as_reader_unref(r);
        fc->r = NULL;
        fc->w = NULL;
    }
    if (fc->order == PENDING_HANDLER_LOOP_CLOSED_THEN_SERVER) {
        fc->handler = tu_future(as_reader_loop(r));
        return as_future_ref(fc->handler);
    }
    return NULL;
}

static void note_loop_freed(void *p)
{
    struct first_close *fc = (struct first_close *)((char *)p - offsetof(struct first_close, log));
    fc->loop_freed++;
}

static void drop_handler(struct first_close *fc)
{
    as_writer_unref(fc->w);
    as_reader_unref(fc->r);
    as_future_unref(fc->handler);
    fc->r = NULL;
    fc->w = NULL;
    fc->handler = NULL;
}

START_TEST(every_order_of_loop_close_and_server_unref_is_safe)
{
    as_loop *loop = tu_loop();
    struct first_close fc;
    as_server *s;
    int fd;

    memset(&fc, 0, sizeof fc);
    fc.order = (enum order)_i;
    /* The default handler (NULL), with a destroy hook that says when the
     * loop's memory is freed. */
    ck_assert_int_eq(as_loop_set_exception_handler(loop, record_report, &fc.log,
                                                   note_loop_freed), 0);
    s = start_tcp(loop, "127.0.0.1", stop_on_connect, &fc, NULL);
    fd = connect_to(as_server_port(s, 0));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(as_loop_run_forever(loop), 0);
    ck_assert_ptr_nonnull(as_server_loop(s));

    switch (fc.order) {
    case ABORTED_LOOP_CLOSED_THEN_SERVER:
    case PENDING_HANDLER_LOOP_CLOSED_THEN_SERVER:
        ck_assert_int_gt(as_loop_close(loop), 0);
        as_server_unref(s);
        drop_handler(&fc);
        break;
    case ABORTED_SERVER_THEN_LOOP_CLOSED:
        as_server_unref(s);
        ck_assert_int_ge(as_loop_close(loop), 0);
        break;
    case OPEN_LOOP_CLOSED_THEN_HANDLER_THEN_SERVER:
        ck_assert_int_gt(as_loop_close(loop), 0);
        drop_handler(&fc);
        as_server_unref(s);
        break;
    case OPEN_LOOP_CLOSED_THEN_SERVER_THEN_HANDLER:
        ck_assert_int_gt(as_loop_close(loop), 0);
        as_server_unref(s);
        drop_handler(&fc);
        break;
    case OPEN_SERVER_THEN_LOOP_CLOSED_THEN_HANDLER:
        as_server_unref(s);
        ck_assert_int_gt(as_loop_close(loop), 0);
        drop_handler(&fc);
        break;
    case NORDERS:
        break;
    }
    ck_assert_int_eq(fc.loop_freed, 1); /* every object is gone */
    close(fd);
}
END_TEST

/* ------------------------------------------------------------ serving */

static void cancel_later(void *p)
{
    as_future_cancel(p, NULL);
}

START_TEST(serve_forever_refuses_twice_and_its_cancel_closes_the_server)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    as_server_options o;
    as_server *s;
    as_future *sf, *again, *ss;

    memset(&o, 0, sizeof o);
    o.no_start = 1;
    s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, &o);
    ck_assert(!as_server_is_serving(s));
    sf = as_server_serve_forever(s);
    ck_assert(as_server_is_serving(s));
    again = as_server_serve_forever(s);
    ck_assert_int_eq(as_future_error(again), AS_ESTATE);
    ck_assert_str_eq(as_future_error_message(again),
                     "server is already being awaited on serve_forever()");
    as_loop_call_later(loop, 0.05, cancel_later, sf, NULL, NULL);
    ck_assert_int_eq(as_loop_run_until_complete(loop, sf), AS_ECANCELLED);
    /* The done callback that closes the server runs one turn later. */
    ss = as_server_wait_closed(s);
    ck_assert_int_eq(as_loop_run_until_complete(loop, ss), 0);
    ck_assert(as_server_is_closed(s));
    as_future_unref(again);
    again = as_server_serve_forever(s);
    ck_assert_int_eq(as_future_error(again), AS_ESTATE);
    ck_assert_str_eq(as_future_error_message(again), "server is closed");
    as_future_unref(again);
    as_future_unref(ss);
    ss = as_server_start_serving(s);
    ck_assert_int_eq(as_future_error(ss), AS_ESTATE);
    as_future_unref(ss);
    as_future_unref(sf);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

START_TEST(start_serving_later_and_idempotently)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    as_server_options o;
    as_server *s;
    as_future *f, *g, *wc;
    int fd;
    char buf[8];

    memset(&o, 0, sizeof o);
    o.no_start = 1;
    s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, &o);
    ck_assert(!as_server_is_serving(s));
    f = as_server_start_serving(s);
    ck_assert(as_server_is_serving(s));
    ck_assert(!as_future_done(f)); /* finishes on the next turn */
    g = as_server_start_serving(s);
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);
    ck_assert_int_eq(as_loop_run_until_complete(loop, g), 0);
    fd = connect_to(as_server_port(s, 0));
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write_all(fd, "hi\n", 3), 0);
    wait_for_connections(loop, s, 1);
    run_until_readable(loop, fd);
    ck_assert_int_eq(read(fd, buf, sizeof buf), 3);
    close(fd);
    as_server_close(s);
    wc = as_server_wait_closed(s);
    as_loop_run_until_complete(loop, wc);
    as_future_unref(f);
    as_future_unref(g);
    as_future_unref(wc);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

START_TEST(binding_a_busy_port_fails_with_the_address)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    as_server *s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, NULL);
    char port[16];
    as_server_options o;
    as_future *f;

    memset(&o, 0, sizeof o);
    o.reuse_address = -1;
    snprintf(port, sizeof port, "%d", as_server_port(s, 0));
    f = as_start_server(loop, echo_handler, &stats, NULL, "127.0.0.1", port, &o);
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), -EADDRINUSE);
    {
        /* CPython 3.13's words, errno and all: the binding turns the
         * leading "[Errno 98] " into OSError's errno. */
        char want[256];
        snprintf(want, sizeof want, "[Errno %d] error while attempting to bind on address "
                 "('127.0.0.1', %s): [errno %d] address already in use",
                 EADDRINUSE, port, EADDRINUSE);
        ck_assert_str_eq(as_future_error_message(f), want);
    }
    as_future_unref(f);
    as_server_unref(s); /* dropping the last reference closes it */
    tu_close(loop);
}
END_TEST

/* getaddrinfo() would wrap "99999" to 34463 and listen there. */
START_TEST(a_port_out_of_range_is_refused)
{
    static const char *const bad[] = {"65536", "99999", "-1"};
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    as_future *f;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = as_start_server(loop, echo_handler, &stats, NULL, "127.0.0.1", bad[i], NULL);
        ck_assert_int_eq(as_loop_run_until_complete(loop, f), AS_EPORT);
        ck_assert_str_eq(as_future_error_message(f), "bind(): port must be 0-65535.");
        as_future_unref(f);
        f = as_start_server(loop, echo_handler, &stats, NULL, NULL, bad[i], NULL);
        ck_assert_int_eq(as_loop_run_until_complete(loop, f), AS_EPORT);
        as_future_unref(f);
    }
    tu_close(loop);
}
END_TEST

START_TEST(a_null_host_binds_every_family)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    as_server *s = start_tcp(loop, NULL, echo_handler, &stats, NULL);
    size_t i;
    int saw_v4 = 0;

    ck_assert_uint_ge(as_server_nsockets(s), 1);
    for (i = 0; i < as_server_nsockets(s); i++) {
        struct sockaddr_storage ss;
        socklen_t len;
        ck_assert_int_eq(as_server_sockname(s, i, &ss, &len), 0);
        ck_assert(ss.ss_family == AF_INET || ss.ss_family == AF_INET6);
        saw_v4 |= ss.ss_family == AF_INET;
    }
    ck_assert(saw_v4);
    ck_assert_int_eq(as_server_sockname(s, 99, NULL, NULL), AS_EINVAL);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

START_TEST(an_unresolvable_host_fails_with_a_resolution_error)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    int calls = 0;
    as_future *f = as_start_server(loop, echo_handler, &stats, NULL,
                                   "no-such-host.invalid", "0", NULL);
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), AS_ERESOLVE);
    as_future_unref(f);
    f = as_start_server(loop, NULL, &calls, NULL, "127.0.0.1", "0", NULL);
    ck_assert_int_eq(as_future_error(f), AS_EINVAL);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ accept errors */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec * 1e-6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec * 1e-6;
}

static void stop_cb(void *p)
{
    as_loop_stop(p);
}

START_TEST(emfile_backs_off_reports_once_and_recovers)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    struct report_log log;
    struct rlimit rl, saved;
    int filler[64], nfill = 0, clients[8], i;
    as_server *s;
    double cpu0;
    as_future *wc;

    memset(&log, 0, sizeof log);
    as_loop_set_exception_handler(loop, record_report, &log, NULL);
    s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, NULL);
    /* Clients first (their fds count against the same limit), then use up
     * every remaining fd so accept() fails with EMFILE. */
    for (i = 0; i < 8; i++)
        ck_assert_int_ge(clients[i] = connect_to(as_server_port(s, 0)), 0);
    getrlimit(RLIMIT_NOFILE, &rl);
    saved = rl;
    rl.rlim_cur = (rlim_t)open_fd_count() + 8;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    while (nfill < 64 && (filler[nfill] = dup(0)) >= 0)
        nfill++;
    ck_assert_int_lt(nfill, 64);

    /* One second of EMFILE: the loop must not spin, nor flood the log. */
    cpu0 = cpu_seconds();
    as_loop_call_later(loop, 1.0, stop_cb, loop, NULL, NULL);
    as_loop_run_forever(loop);
    ck_assert_double_lt(cpu_seconds() - cpu0, 0.2);
    ck_assert_int_eq(log.count, 1);
    ck_assert_int_eq(log.code, -EMFILE);
    ck_assert_uint_eq(as_server_active_connections(s), 0);

    /* Room again: every waiting client is served. */
    while (nfill > 0)
        close(filler[--nfill]);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    {
        double deadline = now() + 5;
        while (as_server_active_connections(s) < 8 && now() < deadline)
            short_turn(loop);
    }
    ck_assert_uint_eq(as_server_active_connections(s), 8);
    ck_assert_int_eq(log.count, 1);
    for (i = 0; i < 8; i++)
        close(clients[i]);
    as_server_close(s);
    wc = as_server_wait_closed(s);
    as_loop_run_until_complete(loop, wc);
    as_future_unref(wc);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

/* At the fd limit with clients coming and going, each close lets one
 * accept through and the next one fails again.  That is one episode, from
 * the first EMFILE until the accept queue is empty, and one report: not
 * one per connection served (which is what a server under steady fd
 * pressure would otherwise log). */
START_TEST(emfile_with_churn_is_one_episode)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    struct report_log log;
    struct rlimit rl, saved;
    int filler[64], nfill = 0, clients[6], i, k;
    as_server *s;
    as_future *wc;
    double deadline;

    memset(&log, 0, sizeof log);
    as_loop_set_exception_handler(loop, record_report, &log, NULL);
    s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, NULL);
    for (i = 0; i < 6; i++)
        ck_assert_int_ge(clients[i] = connect_to(as_server_port(s, 0)), 0);
    /* Use up every fd, then free one: room for one accepted connection. */
    getrlimit(RLIMIT_NOFILE, &rl);
    saved = rl;
    rl.rlim_cur = (rlim_t)open_fd_count() + 8;
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);
    while (nfill < 32 && (filler[nfill] = dup(0)) >= 0)
        nfill++;
    ck_assert_int_lt(nfill, 32);
    ck_assert_int_gt(nfill, 0);
    close(filler[--nfill]);

    for (k = 0; k < 6; k++) {
        deadline = now() + 5;
        while (stats.connections <= k && now() < deadline)
            short_turn(loop);
        ck_assert_int_eq(stats.connections, k + 1);
        /* The client leaves; a filler takes its fd, so the only fd freed
         * for the server is the one its own side closes. */
        close(clients[k]);
        ck_assert_int_ge(filler[nfill++] = dup(0), 0);
    }
    deadline = now() + 5;
    while (stats.finished < 6 && now() < deadline)
        short_turn(loop);
    ck_assert_int_eq(stats.finished, 6);
    ck_assert_int_eq(log.code, -EMFILE);
    ck_assert_int_eq(log.count, 1);

    while (nfill > 0)
        close(filler[--nfill]);
    ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &saved), 0);
    as_server_close(s);
    wc = as_server_wait_closed(s);
    as_loop_run_until_complete(loop, wc);
    as_future_unref(wc);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

/* Fill every fd below FD_SETSIZE, so that the next socket gets a larger
 * one; returns how many fillers it opened. */
static int fill_below_fd_setsize(int *filler)
{
    int nfill = 0;

    tu_raise_fd_limit(FD_SETSIZE + 64);
    while ((filler[nfill] = dup(0)) >= 0 && filler[nfill] < FD_SETSIZE)
        nfill++;
    close(filler[nfill]);
    return nfill;
}

/* One line through the server, from a client whose fd is above FD_SETSIZE
 * like the server's end of it. */
static void echo_one_line(as_loop *loop, as_server *s)
{
    char buf[16];
    int fd = connect_to(as_server_port(s, 0));

    ck_assert_int_ge(fd, FD_SETSIZE);
    ck_assert_int_eq(write_all(fd, "ok\n", 3), 0);
    run_until_readable(loop, fd);
    ck_assert_int_eq((int)read(fd, buf, sizeof buf), 3);
    close(fd);
}

/*
 * A listening socket numbered above FD_SETSIZE: served where the loop can
 * watch it; where it cannot (the fixed-size select() build, Makefile.am),
 * as_start_server() fails, or with no_start the later start_serving(), and
 * either way no fd is left behind.
 */
START_TEST(a_listening_fd_above_fd_setsize_is_served_or_fails_the_start_and_leaks_nothing)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    static int filler[FD_SETSIZE + 16];
    int nfill = fill_below_fd_setsize(filler), fds_before = open_fd_count();
    as_server_options o;
    as_server *s;
    as_future *f, *g;

    f = as_start_server(loop, echo_handler, &stats, NULL, "127.0.0.1", "0", NULL);
    if (!tu_can_watch(loop, FD_SETSIZE)) {
        ck_assert_int_eq(as_loop_run_until_complete(loop, f), AS_EFDSETSIZE);
        as_future_unref(f);
    } else {
        ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);
        s = as_future_take_result(f);
        as_future_unref(f);
        echo_one_line(loop, s);
        as_server_close(s);
        g = as_server_wait_closed(s);
        ck_assert_int_eq(as_loop_run_until_complete(loop, g), 0);
        as_future_unref(g);
        as_server_unref(s);
    }
    ck_assert_int_eq(open_fd_count(), fds_before);

    /* Not serving yet: the server is made, and start_serving() decides. */
    memset(&o, 0, sizeof o);
    o.no_start = 1;
    f = as_start_server(loop, echo_handler, &stats, NULL, "127.0.0.1", "0", &o);
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);
    s = as_future_take_result(f);
    as_future_unref(f);
    g = as_server_start_serving(s);
    if (!tu_can_watch(loop, FD_SETSIZE)) {
        ck_assert_int_eq(as_loop_run_until_complete(loop, g), AS_EFDSETSIZE);
        as_future_unref(g);
        ck_assert(!as_server_is_serving(s));
    } else {
        ck_assert_int_eq(as_loop_run_until_complete(loop, g), 0);
        as_future_unref(g);
        ck_assert(as_server_is_serving(s));
        echo_one_line(loop, s);
        as_server_close(s);
        g = as_server_wait_closed(s);
        ck_assert_int_eq(as_loop_run_until_complete(loop, g), 0);
        as_future_unref(g);
    }
    as_server_unref(s);
    ck_assert_int_eq(open_fd_count(), fds_before);

    while (nfill > 0)
        close(filler[--nfill]);
    tu_close(loop);
}
END_TEST

/*
 * A client accepted above FD_SETSIZE: served where the loop can watch it;
 * where it cannot, closed at once and reported, and once fds are free
 * again the next client is served.
 */
START_TEST(a_client_fd_above_fd_setsize_is_served_or_closed_and_others_are_served)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    struct report_log log;
    static int filler[FD_SETSIZE + 16];
    int nfill, fd1, fd2, n;
    char buf[16];
    as_server *s;
    as_future *wc;

    memset(&log, 0, sizeof log);
    as_loop_set_exception_handler(loop, record_report, &log, NULL);
    tu_raise_fd_limit(FD_SETSIZE + 64);
    s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, NULL);
    fd1 = connect_to(as_server_port(s, 0));
    ck_assert_int_ge(fd1, 0);
    nfill = fill_below_fd_setsize(filler);
    if (!tu_can_watch(loop, FD_SETSIZE)) {
        double deadline = now() + 2;
        while (log.count == 0 && now() < deadline)
            short_turn(loop);
        ck_assert_int_eq(log.count, 1);
        ck_assert_int_eq(log.code, AS_EFDSETSIZE);
        /* That client was closed... */
        run_until_readable(loop, fd1);
        n = (int)read(fd1, buf, sizeof buf);
        ck_assert_int_le(n, 0);
    } else {
        ck_assert_int_eq(write_all(fd1, "ok\n", 3), 0);
        run_until_readable(loop, fd1);
        ck_assert_int_eq((int)read(fd1, buf, sizeof buf), 3);
        echo_one_line(loop, s);
        ck_assert_int_eq(log.count, 0);
    }
    close(fd1);
    /* ...and with fds free again the next one is served. */
    while (nfill > 0)
        close(filler[--nfill]);
    fd2 = connect_to(as_server_port(s, 0));
    ck_assert_int_ge(fd2, 0);
    ck_assert_int_eq(write_all(fd2, "ok\n", 3), 0);
    run_until_readable(loop, fd2);
    ck_assert_int_eq((int)read(fd2, buf, sizeof buf), 3);
    close(fd2);
    as_server_close(s);
    wc = as_server_wait_closed(s);
    as_loop_run_until_complete(loop, wc);
    as_future_unref(wc);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ Unix */

static void unix_path(char *buf, size_t size, const char *name)
{
    snprintf(buf, size, "/tmp/as-test-%ld-%s.sock", (long)getpid(), name);
    unlink(buf);
}

static as_future *start_unix(as_loop *loop, const char *path,
                             struct echo_stats *stats, const as_server_options *o)
{
    as_future *f = as_start_unix_server(loop, echo_handler, stats, NULL, path, o);
    ck_assert_ptr_nonnull(f);
    as_loop_run_until_complete(loop, f);
    return f;
}

static int unix_connect(const char *path)
{
    struct sockaddr_un sun;
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    if (connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

START_TEST(unix_server_serves_and_removes_its_file_on_close)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    char path[108], buf[8];
    struct stat st;
    as_future *f, *wc;
    as_server *s;
    int fd;

    unix_path(path, sizeof path, "a");
    f = start_unix(loop, path, &stats, NULL);
    ck_assert_int_eq(as_future_error(f), 0);
    s = as_future_take_result(f);
    as_future_unref(f);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISSOCK(st.st_mode));
    fd = unix_connect(path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write_all(fd, "x\n", 2), 0);
    run_until_readable(loop, fd);
    ck_assert_int_eq((int)read(fd, buf, sizeof buf), 2);
    close(fd);
    as_server_close(s);
    ck_assert_int_eq(stat(path, &st), -1); /* removed at once */
    wc = as_server_wait_closed(s);
    as_loop_run_until_complete(loop, wc);
    as_future_unref(wc);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

START_TEST(unix_server_replaces_a_stale_file_and_refuses_one_in_use)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    char path[108];
    struct sockaddr_un sun;
    as_future *f, *g;
    as_server *s;
    int stale;

    unix_path(path, sizeof path, "b");
    /* A socket file left by a dead process: bound, never listening. */
    stale = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sun, 0, sizeof sun);
    sun.sun_family = AF_UNIX;
    strcpy(sun.sun_path, path);
    ck_assert_int_eq(bind(stale, (struct sockaddr *)&sun, sizeof sun), 0);
    close(stale);

    f = start_unix(loop, path, &stats, NULL);
    ck_assert_int_eq(as_future_error(f), 0);
    s = as_future_take_result(f);

    /* Somebody is serving there now: refused, and the file is kept. */
    g = start_unix(loop, path, &stats, NULL);
    ck_assert_int_eq(as_future_error(g), -EADDRINUSE);
    {
        char expect[160];
        snprintf(expect, sizeof expect, "[Errno %d] Address '%s' is already in use",
                 EADDRINUSE, path);
        ck_assert_str_eq(as_future_error_message(g), expect);
    }
    {
        /* The in-use probe was a real connection to our server, closed at
         * once: the server accepts it on a later turn, and its handler
         * sees EOF and ends. */
        as_future *wc;
        double deadline = now() + 5;
        while (stats.connections == 0 && now() < deadline)
            tu_turn(loop);
        ck_assert_int_eq(stats.connections, 1);
        as_server_close(s);
        ck_assert_int_eq(access(path, F_OK), -1);
        wc = as_server_wait_closed(s);
        ck_assert_int_eq(as_loop_run_until_complete(loop, wc), 0);
        ck_assert_int_eq(stats.connections, 1);
        as_future_unref(wc);
    }
    as_future_unref(f);
    as_future_unref(g);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

START_TEST(unix_server_cleanup_rules)
{
    as_loop *loop = tu_loop();
    struct echo_stats stats = {0, 0, 0};
    as_server_options o;
    char path[108];
    as_future *f;
    as_server *s;
    int fd;

    /* A regular file at the path: refused, untouched. */
    unix_path(path, sizeof path, "c");
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    f = start_unix(loop, path, &stats, NULL);
    ck_assert_int_eq(as_future_error(f), -EADDRINUSE);
    ck_assert_int_eq(access(path, F_OK), 0);
    as_future_unref(f);
    unlink(path);

    /* keep_socket_file: the file stays after close. */
    memset(&o, 0, sizeof o);
    o.keep_socket_file = 1;
    f = start_unix(loop, path, &stats, &o);
    s = as_future_take_result(f);
    as_future_unref(f);
    as_server_close(s);
    ck_assert_int_eq(access(path, F_OK), 0);
    as_server_unref(s);
    unlink(path);

    /* Replaced by another file meanwhile: not ours, not removed. */
    f = start_unix(loop, path, &stats, NULL);
    s = as_future_take_result(f);
    as_future_unref(f);
    unlink(path);
    fd = open(path, O_CREAT | O_WRONLY, 0600);
    close(fd);
    as_server_close(s);
    ck_assert_int_eq(access(path, F_OK), 0);
    as_server_unref(s);
    unlink(path);
    /* Already removed by someone else: closing is fine. */
    f = start_unix(loop, path, &stats, NULL);
    s = as_future_take_result(f);
    as_future_unref(f);
    unlink(path);
    as_server_close(s);
    as_server_unref(s);

    /* A path too long for sockaddr_un. */
    {
        char longpath[300];
        memset(longpath, 'x', sizeof longpath - 1);
        longpath[0] = '/';
        longpath[sizeof longpath - 1] = 0;
        f = as_start_unix_server(loop, echo_handler, &stats, NULL, longpath, NULL);
        ck_assert_int_eq(as_future_error(f), AS_EINVAL);
        as_future_unref(f);
    }
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ children */

enum { FD_SCAN = 1024 };

/* Which fds below FD_SCAN are open in this process. */
static void scan_fds(char *open_now)
{
    int fd;
    for (fd = 0; fd < FD_SCAN; fd++)
        open_now[fd] = fcntl(fd, F_GETFD) >= 0;
}

/* Start `ls -l /proc/self/fd` with fork() and exec(), its stdin /dev/null
 * and its stdout and stderr a pipe, and mark in listed[] every fd it
 * reports, except the one ls itself opens to read the directory (its link
 * points into /proc).  Returns how many lines it listed, or -1 when this
 * system has no /proc/self/fd to ask. */
static int child_fds(char *listed)
{
    static char out[65536];
    int pfd[2], nul, status, nlines = 0;
    long n;
    char *line, *next;
    pid_t pid;

    if (access("/proc/self/fd", F_OK) != 0)
        return -1;
    memset(listed, 0, FD_SCAN);
    ck_assert_int_eq(pipe(pfd), 0);
    ck_assert_int_eq(fcntl(pfd[0], F_SETFD, FD_CLOEXEC), 0);
    ck_assert_int_eq(fcntl(pfd[1], F_SETFD, FD_CLOEXEC), 0);
    nul = open("/dev/null", O_RDWR | O_CLOEXEC);
    ck_assert_int_ge(nul, 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        /* dup2() clears close-on-exec on 0, 1 and 2 only: the originals
         * close at exec like everything else that should. */
        if (dup2(nul, 0) < 0 || dup2(pfd[1], 1) < 0 || dup2(pfd[1], 2) < 0)
            _exit(126);
        execl("/bin/sh", "sh", "-c", "exec ls -l /proc/self/fd", (char *)NULL);
        _exit(127);
    }
    close(nul);
    close(pfd[1]);
    n = read_all(pfd[0], out, sizeof out - 1);
    close(pfd[0]);
    ck_assert_int_ge(n, 0);
    out[n] = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "ls -l /proc/self/fd failed: %s", out);
    /* "lrwx------ 1 u g 64 Dec  1 10:00 7 -> socket:[1234]" */
    for (line = out; *line; line = next) {
        char *arrow, *num;
        long fd;
        next = strchr(line, '\n');
        next = next ? (*next = 0, next + 1) : line + strlen(line);
        if (!(arrow = strstr(line, " -> ")))
            continue;
        for (num = arrow; num > line && num[-1] != ' '; num--)
            ;
        fd = strtol(num, NULL, 10);
        nlines++;
        if (strncmp(arrow + 4, "/proc/", 6) == 0)
            continue; /* ls's own directory fd */
        if (fd >= 0 && fd < FD_SCAN)
            listed[fd] = 1;
    }
    return nlines;
}

START_TEST(a_child_process_inherits_none_of_the_servers_fds)
{
    static char before[FD_SCAN], after[FD_SCAN], listed[FD_SCAN];
    struct echo_stats stats = {0, 0, 0};
    char path[64], port[16];
    as_loop *loop;
    as_server *s, *us;
    as_connection *c;
    as_future *f;
    int fd, ours = 0, leaked = 0;

    /* Everything open now is not the library's (Check's own files...). */
    scan_fds(before);
    loop = tu_loop();
    s = start_tcp(loop, "127.0.0.1", echo_handler, &stats, NULL);
    snprintf(path, sizeof path, "/tmp/as-cloexec-%ld.sock", (long)getpid());
    unlink(path);
    f = start_unix(loop, path, &stats, NULL);
    ck_assert_int_eq(as_future_error(f), 0);
    us = as_future_take_result(f);
    as_future_unref(f);
    /* A client the library connected, and the connection it accepted. */
    snprintf(port, sizeof port, "%d", as_server_port(s, 0));
    f = as_open_connection(loop, "127.0.0.1", port, NULL);
    ck_assert_int_eq(as_loop_run_until_complete(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    wait_for_connections(loop, s, 1);

    /* The loop's wake-up pipe (2), two listening sockets, both ends of the
     * connection. */
    scan_fds(after);
    for (fd = 0; fd < FD_SCAN; fd++)
        ours += after[fd] && !before[fd];
    ck_assert_int_ge(ours, 6);

    if (child_fds(listed) < 0) {
        fprintf(stderr, "check_server: no /proc/self/fd, the fd-inheritance test is skipped\n");
    } else {
        ck_assert_msg(listed[0] && listed[1] && listed[2], "the child lists no stdio fds");
        for (fd = 0; fd < FD_SCAN; fd++)
            if (listed[fd] && after[fd] && !before[fd]) {
                fprintf(stderr, "fd %d leaked into the child\n", fd);
                leaked++;
            }
        ck_assert_int_eq(leaked, 0);
    }

    as_writer_close(c->writer);
    f = as_writer_wait_closed(c->writer);
    as_loop_run_until_complete(loop, f);
    as_future_unref(f);
    as_connection_free(c);
    as_server_close(us);
    as_server_unref(us);
    as_server_close(s);
    f = as_server_wait_closed(s);
    as_loop_run_until_complete(loop, f);
    as_future_unref(f);
    as_server_unref(s);
    tu_close(loop);
}
END_TEST

static void count_destroy(void *p)
{
    ++*(int *)p;
}

/* A start refused before any server exists still lets go of its userdata
 * (server.h rule 3): a binding's callback would leak otherwise. */
START_TEST(a_refused_start_lets_go_of_its_userdata)
{
    as_loop *loop = tu_loop();
    as_server_options opts = {0};
    char path[200];
    int destroyed = 0;
    as_future *f[4];
    size_t i;

    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = '\0';
    opts.family = 12345;
    f[0] = as_start_server(loop, echo_handler, &destroyed, count_destroy, "127.0.0.1", "99999", NULL);
    f[1] = as_start_server(loop, echo_handler, &destroyed, count_destroy, "127.0.0.1", "0", &opts);
    f[2] = as_start_server(loop, NULL, &destroyed, count_destroy, "127.0.0.1", "0", NULL);
    f[3] = as_start_unix_server(loop, echo_handler, &destroyed, count_destroy, path, NULL);
    ck_assert_int_eq(destroyed, 4);
    for (i = 0; i < 4; i++) {
        ck_assert_int_lt(as_loop_run_until_complete(loop, f[i]), 0);
        as_future_unref(f[i]);
    }
    ck_assert_int_eq(destroyed, 4);
    tu_close(loop);
}
END_TEST

/* Every call of server.h given a NULL server or loop: the answer
 * asyncstreams.h's NULL rule promises, and no destroy hook runs. */
START_TEST(every_call_accepts_a_null_server)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int destroyed = 0;
    tu_null_call calls[] = {
        TU_NULL_PTR(as_start_server(NULL, echo_handler, &destroyed, count_destroy,
                                    "127.0.0.1", "0", NULL)),
        TU_NULL_PTR(as_start_unix_server(NULL, echo_handler, &destroyed, count_destroy,
                                         "/nonexistent", NULL)),
        TU_NULL_PTR(as_server_ref(NULL)),
        TU_NULL_VOID(as_server_unref(NULL)),
        TU_NULL_PTR(as_server_loop(NULL)),
        TU_NULL_INT(as_server_nsockets(NULL), 0),
        TU_NULL_INT(as_server_socket_fd(NULL, 0), AS_EINVAL),
        TU_NULL_INT(as_server_sockname(NULL, 0, &ss, &len), AS_EINVAL),
        TU_NULL_INT(as_server_port(NULL, 0), AS_EINVAL),
        TU_NULL_INT(as_server_is_serving(NULL), 0),
        TU_NULL_INT(as_server_is_closed(NULL), 1),
        TU_NULL_INT(as_server_active_connections(NULL), 0),
        TU_NULL_PTR(as_server_start_serving(NULL)),
        TU_NULL_PTR(as_server_serve_forever(NULL)),
        TU_NULL_VOID(as_server_close(NULL)),
        TU_NULL_PTR(as_server_wait_closed(NULL)),
        TU_NULL_VOID(as_server_close_clients(NULL)),
        TU_NULL_VOID(as_server_abort_clients(NULL)),
        TU_NULL_PTR(as_server_shutdown(NULL, 1)),
    };

    tu_check_null(calls);
    ck_assert_int_eq(destroyed, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("server");
    TCase *tc;

    signal(SIGPIPE, SIG_DFL); /* the library must never raise it */

    /* These and "accept errors" exhaust file descriptors through
     * RLIMIT_NOFILE, which valgrind virtualises (it keeps fds of its own
     * near the limit): they run in make check and under the sanitizers,
     * not under valgrind. */
    if (!tu_under_valgrind()) {
        tc = tcase_create("fd limit");
        tcase_set_timeout(tc, 20);
        tcase_add_test(tc, a_client_fd_above_fd_setsize_is_served_or_closed_and_others_are_served);
        tcase_add_test(tc, a_listening_fd_above_fd_setsize_is_served_or_fails_the_start_and_leaks_nothing);
        suite_add_tcase(s, tc);
    } else {
        fprintf(stderr, "check_server: under valgrind, the fd-exhaustion tests are not run\n");
    }
#ifdef AS_SELECT_FIXED
    return tu_run(s); /* built against the fixed-size select(): this case only */
#endif

    tc = tcase_create("serving");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, every_call_accepts_a_null_server);
    tcase_add_test(tc, a_refused_start_lets_go_of_its_userdata);
    tcase_add_test(tc, two_hundred_clients_each_echo_a_thousand_lines);
    tcase_add_test(tc, start_serving_later_and_idempotently);
    tcase_add_test(tc, serve_forever_refuses_twice_and_its_cancel_closes_the_server);
    tcase_add_test(tc, binding_a_busy_port_fails_with_the_address);
    tcase_add_test(tc, a_port_out_of_range_is_refused);
    tcase_add_test(tc, a_null_host_binds_every_family);
    tcase_add_test(tc, an_unresolvable_host_fails_with_a_resolution_error);
    tcase_add_test(tc, a_failing_handler_is_reported_once_and_its_connection_closed);
    suite_add_tcase(s, tc);

    tc = tcase_create("closing");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, close_stops_listening_and_wait_closed_waits_for_clients);
    tcase_add_test(tc, shutdown_with_idle_clients_ends_in_time_with_no_fd_left);
    tcase_add_test(tc, shutdown_aborts_what_cannot_flush_by_the_deadline);
    tcase_add_loop_test(tc, every_order_of_loop_close_and_server_unref_is_safe, 0, NORDERS);
    suite_add_tcase(s, tc);

    if (!tu_under_valgrind()) {
        tc = tcase_create("accept errors");
        tcase_set_timeout(tc, 20);
        tcase_add_test(tc, emfile_backs_off_reports_once_and_recovers);
        tcase_add_test(tc, emfile_with_churn_is_one_episode);
        suite_add_tcase(s, tc);
    }

    tc = tcase_create("unix");
    tcase_add_test(tc, unix_server_serves_and_removes_its_file_on_close);
    tcase_add_test(tc, unix_server_replaces_a_stale_file_and_refuses_one_in_use);
    tcase_add_test(tc, unix_server_cleanup_rules);
    suite_add_tcase(s, tc);

    tc = tcase_create("children");
    tcase_add_test(tc, a_child_process_inherits_none_of_the_servers_fds);
    suite_add_tcase(s, tc);

    return tu_run(s);
}
