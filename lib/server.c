/*
 * server.c - listening sockets, accept, and the connections a server made.
 *
 * The server is three small state machines side by side:
 *   - each listener: watching its socket, or backing off after an accept
 *     error (a timer brings it back);
 *   - the server: bound -> serving -> closed;
 *   - each client record: open until its transport's closed future
 *     finishes, then gone.  wait_closed() waits for "closed and no records".
 * Everything that can finish later (resolution, a handler, a transport)
 * reports back through a future's done callback, never synchronously.
 */
#include "server.h"
#include "errors.h"
#include "internal.h"
#include "resolve.h"
#include "sock.h"
#include "socket_transport.h"
#include "waiters.h"

#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define BACKOFF_FIRST 0.05
#define BACKOFF_MAX 1.0

struct listener {
    as_server *server;
    int fd;
    int watching;
    double backoff;       /* delay before the next retry, 0 if none */
    int reported;         /* this error episode was reported */
    as_handle *resume;    /* the backoff timer */
};

/* One connection the server made, while the server lists it.  Two
 * references: the server's list, and the transport's closed callback.
 * Leaving the list (client_unlink) drops what the record holds; it happens
 * when the transport closes, when the loop closes with that callback never
 * run, or when the server is freed, whichever comes first (server.h, rule 7).
 * The handler's done callback holds a transport reference of its own, not
 * the record, so a handler that outlives the list needs nothing from it. */
struct client {
    as_server *server;    /* NULL once unlinked */
    as_transport *transport;
    as_reader *reader;
    as_future *handler;
    struct client *prev, *next;
    int refs;
};

struct as_server {
    as_loop *loop;
    unsigned refs;
    as_client_connected_fn cb;
    void *userdata;
    as_destroy_fn destroy;

    struct listener *listeners;
    size_t nlisteners;
    ssize_t limit;
    int backlog;
    int listening;        /* listen() was called */
    int serving;
    int closed;

    char *unix_path;      /* Unix servers: the file to remove on close */
    dev_t unix_dev;
    ino_t unix_ino;

    struct client *clients;
    size_t nclients;
    int fd_report_done;   /* an fd >= FD_SETSIZE was reported this episode */

    as_future *serve_forever;
    as__waiters waiters;       /* wait_closed() and shutdown() futures */
    as_handle *shutdown_timer;
};

/* ------------------------------------------------------------ reports */

static void report(as_server *s, const char *message, int code, const char *detail)
{
    as_error_context ctx;
    ctx.message = message;
    ctx.code = code;
    ctx.detail = detail;
    ctx.object = s;
    as_loop_call_exception_handler(s->loop, &ctx);
}

/* ------------------------------------------------------------ clients */

static void client_release(struct client *c)
{
    if (--c->refs == 0)
        free(c);
}

static void check_closed(as_server *s);

/* Take c off its server's list and drop what it holds.  Idempotent.  The
 * list's reference goes last: dropping the transport may close it, and a
 * closed loop then drops the closed callback (and its reference) at once. */
static void client_unlink(struct client *c, int notify)
{
    as_server *s = c->server;
    as_transport *t = c->transport;
    as_reader *r = c->reader;
    as_future *h = c->handler;

    if (!s)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->server = NULL;
    c->transport = NULL;
    c->reader = NULL;
    c->handler = NULL;
    s->nclients--;
    as_future_unref(h);
    as_reader_unref(r);
    as_transport_unref(t);
    if (notify)
        check_closed(s);
    client_release(c);
}

/* The transport is closed: the connection is gone. */
static void client_gone(as_future *closed, void *p)
{
    (void)as_future_error(closed); /* seen: an error here is the handler's business */
    client_unlink(p, 1);
}

/* The closed callback is done with the record: it ran, or it never will
 * (the loop closed first). */
static void client_callback_dropped(void *p)
{
    struct client *c = p;
    client_unlink(c, 1);
    client_release(c);
}

