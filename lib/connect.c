/*
 * connect.c - the connect state machine of connect.h.
 *
 * One `attempt` record lives from the call until the result future is done
 * and every callback that points at it has run; it is reference counted
 * because three things may hold it at once: the result future's done
 * callback (which notices cancellation), a resolver future's done callback,
 * and the fd watcher of a connect in progress.
 */
#include "connect.h"
#include "tls_internal.h"
#include "resolve.h"
#include "socket_transport.h"
#include "errors.h"
#include "internal.h"
#include "sock.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

typedef struct attempt {
    int refs;
    as_loop *loop;
    as_future *result;               /* what the caller holds */
    as_future *remote_res, *local_res; /* pending resolutions, or NULL */
    struct addrinfo *remote, *local; /* resolved lists */
    struct addrinfo *next;           /* next remote address to try */
    struct addrinfo *unix_ai;        /* open_unix_connection's one address */
    int fd;                          /* socket being connected, or -1 */
    int watching;                    /* a writer watcher is registered */
    struct sockaddr_storage cur;     /* address being tried */
    socklen_t cur_len;
    ssize_t limit;
    int first_code;                  /* the first connect error */
    int all_same;                    /* every error message identical */
    char *first_msg, *msgs;          /* first message; all of them joined */
    as_future *tls_cfg;              /* TLS: the configuration loading, or NULL */
} attempt;

/* ------------------------------------------------------------ helpers */

char *as_format_sockaddr(const struct sockaddr *sa, socklen_t len, char *buf,
                         size_t size)
{
    if (!sa || !buf) {
        if (buf && size > 0)
            buf[0] = '\0';
        return NULL;
    }
    return as__sock_format_addr(sa, len, buf, size);
}

void as_connection_free(as_connection *c)
{
    if (!c)
        return;
    as_writer_unref(c->writer);
    as_reader_unref(c->reader);
    free(c);
}

static void connection_destroy(void *p)
{
    as_connection_free(p);
}

static void attempt_unref(attempt *a)
{
    if (--a->refs > 0)
        return;
    as_future_unref(a->result);
    as_future_unref(a->remote_res);
    as_future_unref(a->local_res);
    if (a->tls_cfg) {
        (void)as_future_cancel(a->tls_cfg, NULL); /* not needed any more */
        as_future_unref(a->tls_cfg);
    }
    if (a->remote)
        freeaddrinfo(a->remote);
    if (a->local)
        freeaddrinfo(a->local);
    if (a->unix_ai) {
        free(a->unix_ai->ai_addr);
        free(a->unix_ai);
    }
    free(a->first_msg);
    free(a->msgs);
    free(a);
}

static void attempt_unref_cb(void *p)
{
    attempt_unref(p);
}

static void stop_watching(attempt *a)
{
    if (a->watching) {
        a->watching = 0;
        as_loop_remove_writer(a->loop, a->fd); /* its destroy drops a ref */
    }
}

static void close_socket(attempt *a)
{
    stop_watching(a);
    as__sock_close(a->fd);
    a->fd = -1;
}

/* Fail the result, unless it is already done (e.g. cancelled). */
static void fail_attempt(attempt *a, int code, const char *msg)
{
    close_socket(a);
    as__future_fail(a->result, code, msg);
}

/* Remember one address's failure for the final message. */
static void record(attempt *a, int code, const char *msg)
{
    size_t len;
    char *joined;
    if (!a->first_msg) {
        a->first_code = code;
        a->first_msg = as__strdup(msg);
        a->msgs = as__strdup(msg);
        a->all_same = 1;
        return;
    }
    if (!a->first_msg || strcmp(a->first_msg, msg) != 0)
        a->all_same = 0;
    if (!a->msgs)
        return;
    len = strlen(a->msgs) + 2 + strlen(msg) + 1;
    if ((joined = malloc(len)) != NULL) {
        snprintf(joined, len, "%s, %s", a->msgs, msg);
        free(a->msgs);
        a->msgs = joined;
    }
}

static void record_errno(attempt *a, int err, const char *what)
{
    char addr[160], msg[256];
    as_format_sockaddr((struct sockaddr *)&a->cur, a->cur_len, addr, sizeof addr);
    snprintf(msg, sizeof msg, "[Errno %d] %s %s", -err, what, addr);
    record(a, err, msg);
}

