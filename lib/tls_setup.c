/*
 * tls_setup.c - putting TLS where a connection is: the configuration
 * (options checked and copied on the loop thread, certificates read on a
 * worker), open_connection and start_server with ssl=..., and start_tls
 * on a live connection.  The transport itself is tls.c; tls.h has the
 * contracts.
 *
 * Everything here ends in as__tls_wrap(): a TLS transport over a socket
 * transport whose reader holds ciphertext, feeding the application's
 * reader.  What differs is only where the pieces come from: a new
 * connection (a fresh ciphertext reader), an accepted one (the server's
 * shared configuration), or a live one (start_tls re-plumbs it: the
 * socket transport gets a new ciphertext reader, with whatever the old
 * reader had buffered, and the writer gets the TLS transport).
 */
#include "tls_internal.h"
#include "errors.h"
#include "internal.h"
#include "socket_transport.h"
#include "sock.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ configuration */

as__tls_config *as__tls_config_ref(as__tls_config *c)
{
    c->refs++;
    return c;
}

void as__tls_config_unref(void *p)
{
    as__tls_config *c = p;
    if (!c)
        return;
    assert(c->refs > 0);
    if (--c->refs > 0)
        return;
    if (c->ctx)
        as__tls_openssl_free(c->ctx);
    free(c->strings);
    free(c);
}

static int valid_version(int v)
{
    return v == 0 || (v >= 0x0301 && v <= AS_TLS_VERSION_1_3);
}

/* CPython's ValueErrors, where it has one, and plain words where not. */
static const char *check_options(const as_tls_options *o, const char *hostname,
                                 char *buf, size_t size)
{
    if (!valid_version(o->min_version) || !valid_version(o->max_version))
        return "min_version and max_version must be 0 or AS_TLS_VERSION_1_2 or _1_3";
    if (o->max_version && o->min_version > o->max_version)
        return "min_version is above max_version";
    if (o->verify_mode < AS_TLS_VERIFY_DEFAULT || o->verify_mode > AS_TLS_CERT_REQUIRED)
        return "verify_mode must be one of enum as_tls_verify";
    if (isnan(o->handshake_timeout) || o->handshake_timeout < 0) {
        snprintf(buf, size, "ssl_handshake_timeout should be a positive number, got %g",
                 o->handshake_timeout);
        return buf;
    }
    if (isnan(o->shutdown_timeout) || o->shutdown_timeout < 0) {
        snprintf(buf, size, "ssl_shutdown_timeout should be a positive number, got %g",
                 o->shutdown_timeout);
        return buf;
    }
    if (o->key_file && !o->cert_file)
        return "key_file needs cert_file";
    if (o->server_side && !o->cert_file)
        return "a TLS server needs cert_file";
    if (!o->server_side && o->verify_mode != AS_TLS_CERT_NONE && !o->no_check_hostname &&
        (!hostname || !*hostname))
        return "check_hostname requires server_hostname";
    return NULL;
}

/* Copy o and its strings into one configuration. */
static as__tls_config *config_copy(const as_tls_options *o, const char *hostname)
{
    const char *src[6];
    const char **dst[6];
    size_t len = 0, i;
    as__tls_config *c = calloc(1, sizeof *c);
    char *p;

    if (!c)
        return NULL;
    c->refs = 1;
    c->o = *o;
    c->o.server_hostname = hostname;
    src[0] = c->o.ca_file;         dst[0] = &c->o.ca_file;
    src[1] = c->o.ca_path;         dst[1] = &c->o.ca_path;
    src[2] = c->o.server_hostname; dst[2] = &c->o.server_hostname;
    src[3] = c->o.cert_file;       dst[3] = &c->o.cert_file;
    src[4] = c->o.key_file;        dst[4] = &c->o.key_file;
    src[5] = c->o.alpn_protocols;  dst[5] = &c->o.alpn_protocols;
    for (i = 0; i < 6; i++)
        len += src[i] ? strlen(src[i]) + 1 : 0;
    if (!(p = c->strings = malloc(len ? len : 1))) {
        free(c);
        return NULL;
    }
    for (i = 0; i < 6; i++) {
        if (!src[i])
            continue;
        strcpy(p, src[i]);
        *dst[i] = p;
        p += strlen(p) + 1;
    }
    if (!c->o.min_version)
        c->o.min_version = AS_TLS_VERSION_1_2;
    if (c->o.verify_mode == AS_TLS_VERIFY_DEFAULT)
        c->o.verify_mode = c->o.server_side ? AS_TLS_CERT_NONE : AS_TLS_CERT_REQUIRED;
    if (c->o.handshake_timeout <= 0)
        c->o.handshake_timeout = AS_TLS_HANDSHAKE_TIMEOUT;
    if (c->o.shutdown_timeout <= 0)
        c->o.shutdown_timeout = AS_TLS_SHUTDOWN_TIMEOUT;
    return c;
}