static void handler_done(as_future *h, void *p)
{
    as_transport *t = p;
    int err = as_future_error(h);

    /* Cancelled: silent, as in CPython 3.13.  Failed: reported once, and
     * the connection is closed so the client is not left hanging. */
    if (err != 0 && err != AS_ECANCELLED) {
        as_error_context ctx;
        ctx.message = "Unhandled exception in client_connected_cb";
        ctx.code = err;
        ctx.detail = as_future_error_message(h);
        ctx.object = t;
        as_loop_call_exception_handler(as_future_loop(h), &ctx);
    }
    if (err != 0)
        as_transport_close(t);
}

static void transport_unref_cb(void *p)
{
    as_transport_unref(p);
}

/* Make a connection of an accepted fd and hand it to the callback. */
static void new_client(as_server *s, int fd)
{
    as_reader *r = NULL;
    as_writer *w = NULL;
    as_transport *t = NULL;
    as_future *closed, *h;
    struct client *c;
    int err;

    if ((err = as_reader_new(s->loop, s->limit, &r)) < 0) {
        as__sock_close(fd);
        report(s, "cannot serve a new connection", err, NULL);
        return;
    }
    if ((err = as_socket_transport_new(s->loop, fd, r, &t)) < 0) {
        /* The transport closed the fd.  An fd too large for select() is an
         * episode like EMFILE: reported once until an accept succeeds. */
        if (err != AS_EFDSETSIZE || !s->fd_report_done)
            report(s, "accepted connection closed", err,
                   err == AS_EFDSETSIZE ? "its fd is too large for the loop's backend" : NULL);
        if (err == AS_EFDSETSIZE)
            s->fd_report_done = 1;
        as_reader_unref(r);
        return;
    }
    s->fd_report_done = 0;
    c = calloc(1, sizeof *c);
    closed = as_transport_closed(t);
    if (!c || !closed || (err = as_writer_new(t, r, &w)) < 0) {
        report(s, "cannot serve a new connection", c && closed ? err : -ENOMEM, NULL);
        free(c);
        as_future_unref(closed);
        as_transport_abort(t);
        as_transport_unref(t);
        as_reader_unref(r);
        return;
    }
    c->server = s;
    c->transport = t;
    c->reader = as_reader_ref(r);
    c->refs = 1;
    if (as_future_add_done_callback(closed, client_gone, c, client_callback_dropped) < 0) {
        as_future_unref(closed);
        as_transport_unref(c->transport);
        as_reader_unref(c->reader);
        free(c);
        as_writer_abort(w);
        as_writer_unref(w);
        as_reader_unref(r);
        report(s, "cannot serve a new connection", -ENOMEM, NULL);
        return;
    }
    as_future_unref(closed);
    c->refs++; /* the list's */
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    s->nclients++;

    /* The handler gets our references to r and w (server.h, rule 4). */
    h = s->cb(r, w, s->userdata);
    if (h) {
        /* The handler handed its reference over.  The record can be gone
         * already: a handler may close its connection with the loop closed. */
        if (c->server) {
            c->handler = h;
            h = as_future_ref(h);
        }
        if (as_future_add_done_callback(h, handler_done, as_transport_ref(t),
                                        transport_unref_cb) < 0)
            as_transport_unref(t);
        as_future_unref(h);
    }
}

/* ------------------------------------------------------------ accepting */

static void on_acceptable(void *p);

static int watch(struct listener *l)
{
    int err = as_loop_add_reader(l->server->loop, l->fd, on_acceptable, l, NULL);
    l->watching = err == 0;
    return err;
}

static void resume_accepting(void *p)
{
    struct listener *l = p;
    as_handle_unref(l->resume);
    l->resume = NULL;
    if (l->server->serving)
        watch(l);
}