/* Every address failed: CPython's single or "Multiple exceptions" error. */
static void fail_all(attempt *a)
{
    if (!a->first_msg) {
        fail_attempt(a, a->first_code ? a->first_code : -ENOMEM, NULL);
    } else if (a->all_same || !a->msgs) {
        fail_attempt(a, a->first_code, a->first_msg);
    } else {
        size_t len = strlen(a->msgs) + 32;
        char *m = malloc(len);
        if (m)
            snprintf(m, len, "Multiple exceptions: %s", a->msgs);
        fail_attempt(a, a->first_code, m ? m : a->first_msg);
        free(m);
    }
}

/* ------------------------------------------------------------ success */

static void connected(attempt *a)
{
    as_reader *reader = NULL;
    as_transport *t = NULL;
    as_writer *w = NULL;
    as_connection *c;
    int fd = a->fd, err;

    stop_watching(a);
    a->fd = -1;
    if (as_future_done(a->result)) { /* cancelled meanwhile */
        as__sock_close(fd);
        return;
    }
    if (a->tls_cfg) { /* TLS: the result comes after the handshake (tls.c) */
        as_future *cfg = a->tls_cfg;
        a->tls_cfg = NULL;
        as__tls_client_connected(a->loop, fd, a->limit, cfg, a->result);
        as_future_unref(cfg);
        return;
    }
    if ((err = as_reader_new(a->loop, a->limit, &reader)) < 0) {
        as__sock_close(fd);
        fail_attempt(a, err, NULL);
        return;
    }
    if ((err = as_socket_transport_new(a->loop, fd, reader, &t)) < 0) { /* closes fd */
        as_reader_unref(reader);
        fail_attempt(a, err, NULL);
        return;
    }
    if ((err = as_writer_new(t, reader, &w)) < 0 || !(c = malloc(sizeof *c))) {
        if (w)
            as_writer_unref(w); /* drops its transport reference */
        as_transport_abort(t);
        as_transport_unref(t);
        as_reader_unref(reader);
        fail_attempt(a, err < 0 ? err : -ENOMEM, NULL);
        return;
    }
    as_transport_unref(t); /* the writer holds it now */
    c->reader = reader;
    c->writer = w;
    if (as_future_set_result(a->result, c, connection_destroy) < 0) {
        as_writer_close(w);
        as_connection_free(c);
    }
}

/* ------------------------------------------------------------ connecting */

static void try_next(attempt *a);

static void on_connect_writable(void *p)
{
    attempt *a = p;
    int err;

    if (as_future_done(a->result)) {
        close_socket(a);
        return;
    }
    if ((err = as__sock_connect_result(a->fd)) == 0) {
        connected(a);
        return;
    }
    if (err == -EINPROGRESS)
        return; /* spurious wake-up: keep waiting */
    record_errno(a, err, "Connect call failed");
    close_socket(a);
    try_next(a);
}

/* Bind to the first local address of the same family.  0 or an error that
 * stops this attempt (recorded). */
static int bind_local(attempt *a, int family)
{
    struct addrinfo *l;
    int err = 0;
    char msg[320];

    for (l = a->local; l; l = l->ai_next) {
        if (l->ai_family != family)
            continue;
        if ((err = as__sock_bind(a->fd, l->ai_addr, l->ai_addrlen, msg, sizeof msg)) == 0)
            return 0;
        record(a, err, msg);
    }
    if (!err) {
        snprintf(msg, sizeof msg, "no matching local address with family=%d found", family);
        record(a, -EADDRNOTAVAIL, msg);
        return -EADDRNOTAVAIL;
    }
    return err;
}