static int build(void *arg, char *msg, size_t size)
{
    return as__tls_openssl_build(arg, msg, size);
}

as_future *as__tls_config_load(as_loop *loop, const as_tls_options *o,
                               const char *default_hostname)
{
    static const as_tls_options defaults;
    const char *hostname, *bad;
    as__tls_config *c;
    char buf[128];

    if (!loop)
        return NULL;
    if (!as__tls_openssl_available())
        return as__future_failed(loop, AS_ENOTSUP, NULL);
    if (!o)
        o = &defaults;
    hostname = o->server_hostname ? o->server_hostname : default_hostname;
    if ((bad = check_options(o, hostname, buf, sizeof buf)) != NULL)
        return as__future_failed(loop, AS_EINVAL, bad);
    if (!(c = config_copy(o, o->server_side ? NULL : hostname)))
        return as__future_failed(loop, -ENOMEM, NULL);
    return as__run_blocking(loop, build, c, as__tls_config_unref);
}

/* ------------------------------------------------------------ public making */

int as_tls_transport_new(as_transport *lower, as_reader *reader,
                         const as_tls_options *tls, as_transport **out)
{
    as_future *cfg;
    int err;

    if (out)
        *out = NULL;
    if (!lower || !reader || !out) {
        if (lower) {
            as_transport_abort(lower);
            as_transport_unref(lower);
        }
        return AS_EINVAL;
    }
    cfg = as__tls_config_load(as_transport_loop(lower), tls, NULL);
    err = !cfg ? -ENOMEM : as_future_done(cfg) ? as_future_error(cfg) : 0;
    if (err != 0) {
        as_future_unref(cfg);
        as_transport_abort(lower);
        as_transport_unref(lower);
        return err;
    }
    err = as__tls_wrap(lower, reader, NULL, cfg, out);
    as_future_unref(cfg);
    return err;
}

/* ------------------------------------------------------------ start_tls */

static as_future *start_tls_failed(as_writer *w, int code, const char *msg)
{
    return as__future_failed(as_writer_loop(w), code, msg);
}

/* start_tls's refusals, which leave the connection alone: 0 or a code with
 * its message in *msg. */
static int start_tls_check(as_writer *w, const char **msg)
{
    as_transport *lower = as_writer_transport(w);
    as_reader *reader = as_writer_reader(w);
    int err;

    *msg = NULL;
    if (!reader)
        return *msg = "start_tls needs the writer's reader", AS_EINVAL;
    if (as_is_tls_transport(lower))
        return *msg = "the connection already uses TLS", AS_ESTATE;
    if (as_transport_is_closing(lower))
        return AS_ECLOSED;
    if ((err = as_reader_exception(reader, msg)) != 0)
        return err;
    if (as_reader_feed_data(reader, "", 0) == AS_ESTATE)
        return *msg = "start_tls after the peer's EOF", AS_ESTATE;
    return 0;
}

/* Give the socket transport a new ciphertext reader holding what the
 * application's reader has buffered and nobody read: it came after the
 * plaintext the application read, so it is the start of the TLS stream
 * (pain point: a ClientHello sent with "STARTTLS\r\n" must not become
 * plaintext).  0 or a code, with the connection left as it was. */