/* No fd to accept into: stop watching the socket (it stays readable, so
 * retrying now would spin) and come back after a growing delay.  The delay
 * starts again from BACKOFF_FIRST after each accept that succeeds (an fd
 * was freed: more may follow soon).  The report is once per episode, and
 * the episode ends only when the accept queue is empty (EAGAIN): at the
 * limit with clients coming and going, every close lets one accept through
 * before the next EMFILE, and a report per served client would flood the
 * log just as surely as one per failed accept. */
static void back_off(struct listener *l, int err)
{
    as_server *s = l->server;

    if (!l->reported) {
        char detail[96];
        snprintf(detail, sizeof detail,
                 "not accepting for %.2f s, then retrying (up to every %.0f s) until it works",
                 BACKOFF_FIRST, BACKOFF_MAX);
        report(s, "accept() failed; pausing the listening socket", err, detail);
        l->reported = 1;
    }
    if (l->backoff == 0)
        l->backoff = BACKOFF_FIRST;
    else
        l->backoff = l->backoff * 2 > BACKOFF_MAX ? BACKOFF_MAX : l->backoff * 2;
    as_loop_remove_reader(s->loop, l->fd);
    l->watching = 0;
    if (as_loop_call_later(s->loop, l->backoff, resume_accepting, l, NULL, &l->resume) < 0)
        l->resume = NULL; /* cannot even schedule: retry at once next turn */
    if (!l->resume)
        watch(l);
}

static void on_acceptable(void *p)
{
    struct listener *l = p;
    as_server *s = l->server;
    int i;

    /* A handler may drop the last user reference or close the server. */
    as_server_ref(s);
    for (i = 0; i < s->backlog && s->serving; i++) {
        int fd = as__sock_accept(l->fd);
        if (fd >= 0) {
            l->backoff = 0;
            new_client(s, fd);
            continue;
        }
        if (fd == -EAGAIN || fd == -EWOULDBLOCK) {
            l->reported = 0; /* everyone waiting was accepted */
            break;
        }
        /* The peer gave up before we accepted: nothing to do. */
        if (as__sock_accept_error_is_transient(fd))
            continue;
        back_off(l, fd);
        break;
    }
    as_server_unref(s);
}

static int start_listening(as_server *s)
{
    size_t i;
    int err;

    if (!s->listening) {
        for (i = 0; i < s->nlisteners; i++)
            if ((err = as__sock_listen(s->listeners[i].fd, s->backlog)) < 0)
                return err;
        s->listening = 1;
    }
    if (!s->serving) {
        for (i = 0; i < s->nlisteners; i++) {
            struct listener *l = &s->listeners[i];
            if (!l->watching && !l->resume && (err = watch(l)) < 0)
                return err;
        }
        s->serving = 1;
    }
    return 0;
}

/* ------------------------------------------------------------ lifecycle */

static void check_closed(as_server *s)
{
    if (!s->closed || s->nclients > 0)
        return;
    if (s->shutdown_timer) {
        as_handle_cancel(s->shutdown_timer);
        as_handle_unref(s->shutdown_timer);
        s->shutdown_timer = NULL;
    }
    as__waiters_wake_all(&s->waiters, 0, NULL);
}

void as_server_close(as_server *s)
{
    size_t i;

    if (!s || s->closed)
        return;
    s->closed = 1;
    s->serving = 0;
    for (i = 0; i < s->nlisteners; i++) {
        struct listener *l = &s->listeners[i];
        as_loop_remove_reader(s->loop, l->fd);
        if (l->resume) {
            as_handle_cancel(l->resume);
            as_handle_unref(l->resume);
        }
        as__sock_close(l->fd);
    }
    free(s->listeners);
    s->listeners = NULL;
    s->nlisteners = 0;

    /* Remove our socket file, unless somebody replaced it since. */
    if (s->unix_path) {
        struct stat st;
        if (stat(s->unix_path, &st) == 0 && st.st_dev == s->unix_dev &&
            st.st_ino == s->unix_ino)
            unlink(s->unix_path);
        free(s->unix_path);
        s->unix_path = NULL;
    }
    if (s->serve_forever) {
        as_future *f = s->serve_forever;
        s->serve_forever = NULL;
        as_future_cancel(f, NULL);
        as_future_unref(f);
    }
    check_closed(s);
}