/* Try addresses from a->next on until one connects or waits. */
static void try_next(attempt *a)
{
    while (a->next) {
        struct addrinfo *ai = a->next;
        int fd, err, rc;

        a->next = ai->ai_next;
        memset(&a->cur, 0, sizeof a->cur);
        memcpy(&a->cur, ai->ai_addr, ai->ai_addrlen);
        a->cur_len = ai->ai_addrlen;

        if ((fd = as__sock_open(ai->ai_family, ai->ai_protocol)) < 0) {
            record_errno(a, fd, "Connect call failed");
            continue;
        }
        a->fd = fd;
        if (a->local && bind_local(a, ai->ai_family) < 0) {
            close_socket(a);
            continue;
        }
        rc = as__sock_connect(fd, ai->ai_addr, ai->ai_addrlen);
        if (rc == 0) {
            connected(a);
            return;
        }
        if (rc == -EINPROGRESS) {
            a->refs++;
            err = as_loop_add_writer(a->loop, fd, on_connect_writable, a, attempt_unref_cb);
            if (err < 0) {
                /* A socket too large for the loop's backend ends here, with
                 * AS_EFDSETSIZE, and so does the whole attempt: the next
                 * socket would be as large.  The loop is the one place that
                 * knows its limit, so it is found only now, with the SYN
                 * sent (the peer sees a connection opened and closed). */
                a->refs--;
                fail_attempt(a, err, NULL);
                return;
            }
            a->watching = 1;
            return;
        }
        record_errno(a, rc, "Connect call failed");
        close_socket(a);
    }
    fail_all(a);
}

/* ------------------------------------------------------------ resolving */

static void resolved(as_future *f, void *p)
{
    attempt *a = p;
    int err;
    (void)f;

    /* Done, or already connecting: both resolutions' callbacks may run. */
    if (as_future_done(a->result) || a->remote)
        return;
    /* Wait for both resolutions. */
    if ((a->remote_res && !as_future_done(a->remote_res)) ||
        (a->local_res && !as_future_done(a->local_res)))
        return;
    if (a->remote_res) {
        if ((err = as_future_error(a->remote_res)) != 0) {
            fail_attempt(a, err, as_future_error_message(a->remote_res));
            return;
        }
        a->remote = as_future_take_result(a->remote_res);
    }
    if (a->local_res) {
        if ((err = as_future_error(a->local_res)) != 0) {
            fail_attempt(a, err, as_future_error_message(a->local_res));
            return;
        }
        a->local = as_future_take_result(a->local_res);
    }
    a->next = a->remote;
    try_next(a);
}

/* The result future is done: if it was cancelled, stop everything. */
static void result_done(as_future *f, void *p)
{
    attempt *a = p;
    (void)f;
    close_socket(a);
    if (a->remote_res)
        (void)as_future_cancel(a->remote_res, NULL);
    if (a->local_res)
        (void)as_future_cancel(a->local_res, NULL);
    if (a->tls_cfg)
        (void)as_future_cancel(a->tls_cfg, NULL);
}

static attempt *attempt_new(as_loop *loop, const as_connect_options *opts)
{
    attempt *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    if (as_future_new(loop, &a->result) < 0) {
        free(a);
        return NULL;
    }
    a->refs = 1; /* the caller's, until it returns */
    a->loop = loop;
    a->fd = -1;
    a->limit = opts && opts->limit ? opts->limit : AS_READER_DEFAULT_LIMIT;
    a->refs++;
    if (as_future_add_done_callback(a->result, result_done, a, attempt_unref_cb) < 0) {
        as_future_unref(a->result);
        free(a);
        return NULL;
    }
    return a;
}

/* Return the result future and drop the call's own reference. */
static as_future *finish_call(attempt *a)
{
    as_future *f = as_future_ref(a->result);
    attempt_unref(a);
    return f;
}

static int resolve(attempt *a, const char *host, const char *port, int family,
                   as_future **out)
{
    struct addrinfo hints;
    as_future *f;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = family;
    hints.ai_socktype = SOCK_STREAM;
    if (!(f = as_getaddrinfo(a->loop, host, port, &hints)))
        return -ENOMEM;
    *out = f;
    a->refs++;
    if (as_future_add_done_callback(f, resolved, a, attempt_unref_cb) < 0) {
        a->refs--;
        return -ENOMEM;
    }
    return 0;
}

/* TLS: start loading the configuration (on a worker thread) while the
 * connection is made.  Bad options fail the attempt at once. */
static int load_tls(attempt *a, const as_tls_options *tls, const char *hostname)
{
    as_tls_options client = *tls;
    int err;
    client.server_side = 0;
    if (!(a->tls_cfg = as__tls_config_load(a->loop, &client, hostname))) {
        fail_attempt(a, -ENOMEM, NULL);
        return -ENOMEM;
    }
    if (as_future_done(a->tls_cfg) && (err = as_future_error(a->tls_cfg)) != 0) {
        fail_attempt(a, err, as_future_error_message(a->tls_cfg));
        return err;
    }
    return 0;
}

