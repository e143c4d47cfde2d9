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
#include "server_impl.h"
#include "errors.h"
#include "internal.h"
#include "resolve.h"
#include "sock.h"
#include "socket_transport.h"
#include "tls_internal.h"
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

/* Hand a new connection to the callback. */
static void call_handler(as_server *s, struct client *c, as_transport *t,
                         as_reader *r, as_writer *w)
{
    /* The handler gets our references to r and w (server.h, rule 4). */
    as_future *h = s->cb(r, w, s->userdata);
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

/* A TLS connection waits for its handshake before the callback sees it
 * (CPython calls connection_made() only then).  The record is held, not
 * the server: a server freed meanwhile closes such connections, since its
 * callback and userdata are gone. */
struct pending {
    struct client *c;
    as_reader *r;
    as_writer *w;
};

static void pending_free(void *p)
{
    struct pending *j = p;
    if (j->w) {
        as_writer_abort(j->w);
        as_writer_unref(j->w);
    }
    as_reader_unref(j->r);
    client_release(j->c);
    free(j);
}

static void handshake_done(as_future *hs, void *p)
{
    struct pending *j = p;
    struct client *c = j->c;
    int err = as_future_error(hs);
    as_reader *r = j->r;
    as_writer *w = j->w;

    if (err != 0) {
        /* CPython's SSLProtocol reports it and closes (done already). */
        as_error_context ctx;
        ctx.message = err == AS_ECERT ? "SSL handshake failed on verifying the certificate"
                                      : "SSL handshake failed";
        ctx.code = err;
        ctx.detail = as_future_error_message(hs);
        ctx.object = as_writer_transport(w);
        as_loop_call_exception_handler(as_future_loop(hs), &ctx);
        return;
    }
    if (!c->server)
        return; /* pending_free() closes it */
    j->r = NULL;
    j->w = NULL;
    call_handler(c->server, c, c->transport, r, w);
}

static void await_handshake(struct client *c, as_transport *t, as_reader *r, as_writer *w)
{
    struct pending *j = malloc(sizeof *j);
    as_future *hs = as_tls_handshake(t);

    if (!j || !hs) {
        free(j);
        as_future_unref(hs);
        report(c->server, "cannot serve a new connection", -ENOMEM, NULL);
        as_writer_abort(w);
        as_writer_unref(w);
        as_reader_unref(r);
        return;
    }
    c->refs++;
    j->c = c;
    j->r = r;
    j->w = w;
    if (as_future_add_done_callback(hs, handshake_done, j, pending_free) < 0)
        pending_free(j);
    as_future_unref(hs);
}

/* Make a connection of an accepted fd and hand it to the callback. */
static void new_client(as_server *s, int fd)
{
    as_reader *r = NULL;
    as_writer *w = NULL;
    as_transport *t = NULL;
    as_future *closed;
    struct client *c;
    int err;

    if ((err = as_reader_new(s->loop, s->limit, &r)) < 0) {
        as__sock_close(fd);
        report(s, "cannot serve a new connection", err, NULL);
        return;
    }
    err = s->tls ? as__tls_accept(s->loop, fd, r, s->tls, &t)
                 : as_socket_transport_new(s->loop, fd, r, &t);
    if (err < 0) {
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

    if (s->tls)
        await_handshake(c, t, r, w);
    else
        call_handler(s, c, t, r, w);
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

int as__server_start_listening(as_server *s)
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
    as__tls_config_unref(s->tls);
    loop = s->loop;
    free(s);
    as__loop_obj_unref(loop);
}

void as__server_destroy(void *p)
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
    if ((err = as__server_start_listening(s)) < 0)
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
    if ((err = as__server_start_listening(s)) < 0)
        return as__future_failed(s->loop, err, NULL);
    if (as_future_new(s->loop, &f) < 0)
        return NULL;
    if (as_future_add_done_callback(f, serve_forever_done, as_server_ref(s),
                                    as__server_destroy) < 0) {
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