as_server *as_server_ref(as_server *s)
{
    if (s)
        s->refs++;
    return s;
}

void as_server_unref(as_server *s)
{
    struct client *c;
    as_loop *loop;

    if (!s || --s->refs > 0)
        return;
    as_server_close(s);
    as__waiters_free(&s->waiters, "server freed");
    /* Connections go on without us (rule 2), held by their handlers. */
    while ((c = s->clients))
        client_unlink(c, 0);
    if (s->shutdown_timer) {
        as_handle_cancel(s->shutdown_timer);
        as_handle_unref(s->shutdown_timer);
    }
    if (s->destroy)
        s->destroy(s->userdata);
    loop = s->loop;
    free(s);
    as__loop_obj_unref(loop);
}

static void server_destroy(void *p)
{
    as_server_unref(p);
}

as_loop *as_server_loop(const as_server *s)
{
    return s ? s->loop : NULL;
}

size_t as_server_nsockets(const as_server *s)
{
    return s ? s->nlisteners : 0;
}

int as_server_socket_fd(const as_server *s, size_t i)
{
    return s && i < s->nlisteners ? s->listeners[i].fd : AS_EINVAL;
}

int as_server_sockname(const as_server *s, size_t i,
                       struct sockaddr_storage *addr, socklen_t *len)
{
    if (!s || i >= s->nlisteners || !addr || !len)
        return AS_EINVAL;
    *len = sizeof *addr;
    if (getsockname(s->listeners[i].fd, (struct sockaddr *)addr, len) < 0)
        return -errno;
    return 0;
}

int as_server_port(const as_server *s, size_t i)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int err = as_server_sockname(s, i, &ss, &len);
    if (err < 0)
        return err;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return AS_EINVAL;
}

int as_server_is_serving(const as_server *s)
{
    return s && s->serving;
}

int as_server_is_closed(const as_server *s)
{
    return !s || s->closed;
}

size_t as_server_active_connections(const as_server *s)
{
    return s ? s->nclients : 0;
}

static void finish_now(void *p)
{
    as_future_set_result(p, NULL, NULL);
}

static void unref_future(void *p)
{
    as_future_unref(p);
}

as_future *as_server_start_serving(as_server *s)
{
    as_future *f;
    int err;

    if (!s)
        return NULL;
    if (s->closed)
        return as__future_failed(s->loop, AS_ESTATE, "server is closed");
    if ((err = start_listening(s)) < 0)
        return as__future_failed(s->loop, err, NULL);
    if (as_future_new(s->loop, &f) < 0)
        return NULL;
    /* Finish on the next turn, as CPython's `await sleep(0)`. */
    as_future_ref(f);
    if (as_loop_call_soon(s->loop, finish_now, f, unref_future, NULL) < 0) {
        as_future_unref(f);
        as_future_set_result(f, NULL, NULL);
    }
    return f;
}

static void serve_forever_done(as_future *f, void *p)
{
    as_server *s = p;
    /* Cancelled by the caller: close the server (close() itself cancels
     * this future, which is then no longer s->serve_forever). */
    if (as_future_cancelled(f) && s->serve_forever == f)
        as_server_close(s);
}

