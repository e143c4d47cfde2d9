/*
 * tls_internal.h - what tls.c, tls_openssl.c, connect.c and server.c share
 * about TLS.  Not installed.
 *
 * A configuration is the options, copied, plus the engine's context (an
 * SSL_CTX for OpenSSL) once it has been built.  Building it reads files
 * (certificates, the trust store), so as__tls_config_load() does it on a
 * worker thread (design rule 9) and delivers the configuration as a
 * future's result.  A server builds one and shares it with every
 * connection; a client builds one per connection, as asyncio's ssl=True
 * makes a default context per call.
 *
 * The configuration's reference count is touched on the loop thread only
 * (before delivery, only the worker's job holds it).
 */
#ifndef AS_TLS_INTERNAL_H
#define AS_TLS_INTERNAL_H

#include "tls.h"

typedef struct as__tls_config {
    unsigned refs;
    as_tls_options o;  /* normalised: timeouts and versions filled in */
    char *strings;     /* one block holding every string o points to */
    void *ctx;         /* the engine's shared context, once built */
} as__tls_config;

/*
 * Check o (AS_EINVAL with a message for what is wrong), copy it, and build
 * the context on a worker thread.  default_hostname (open_connection's
 * host) is used when o->server_hostname is NULL.  Returns a future whose
 * result is the as__tls_config (freed with the future unless taken: take
 * it, or as__tls_config_ref() it); NULL only on allocation failure.
 */
as_future *as__tls_config_load(as_loop *loop, const as_tls_options *o,
                               const char *default_hostname);
as__tls_config *as__tls_config_ref(as__tls_config *c);
void as__tls_config_unref(void *c);

/*
 * The TLS transport over lower (owned from the call on, even on failure),
 * its engine made from cfg, or from the configuration cfg_wait delivers
 * (then cfg is NULL; its failure fails the handshake).  0, or a code.
 */
int as__tls_wrap(as_transport *lower, as_reader *reader, as__tls_config *cfg,
                 as_future *cfg_wait, as_transport **out);

/*
 * For connect.c: fd has connected; wrap it (a socket transport feeding a
 * ciphertext reader, a TLS transport feeding a new reader of `limit`, a
 * writer) and finish `result` with the as_connection once the handshake is
 * done, or with its error.  Owns fd from the call on.  Cancelling result
 * aborts the handshake.
 */
void as__tls_client_connected(as_loop *loop, int fd, ssize_t limit,
                              as_future *cfg_wait, as_future *result);

/*
 * For server.c: the TLS transport over an accepted fd (owned from the call
 * on), feeding reader; the handshake starts at once.  0 or a code.
 */
int as__tls_accept(as_loop *loop, int fd, as_reader *reader,
                   as__tls_config *cfg, as_transport **out);

/*
 * server.c's start calls with a configuration every connection shares
 * (NULL: no TLS); tls.c loads it first for the public *_tls calls.
 */
as_future *as__start_server_cfg(as_loop *loop, as_client_connected_fn cb,
                                void *userdata, as_destroy_fn destroy,
                                const char *host, const char *port,
                                const as_server_options *o, as__tls_config *tls);
as_future *as__start_unix_server_cfg(as_loop *loop, as_client_connected_fn cb,
                                     void *userdata, as_destroy_fn destroy,
                                     const char *path, const as_server_options *o,
                                     as__tls_config *tls);

/* ------------------------------------------------ the OpenSSL engine
 * tls_openssl.c; in a build without OpenSSL each returns AS_ENOTSUP. */

/* Build c->ctx from c->o; runs on a worker thread.  0, or a code with
 * its message in msg. */
int as__tls_openssl_build(as__tls_config *c, char *msg, size_t size);
void as__tls_openssl_free(void *ctx);
/* A new engine (a session) on c's context. */
int as__tls_openssl_engine(const as__tls_config *c,
                           const as_tls_engine_ops **ops, void **engine,
                           char *msg, size_t size);
int as__tls_openssl_available(void);

#endif /* AS_TLS_INTERNAL_H */