static int start_tls_replumb(as_writer *w)
{
    as_transport *lower = as_writer_transport(w);
    as_reader *reader = as_writer_reader(w), *cipher;
    const unsigned char *data;
    size_t n;
    int err;

    if ((err = as_reader_new(as_writer_loop(w), (ssize_t)as_reader_limit(reader), &cipher)) < 0)
        return err;
    n = as_reader_peek(reader, &data);
    if (n > 0 && (err = as_reader_feed_data(cipher, data, n)) < 0) {
        as_reader_unref(cipher);
        return err;
    }
    as__reader_tap_consume(reader, n);
    as__transport_set_reader(lower, cipher);
    as_reader_unref(cipher); /* lower holds it */
    (void)as_transport_resume_reading(lower); /* the old reader may have paused it */
    return 0;
}

/* The writer now writes to t: the handshake future. */
static as_future *start_tls_switch(as_writer *w, as_transport *t)
{
    as_future *hs;
    as__writer_set_transport(w, t);
    hs = as_tls_handshake(t);
    as_transport_unref(t); /* the writer holds it */
    return hs;
}

as_future *as_writer_start_tls(as_writer *w, const as_tls_options *tls)
{
    as_transport *t;
    const char *msg;
    as_future *cfg;
    int err;

    if (!w)
        return NULL;
    if ((err = start_tls_check(w, &msg)) != 0)
        return start_tls_failed(w, err, msg);
    /* Bad options and a build without TLS leave the connection alone. */
    cfg = as__tls_config_load(as_writer_loop(w), tls, tls ? tls->server_hostname : NULL);
    if (!cfg)
        return NULL;
    if (as_future_done(cfg) && as_future_error(cfg) != 0)
        return cfg;
    if ((err = start_tls_replumb(w)) < 0) {
        as_future_cancel(cfg, NULL);
        as_future_unref(cfg);
        return start_tls_failed(w, err, NULL);
    }
    err = as__tls_wrap(as_transport_ref(as_writer_transport(w)), as_writer_reader(w), NULL, cfg,
                       &t);
    as_future_unref(cfg);
    if (err < 0)
        return start_tls_failed(w, err, NULL);
    return start_tls_switch(w, t);
}

as_future *as_writer_start_tls_engine(as_writer *w, const as_tls_engine_ops *ops,
                                      void *engine, const as_tls_options *tls)
{
    as_transport *t;
    const char *msg;
    int err;

    if (!w || !ops) {
        if (ops)
            ops->destroy(engine);
        return w ? start_tls_failed(w, AS_EINVAL, "start_tls needs an engine") : NULL;
    }
    if ((err = start_tls_check(w, &msg)) != 0 || (err = start_tls_replumb(w)) < 0) {
        ops->destroy(engine);
        return start_tls_failed(w, err, msg);
    }
    err = as_tls_transport_new_engine(as_transport_ref(as_writer_transport(w)),
                                      as_writer_reader(w), ops, engine, tls, &t);
    if (err < 0)
        return start_tls_failed(w, err, NULL);
    return start_tls_switch(w, t);
}

/* ------------------------------------------------------------ connections */

/* A client's connection, from connect until its handshake is done. */
struct client_hs {
    as_future *result;
    as_connection *conn;
};

static void client_hs_free(void *p)
{
    struct client_hs *j = p;
    if (j->conn) {
        as_writer_abort(j->conn->writer);
        as_connection_free(j->conn);
    }
    as_future_unref(j->result);
    free(j);
}

static void connection_free_cb(void *p)
{
    as_connection_free(p);
}

static void client_hs_done(as_future *hs, void *p)
{
    struct client_hs *j = p;
    int err = as_future_error(hs);
    if (as_future_done(j->result))
        return; /* cancelled: client_hs_free() aborts */
    if (err) {
        as__future_fail(j->result, err, as_future_error_message(hs));
        return;
    }
    if (as_future_set_result(j->result, j->conn, connection_free_cb) == 0)
        j->conn = NULL;
}

/* Cancelling open_connection during the handshake aborts it. */
static void client_result_done(as_future *result, void *p)
{
    if (as_future_cancelled(result))
        as_transport_abort(p);
}