as_future *as_server_serve_forever(as_server *s)
{
    as_future *f;
    int err;

    if (!s)
        return NULL;
    if (s->serve_forever)
        return as__future_failed(s->loop, AS_ESTATE,
                      "server is already being awaited on serve_forever()");
    if (s->closed)
        return as__future_failed(s->loop, AS_ESTATE, "server is closed");
    if ((err = start_listening(s)) < 0)
        return as__future_failed(s->loop, err, NULL);
    if (as_future_new(s->loop, &f) < 0)
        return NULL;
    if (as_future_add_done_callback(f, serve_forever_done, as_server_ref(s),
                                    server_destroy) < 0) {
        as_server_unref(s);
        as_future_set_error(f, -ENOMEM, NULL);
        return f;
    }
    s->serve_forever = as_future_ref(f);
    return f;
}

/* A future that finishes once the server is closed with no connection
 * left: at once if it is so now. */
static as_future *add_waiter(as_server *s)
{
    as_future *f;

    if (!s->closed || s->nclients > 0) {
        f = as__waiters_add(&s->waiters, s->loop);
        return f ? f : as__future_failed(s->loop, -ENOMEM, NULL);
    }
    if (as_future_new(s->loop, &f) == 0)
        as_future_set_result(f, NULL, NULL);
    return f;
}

as_future *as_server_wait_closed(as_server *s)
{
    return s ? add_waiter(s) : NULL;
}

/* Each of these may unlink the client it acts on (a transport that closes
 * at once, with the loop closed, drops its record at once): take the next
 * one first. */
void as_server_close_clients(as_server *s)
{
    struct client *c, *next;
    for (c = s ? s->clients : NULL; c; c = next) {
        next = c->next;
        as_transport_close(c->transport);
    }
}

void as_server_abort_clients(as_server *s)
{
    struct client *c, *next;
    for (c = s ? s->clients : NULL; c; c = next) {
        next = c->next;
        as_transport_abort(c->transport);
    }
}

static void shutdown_deadline(void *p)
{
    as_server *s = p;
    as_handle_unref(s->shutdown_timer);
    s->shutdown_timer = NULL;
    as_server_abort_clients(s);
}

as_future *as_server_shutdown(as_server *s, double timeout)
{
    struct client *c, *next;
    as_future *f;

    if (!s)
        return NULL;
    if (isnan(timeout))
        return as__future_failed(s->loop, AS_EINVAL, "timeout is NaN");
    as_server_close(s);
    for (c = s->clients; c; c = next) {
        next = c->next;
        as_reader_feed_eof(c->reader);
        if (c->handler)
            as_future_cancel(c->handler, "server shutdown");
        as_transport_close(c->transport);
    }
    if (!(f = add_waiter(s)) || as_future_done(f))
        return f;
    if (timeout <= 0) {
        as_server_abort_clients(s);
    } else if (!s->shutdown_timer ||
               as_handle_when(s->shutdown_timer) > as_loop_time(s->loop) + timeout) {
        as_handle *h;
        if (as_loop_call_later(s->loop, timeout, shutdown_deadline, s, NULL, &h) < 0) {
            as_server_abort_clients(s); /* cannot wait: abort now */
        } else {
            if (s->shutdown_timer) {
                as_handle_cancel(s->shutdown_timer);
                as_handle_unref(s->shutdown_timer);
            }
            s->shutdown_timer = h;
        }
    }
    return f;
}

/* ------------------------------------------------------------ creating */

static as_server *server_new(as_loop *loop, as_client_connected_fn cb,
                             void *userdata, as_destroy_fn destroy,
                             const as_server_options *o)
{
    as_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->refs = 1;
    s->cb = cb;
    s->userdata = userdata;
    s->destroy = destroy;
    s->limit = o && o->limit > 0 ? o->limit : AS_READER_DEFAULT_LIMIT;
    s->backlog = o && o->backlog > 0 ? o->backlog : 100;
    as__loop_obj_ref(loop);
    return s;
}