static as_future *open_tcp(as_loop *loop, const char *host, const char *port,
                           const as_connect_options *opts, const as_tls_options *tls)
{
    attempt *a;
    int err, family = opts ? opts->family : 0;

    if (!loop || !(a = attempt_new(loop, opts)))
        return NULL;
    if ((!host && !port) || (opts && opts->limit < 0) ||
        (family != 0 && family != AF_INET && family != AF_INET6)) {
        fail_attempt(a, AS_EINVAL, NULL);
        return finish_call(a);
    }
    /* Before resolving: getaddrinfo() would wrap the port.  The messages
     * are CPython's, from socket.connect() and socket.bind(). */
    if ((err = as__sock_check_port(port)) < 0) {
        fail_attempt(a, err, "connect(): port must be 0-65535.");
        return finish_call(a);
    }
    if (opts && (err = as__sock_check_port(opts->local_port)) < 0) {
        fail_attempt(a, err, "bind(): port must be 0-65535.");
        return finish_call(a);
    }
    if (tls && !host && !tls->server_hostname) {
        fail_attempt(a, AS_EINVAL, "You must set server_hostname when using ssl without a host");
        return finish_call(a);
    }
    if (tls && load_tls(a, tls, host) < 0)
        return finish_call(a);
    if ((err = resolve(a, host, port, family, &a->remote_res)) < 0 ||
        (opts && (opts->local_host || opts->local_port) &&
         (err = resolve(a, opts->local_host, opts->local_port, family,
                        &a->local_res)) < 0))
        fail_attempt(a, err, NULL);
    return finish_call(a);
}

as_future *as_open_connection(as_loop *loop, const char *host, const char *port,
                              const as_connect_options *opts)
{
    return open_tcp(loop, host, port, opts, NULL);
}

as_future *as_open_connection_tls(as_loop *loop, const char *host, const char *port,
                                  const as_connect_options *opts,
                                  const as_tls_options *tls)
{
    return open_tcp(loop, host, port, opts, tls);
}

static as_future *open_unix(as_loop *loop, const char *path,
                            const as_connect_options *opts, const as_tls_options *tls)
{
    attempt *a;
    struct sockaddr_un *un, sun;
    struct addrinfo *ai;
    const char *msg;
    int err;

    if (!loop || !(a = attempt_new(loop, opts)))
        return NULL;
    if (opts && opts->limit < 0) {
        fail_attempt(a, AS_EINVAL, NULL);
        return finish_call(a);
    }
    if ((err = as__sock_unix_addr(path, &sun, &msg)) < 0) {
        fail_attempt(a, err, msg);
        return finish_call(a);
    }
    if (tls && !tls->server_hostname) {
        fail_attempt(a, AS_EINVAL, "you have to pass server_hostname when using ssl");
        return finish_call(a);
    }
    if (tls && load_tls(a, tls, NULL) < 0)
        return finish_call(a);
    /* One hand-made address, so try_next() serves both calls.  It is not
     * getaddrinfo()'s, so attempt_unref() frees it by hand. */
    ai = calloc(1, sizeof *ai);
    un = calloc(1, sizeof *un);
    if (!ai || !un) {
        free(ai);
        free(un);
        fail_attempt(a, -ENOMEM, NULL);
        return finish_call(a);
    }
    *un = sun;
    ai->ai_family = AF_UNIX;
    ai->ai_socktype = SOCK_STREAM;
    ai->ai_addr = (struct sockaddr *)un;
    ai->ai_addrlen = sizeof *un;
    a->unix_ai = ai;
    a->next = ai;
    try_next(a);
    return finish_call(a);
}

as_future *as_open_unix_connection(as_loop *loop, const char *path,
                                   const as_connect_options *opts)
{
    return open_unix(loop, path, opts, NULL);
}

as_future *as_open_unix_connection_tls(as_loop *loop, const char *path,
                                       const as_connect_options *opts,
                                       const as_tls_options *tls)
{
    return open_unix(loop, path, opts, tls);
}