static void transport_unref_cb(void *p)
{
    as_transport_unref(p);
}

/* A socket transport over fd, feeding a fresh ciphertext reader. */
static int lower_for(as_loop *loop, int fd, size_t limit, as_transport **out)
{
    as_reader *cipher;
    int err;
    if ((err = as_reader_new(loop, (ssize_t)limit, &cipher)) < 0) {
        as__sock_close(fd);
        return err;
    }
    err = as_socket_transport_new(loop, fd, cipher, out); /* closes fd on failure */
    as_reader_unref(cipher);
    return err;
}

void as__tls_client_connected(as_loop *loop, int fd, ssize_t limit,
                              as_future *cfg_wait, as_future *result)
{
    as_transport *lower, *t;
    struct client_hs *j;
    as_reader *app;
    as_writer *w = NULL;
    as_future *hs;
    int err;

    if ((err = lower_for(loop, fd, (size_t)limit, &lower)) < 0) {
        as__future_fail(result, err, NULL);
        return;
    }
    if ((err = as_reader_new(loop, limit, &app)) < 0) {
        as_transport_abort(lower);
        as_transport_unref(lower);
        as__future_fail(result, err, NULL);
        return;
    }
    if ((err = as__tls_wrap(lower, app, NULL, cfg_wait, &t)) < 0) {
        as_reader_unref(app);
        as__future_fail(result, err, NULL);
        return;
    }
    j = calloc(1, sizeof *j);
    if (!j || !(j->conn = malloc(sizeof *j->conn)) || (err = as_writer_new(t, app, &w)) < 0) {
        if (j)
            free(j->conn);
        free(j);
        as_transport_abort(t);
        as_transport_unref(t);
        as_reader_unref(app);
        as__future_fail(result, err < 0 ? err : -ENOMEM, NULL);
        return;
    }
    j->conn->reader = app;
    j->conn->writer = w;
    j->result = as_future_ref(result);
    hs = as_tls_handshake(t);
    if (!hs || as_future_add_done_callback(hs, client_hs_done, j, client_hs_free) < 0) {
        client_hs_free(j);
        as__future_fail(result, -ENOMEM, NULL);
    } else if (as_future_add_done_callback(result, client_result_done, as_transport_ref(t),
                                           transport_unref_cb) < 0) {
        as_transport_unref(t);
    }
    as_future_unref(hs);
    as_transport_unref(t); /* the writer holds it */
}

int as__tls_accept(as_loop *loop, int fd, as_reader *reader, as__tls_config *cfg,
                   as_transport **out)
{
    as_transport *lower;
    int err;
    if ((err = lower_for(loop, fd, as_reader_limit(reader), &lower)) < 0)
        return err;
    return as__tls_wrap(lower, reader, cfg, NULL, out);
}

/* ------------------------------------------------------------ servers */

/* start_server with TLS: load the configuration (a worker reads the
 * certificate), then start as without TLS, every connection sharing it.
 * The job is held by each callback that points at it. */
struct server_start {
    unsigned refs;
    as_loop *loop;
    as_client_connected_fn cb;
    void *userdata;
    as_destroy_fn destroy;     /* set while the userdata is still ours */
    char *host, *port, *path;  /* path: a Unix server */
    as_server_options opts;
    int has_opts;
    as_future *result;         /* the caller's */
    as_future *step;           /* loading, then starting */
};

static void server_start_unref(void *p)
{
    struct server_start *j = p;
    if (--j->refs > 0)
        return;
    if (j->destroy) /* never handed to a server (cancelled) */
        j->destroy(j->userdata);
    as_future_unref(j->result);
    as_future_unref(j->step);
    free(j->host);
    free(j->port);
    free(j->path);
    free(j);
}

static struct server_start *server_start_ref(struct server_start *j)
{
    j->refs++;
    return j;
}

static void server_started(as_future *f, void *p)
{
    struct server_start *j = p;
    /* Refused if the result was cancelled: the server then goes with f. */
    (void)as_future_transfer(j->result, f);
}