static int add_listener(as_server *s, int fd)
{
    struct listener *ls = realloc(s->listeners, (s->nlisteners + 1) * sizeof *ls);
    size_t i;
    if (!ls)
        return -ENOMEM;
    s->listeners = ls;
    /* realloc may have moved the array: the watchers' userdata (none yet,
     * we are not serving) and the back pointers must follow. */
    for (i = 0; i < s->nlisteners; i++)
        ls[i].server = s;
    ls[s->nlisteners].server = s;
    ls[s->nlisteners].fd = fd;
    ls[s->nlisteners].watching = 0;
    ls[s->nlisteners].backoff = 0;
    ls[s->nlisteners].reported = 0;
    ls[s->nlisteners].resume = NULL;
    s->nlisteners++;
    return 0;
}

/* Fail `result` with err and message ("" for none); returns err. */
static int fail_start(as_future *result, int err, const char *message)
{
    as_future_set_error(result, err, message && *message ? message : NULL);
    return err;
}

/* One listening socket for sa (sock.c); on failure `result` fails.  One
 * too large for the loop's backend is refused by the loop when watching
 * starts (start_listening): it is the one place that knows the limit. */
static int listener_for(as_server *s, const struct sockaddr *sa, socklen_t len,
                        const as_server_options *o, as_future *result)
{
    as__sock_listen_opts lo;
    char msg[320];
    int fd, err;

    lo.reuse_address = !(o && o->reuse_address < 0);
    lo.reuse_port = o && o->reuse_port > 0;
    if ((fd = as__sock_listener(sa, len, &lo, msg, sizeof msg)) < 0)
        return fail_start(result, fd, msg);
    if ((err = add_listener(s, fd)) < 0) {
        as__sock_close(fd);
        if (sa->sa_family == AF_UNIX) /* bound, so the file is ours */
            unlink(((const struct sockaddr_un *)(const void *)sa)->sun_path);
        return fail_start(result, err, NULL);
    }
    return 0;
}

/* Bind one listening socket per address; on any failure, none. */
static int bind_all(as_server *s, const struct addrinfo *ai,
                    const as_server_options *o, as_future *result)
{
    int err;
    for (; ai; ai = ai->ai_next)
        if ((err = listener_for(s, ai->ai_addr, ai->ai_addrlen, o, result)) < 0)
            return err;
    return 0;
}

/* Bound: listen (unless told not to) and deliver the server. */
static void listen_and_deliver(as_server *s, const as_server_options *o,
                               as_future *result)
{
    /* With no_start, listen() waits for start_serving(), as in CPython. */
    int err = o && o->no_start ? 0 : start_listening(s);
    if (err < 0) {
        as_future_set_error(result, err, NULL);
        as_server_unref(s);
        return;
    }
    if (as_future_set_result(result, s, server_destroy) < 0)
        as_server_unref(s); /* cancelled meanwhile */
}

struct start_job {
    as_future *result;
    as_future *resolving;
    as_server *server;       /* holds the callback and its userdata */
    as_server_options opts;
    int has_opts;
};

static void start_job_free(void *p)
{
    struct start_job *j = p;
    if (j->server)
        as_server_unref(j->server); /* runs destroy(userdata) */
    as_future_unref(j->result);
    as_future_unref(j->resolving);
    free(j);
}

static void resolved(as_future *res, void *p)
{
    struct start_job *j = p;
    const as_server_options *o = j->has_opts ? &j->opts : NULL;
    int err = as_future_error(res);

    if (as_future_done(j->result))
        return; /* the caller cancelled start_server */
    if (err < 0) {
        as_future_set_error(j->result, err, as_future_error_message(res));
        return;
    }
    if (bind_all(j->server, as_future_result(res), o, j->result) < 0)
        return;
    listen_and_deliver(j->server, o, j->result);
    j->server = NULL; /* delivered, or freed on failure */
}

static void start_cancelled(as_future *result, void *p)
{
    as_future *resolving = p;
    if (as_future_cancelled(result))
        as_future_cancel(resolving, NULL);
}

/* A start call refused before the server exists: its future fails, and
 * the callback's userdata, which no server will hold, is let go at once
 * (lifetime rule 3: destroy runs before the failure is delivered).  A
 * NULL loop makes no future: the call failed and takes nothing. */
static as_future *refuse_start(as_loop *loop, int code, const char *message,
                               void *userdata, as_destroy_fn destroy)
{
    as_future *f = as__future_failed(loop, code, message);
    if (f && destroy)
        destroy(userdata);
    return f;
}

as_future *as_start_server(as_loop *loop, as_client_connected_fn cb,
                           void *userdata, as_destroy_fn destroy,
                           const char *host, const char *port,
                           const as_server_options *o)
{
    struct addrinfo hints;
    struct start_job *j;
    as_future *result;

    if (!loop || !cb || !port)
        return refuse_start(loop, AS_EINVAL,
                            "start_server needs a loop, a callback and a port",
                            userdata, destroy);
    if (o && (o->family != 0 && o->family != AF_INET && o->family != AF_INET6))
        return refuse_start(loop, AS_EINVAL, "family must be AF_INET, AF_INET6 or 0",
                            userdata, destroy);
    /* getaddrinfo() would wrap it; CPython's socket.bind() words it so. */
    if (as__sock_check_port(port) < 0)
        return refuse_start(loop, AS_EPORT, "bind(): port must be 0-65535.", userdata, destroy);
    if (as_future_new(loop, &result) < 0)
        return NULL;
    if (!(j = calloc(1, sizeof *j))) {
        as_future_unref(result);
        return NULL;
    }
    if (!(j->server = server_new(loop, cb, userdata, destroy, o))) {
        free(j);
        if (destroy)
            destroy(userdata);
        as_future_set_error(result, -ENOMEM, NULL);
        return result;
    }
    if (o) {
        j->opts = *o;
        j->has_opts = 1;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = o ? o->family : 0;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    j->resolving = as_getaddrinfo(loop, host && *host ? host : NULL, port, &hints);
    j->result = as_future_ref(result);
    if (!j->resolving ||
        as_future_add_done_callback(j->resolving, resolved, j, start_job_free) < 0) {
        start_job_free(j);
        as_future_set_error(result, -ENOMEM, NULL);
        return result;
    }
    /* Cancelling the start also cancels a resolution still under way. */
    if (as_future_add_done_callback(result, start_cancelled,
                                    as_future_ref(j->resolving), unref_future) < 0)
        as_future_unref(j->resolving);
    return result;
}

as_future *as_start_unix_server(as_loop *loop, as_client_connected_fn cb,
                                void *userdata, as_destroy_fn destroy,
                                const char *path, const as_server_options *o)
{
    struct sockaddr_un sun;
    struct stat st;
    as_future *result;
    as_server *s;
    const char *msg;
    int err;

    if (!loop || !cb || !path || !*path)
        return refuse_start(loop, AS_EINVAL,
                            "start_unix_server needs a loop, a callback and a path",
                            userdata, destroy);
    if ((err = as__sock_unix_addr(path, &sun, &msg)) < 0)
        return refuse_start(loop, err, msg, userdata, destroy);
    if (as_future_new(loop, &result) < 0)
        return NULL;

    /* A socket file nobody accepts on is left over from an earlier run:
     * remove it.  One in use, or any other kind of file, stays. */
    as__sock_unix_remove_stale(&sun);

    if (!(s = server_new(loop, cb, userdata, destroy, o))) {
        if (destroy)
            destroy(userdata);
        as_future_set_error(result, -ENOMEM, NULL);
        return result;
    }
    if (listener_for(s, (const struct sockaddr *)&sun, sizeof sun, o, result) < 0) {
        as_server_unref(s);
        return result;
    }
    if (!(o && o->keep_socket_file) && stat(path, &st) == 0) {
        s->unix_path = as__strdup(path);
        s->unix_dev = st.st_dev;
        s->unix_ino = st.st_ino;
    }
    listen_and_deliver(s, o, result);
    return result;
}