static void server_config_loaded(as_future *f, void *p)
{
    struct server_start *j = p;
    const as_server_options *o = j->has_opts ? &j->opts : NULL;
    as_destroy_fn destroy = j->destroy;
    int err = as_future_error(f);
    as_future *next;

    if (as_future_done(j->result))
        return; /* cancelled: the last unref runs destroy */
    j->destroy = NULL;
    if (err) {
        if (destroy)
            destroy(j->userdata); /* before the failure, as server.h says */
        as__future_fail(j->result, err, as_future_error_message(f));
        return;
    }
    /* The userdata is the server's from here, whatever happens. */
    next = j->path ? as__start_unix_server_cfg(j->loop, j->cb, j->userdata, destroy, j->path,
                                               o, as_future_result(f))
                   : as__start_server_cfg(j->loop, j->cb, j->userdata, destroy, j->host,
                                          j->port, o, as_future_result(f));
    if (!next) {
        as__future_fail(j->result, -ENOMEM, NULL);
        return;
    }
    as_future_unref(j->step);
    j->step = next;
    if (as_future_add_done_callback(next, server_started, server_start_ref(j),
                                    server_start_unref) < 0) {
        server_start_unref(j);
        as__future_fail(j->result, -ENOMEM, NULL);
    }
}

static void server_start_result_done(as_future *result, void *p)
{
    struct server_start *j = p;
    if (as_future_cancelled(result))
        (void)as_future_cancel(j->step, NULL);
}

static as_future *start_tls_server(as_loop *loop, as_client_connected_fn cb,
                                   void *userdata, as_destroy_fn destroy,
                                   const char *host, const char *port, const char *path,
                                   const as_server_options *opts, const as_tls_options *tls)
{
    as_tls_options server = *tls;
    struct server_start *j;
    as_future *result;

    server.server_side = 1;
    if (as_future_new(loop, &result) < 0)
        return NULL;
    if (!(j = calloc(1, sizeof *j)) || (host && !(j->host = as__strdup(host))) ||
        (port && !(j->port = as__strdup(port))) || (path && !(j->path = as__strdup(path)))) {
        if (j) {
            free(j->host);
            free(j->port);
            free(j);
        }
        as__future_fail(result, -ENOMEM, NULL);
        return result;
    }
    j->refs = 1; /* this call's */
    j->loop = loop;
    j->cb = cb;
    j->userdata = userdata;
    j->destroy = destroy;
    if (opts) {
        j->opts = *opts;
        j->has_opts = 1;
    }
    j->result = as_future_ref(result);
    j->step = as__tls_config_load(loop, &server, NULL);
    if (!j->step ||
        as_future_add_done_callback(j->step, server_config_loaded, server_start_ref(j),
                                    server_start_unref) < 0) {
        if (j->step)
            j->refs--;
        j->destroy = NULL;
        server_start_unref(j);
        as__future_fail(result, -ENOMEM, NULL);
        return result;
    }
    if (as_future_add_done_callback(result, server_start_result_done, server_start_ref(j),
                                    server_start_unref) < 0)
        j->refs--;
    server_start_unref(j);
    return result;
}

as_future *as_start_server_tls(as_loop *loop, as_client_connected_fn cb,
                               void *userdata, as_destroy_fn destroy,
                               const char *host, const char *port,
                               const as_server_options *opts,
                               const as_tls_options *tls)
{
    if (!tls || !loop || !cb || !port) /* the plain call's checks and errors */
        return as_start_server(loop, cb, userdata, destroy, host, port, opts);
    return start_tls_server(loop, cb, userdata, destroy, host, port, NULL, opts, tls);
}

as_future *as_start_unix_server_tls(as_loop *loop, as_client_connected_fn cb,
                                    void *userdata, as_destroy_fn destroy,
                                    const char *path, const as_server_options *opts,
                                    const as_tls_options *tls)
{
    if (!tls || !loop || !cb || !path || !*path)
        return as_start_unix_server(loop, cb, userdata, destroy, path, opts);
    return start_tls_server(loop, cb, userdata, destroy, NULL, NULL, path, opts, tls);
}
