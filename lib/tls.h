/*
 * tls.h - TLS: a transport layered over another transport.
 *
 * A TLS transport stands where a socket transport stands: the reader, the
 * writer, servers and connections use it through the same interface
 * (transport.h) and never know the bytes are encrypted.  Underneath, it
 * owns another transport (the "lower" one, normally a socket transport,
 * which keeps owning the fd and its place in the loop) and drives a TLS
 * *engine* purely in memory: ciphertext the lower transport receives is fed
 * in, ciphertext the engine produces is written to the lower transport,
 * plaintext goes to the application's reader.  No socket BIO, no blocking
 * call.  The engine is OpenSSL in C (tls_openssl.c); the interface at the
 * end of this file lets a binding bring its own (Python's ssl.SSLObject
 * over two MemoryBIOs, for instance).
 *
 * States (drawn in tutorial/tls-states.dot):
 *
 *   HANDSHAKING --handshake done--> OPEN --close()--> SHUTTING_DOWN
 *        |                            |                 | peer's close_notify,
 *        |                            |                 | or peer's EOF
 *        |                            |                 v
 *        +--error, timeout, close()---+--error---------> CLOSED
 *           (close() here aborts)     +--peer's close_notify or EOF:
 *                                        reader EOF, then our close_notify
 *                                        and CLOSED
 *
 *   - Writes made while HANDSHAKING are kept as plaintext and encrypted
 *     once the handshake is done, in order.
 *   - The peer's close_notify, or its EOF without one after the handshake,
 *     is EOF for the reader, after every byte already decrypted: CPython's
 *     SSLProtocol treats both the same way (a truncation is not an error
 *     for streams).  The connection then closes itself, as CPython's does;
 *     writes after that fail with AS_ECLOSED.  TLS cannot half-close:
 *     can_write_eof() is 0 and write_eof() returns AS_ESTATE, as CPython's
 *     SSL transport raises NotImplementedError.
 *   - close() sends close_notify after the queued plaintext and waits for
 *     the peer's, for at most the shutdown timeout; then the lower transport
 *     is closed (its queue flushed, for at most that long again).  abort()
 *     resets the lower transport at once.
 *
 * Errors (codes, and the messages CPython 3.13 gives, with OpenSSL's own
 * reason text):
 *   - AS_ECERT: verification failed, "[SSL: CERTIFICATE_VERIFY_FAILED]
 *     certificate verify failed: self-signed certificate" (or "unable to
 *     get local issuer certificate", "certificate has expired", "Hostname
 *     mismatch, certificate is not valid for 'name'.").
 *   - AS_ETLS: any other TLS failure, "[SSL: WRONG_VERSION_NUMBER] wrong
 *     version number" for a peer that does not speak TLS, "[SSL:
 *     TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required"
 *     for a peer's alert, and so on.
 *   - -ECONNABORTED "SSL handshake is taking longer than 60.0 seconds:
 *     aborting the connection": the handshake timeout (the fd is closed).
 *   - -ECONNRESET: the peer closed or reset the connection during the
 *     handshake; any error of the lower transport, passed on as it is.
 *   - AS_ETIMEOUT "SSL shutdown timed out": the peer did not answer our
 *     close_notify within the shutdown timeout; the connection is aborted.
 *   - AS_ENOTSUP "TLS is not supported in this build": every call below
 *     in a build without OpenSSL (configure --without-openssl), except
 *     as_tls_transport_new_engine(), which needs no OpenSSL.
 *   - AS_EINVAL: bad options (an unknown version, a server without a
 *     certificate...), with a message saying which.
 * An error is stored as the socket transport stores one (transport.h):
 * the reader's exception (after every byte decrypted before it: a read
 * that was waiting gets those bytes first, and as_reader_peek() shows what
 * is left), every later write's result, the closed future's error.  A
 * handshake error also fails the handshake future (and so
 * open_connection, start_tls).
 *
 * get_extra_info() keys (asyncio's, the values C-shaped), then the lower
 * transport's ("peername", "sockname", "fd") by delegation:
 *   "ssl_object"   AS_EXTRA_POINTER: the engine's object (OpenSSL: SSL *)
 *   "sslcontext"   AS_EXTRA_POINTER: its context (OpenSSL: SSL_CTX *)
 *   "peercert"     AS_EXTRA_STRING: the peer's certificate in PEM (the
 *                  DER, base64'd); AS_ENOKEY if the peer sent none
 *   "cipher"       AS_EXTRA_STRING: "TLS_AES_256_GCM_SHA384"
 *   "version"      AS_EXTRA_STRING: "TLSv1.3"
 *   "compression"  AS_EXTRA_STRING: the method, or AS_ENOKEY (None) when
 *                  there is none, as in every modern build
 *   "alpn_protocol" AS_EXTRA_STRING: the protocol ALPN selected, or AS_ENOKEY
 *   "server_hostname" AS_EXTRA_STRING: the SNI name (sent, or received by
 *                  a server), or AS_ENOKEY
 * The TLS keys are AS_ENOKEY until the handshake is done.  Strings live
 * as long as the transport.
 *
 * Backpressure runs through both layers.  The write buffer size is the
 * plaintext not yet encrypted plus the lower transport's buffer, and the
 * limits are set on both, so drain() waits while the socket cannot keep
 * up.  When the application's reader pauses the TLS transport (above 2 x
 * its limit), the lower transport is paused too, and the kernel's window
 * closes as it does without TLS; resuming decrypts what was kept first.
 *
 * Lifetimes (besides transport.h's):
 *   1. The TLS transport owns the lower transport it is made over (one
 *      reference, the caller's, handed over even when the call fails) and
 *      taps the lower transport's reader: nothing else may read from it.
 *   2. Options and their strings are copied: they need only live for the
 *      call.  Certificates and trust stores are read on a worker thread
 *      (design rule 9), so a TLS transport may wait for its configuration
 *      before the handshake starts; that wait counts towards the handshake
 *      timeout.
 *   3. An engine given to as_tls_transport_new_engine() belongs to the
 *      transport from the call on: ops->destroy(engine) runs when the
 *      transport is freed, or at once if the call fails.
 *
 * Threads: a TLS transport belongs to its loop's thread.
 *
 * Conventions (asyncstreams.h): a TLS transport is a transport, with
 * transport.h's conventions.  The calls here give the NULL answers listed
 * in asyncstreams.h: the open and start calls return NULL for a NULL loop
 * (the start calls without calling destroy), as_writer_start_tls() and
 * as_tls_handshake() NULL for a NULL writer or transport,
 * as_is_tls_transport(NULL) 0.  The two constructors have the one
 * constructor shape (*out NULL on failure) and take over what they are
 * given whatever they return (rules 1 and 3): a NULL reader gets
 * AS_EINVAL, and the lower transport is aborted and released.
 */
#ifndef AS_TLS_H
#define AS_TLS_H

#include <stddef.h>

#include "loop.h"
#include "future.h"
#include "reader.h"
#include "transport.h"
#include "writer.h"
#include "connect.h"
#include "server.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Protocol versions, as on the wire (for min_version / max_version). */
#define AS_TLS_VERSION_1_2 0x0303
#define AS_TLS_VERSION_1_3 0x0304

/** Certificate verification (CPython's ssl.CERT_*). */
enum as_tls_verify {
    AS_TLS_VERIFY_DEFAULT = 0, /**< clients: CERT_REQUIRED; servers: CERT_NONE */
    AS_TLS_CERT_NONE = 1,      /**< no check at all (clients: insecure) */
    AS_TLS_CERT_OPTIONAL = 2,  /**< servers: ask for a client certificate, check it if sent */
    AS_TLS_CERT_REQUIRED = 3   /**< the peer must send a valid certificate */
};

/** CPython 3.13's ssl_handshake_timeout and ssl_shutdown_timeout defaults. */
#define AS_TLS_HANDSHAKE_TIMEOUT 60.0
#define AS_TLS_SHUTDOWN_TIMEOUT 30.0

/**
 * TLS options (ssl= and its companions).  Zero-initialise and set what you
 * need: all zeros is asyncio's ssl=True for a client, that is
 * ssl.create_default_context(): the system's trust store, a certificate
 * required, its host name checked, TLS 1.2 at least.
 */
typedef struct as_tls_options {
    int server_side;             /**< 0: client, 1: server */
    int verify_mode;             /**< enum as_tls_verify */
    int no_check_hostname;       /**< clients: 1 verifies the chain but not the name
                                      (check_hostname = False) */
    const char *ca_file;         /**< trust these CAs (PEM) instead of the system's */
    const char *ca_path;         /**< or a folder of hashed CA files (c_rehash) */
    const char *server_hostname; /**< clients: SNI and the name checked; NULL = the
                                      host given to open_connection */
    const char *cert_file;       /**< our certificate chain (PEM): servers; clients
                                      for mutual TLS */
    const char *key_file;        /**< its private key (PEM); NULL = in cert_file */
    const char *alpn_protocols;  /**< ALPN, comma-separated in order of preference,
                                      e.g. "h2,http/1.1"; NULL = none */
    int min_version;             /**< 0 = TLS 1.2; or AS_TLS_VERSION_* */
    int max_version;             /**< 0 = the newest the engine has */
    double handshake_timeout;    /**< seconds; 0 = 60 */
    double shutdown_timeout;     /**< seconds; 0 = 30 */
} as_tls_options;

/** 1 if this build has a TLS engine (OpenSSL), else 0. */
int as_tls_available(void);

/**
 * open_connection(host, port, ssl=...): as as_open_connection(), then a
 * TLS handshake; the result (an as_connection) comes once the handshake is
 * done, as in CPython.  tls NULL is as_open_connection().  The name checked
 * and sent as SNI is tls->server_hostname, else host (an IP address is
 * checked against the certificate's IP entries and not sent as SNI).
 * Fails as as_open_connection() does, or with the errors at the top of
 * this file; AS_EINVAL "You must set server_hostname when using ssl
 * without a host" for a NULL host without server_hostname.
 */
as_future *as_open_connection_tls(as_loop *loop, const char *host, const char *port,
                                  const as_connect_options *opts,
                                  const as_tls_options *tls);

/**
 * open_unix_connection(path, ssl=...).  tls->server_hostname is needed
 * (AS_EINVAL "you have to pass server_hostname when using ssl", as CPython).
 */
as_future *as_open_unix_connection_tls(as_loop *loop, const char *path,
                                       const as_connect_options *opts,
                                       const as_tls_options *tls);

/**
 * start_server(..., ssl=...): as as_start_server(); each connection's
 * handshake runs before cb is called, which then gets a TLS reader and
 * writer.  A failed handshake is reported to the loop's exception handler
 * ("SSL handshake failed", the error as detail) and its connection closed;
 * cb never sees it.  tls->server_side is implied.  The certificate is
 * loaded before the server starts: a missing file fails the start future
 * (a negated errno, "[Errno 2] No such file or directory: 'path'"), a bad
 * one with AS_ETLS and OpenSSL's reason.  tls NULL is as_start_server().
 */
as_future *as_start_server_tls(as_loop *loop, as_client_connected_fn cb,
                               void *userdata, as_destroy_fn destroy,
                               const char *host, const char *port,
                               const as_server_options *opts,
                               const as_tls_options *tls);

/** start_unix_server(..., ssl=...): see as_start_server_tls(). */
as_future *as_start_unix_server_tls(as_loop *loop, as_client_connected_fn cb,
                                    void *userdata, as_destroy_fn destroy,
                                    const char *path,
                                    const as_server_options *opts,
                                    const as_tls_options *tls);

/**
 * StreamWriter.start_tls(): upgrade a live connection, on either side
 * (tls->server_side says which, so a start_server handler can do it too).
 * At once, and atomically: bytes the reader has buffered but nobody read
 * (a ClientHello that came with "STARTTLS\r\n") go to the TLS engine,
 * never to the application; the reader is fed by, and the writer writes
 * to, a new TLS transport over the old one.  Writes made before this call
 * go out first, as plaintext, in order; writes after it are encrypted once
 * the handshake is done.  A read that was waiting goes on waiting, for
 * plaintext.  Returns a future that finishes (NULL) when the handshake is
 * done, or fails with its error (the connection is then closed).  Fails
 * at once, leaving the connection as it was, with AS_EINVAL (a writer
 * without a reader),
 * AS_ESTATE (already TLS; or the reader is at EOF), AS_ECLOSED (closing),
 * the reader's stored exception, AS_ENOTSUP.  NULL for a NULL writer, or
 * if memory ran out.
 */
as_future *as_writer_start_tls(as_writer *w, const as_tls_options *tls);

/**
 * Make a TLS transport over `lower` (which it owns from now on, rule 1),
 * feeding `reader` with plaintext.  lower's own reader must be one nobody
 * else reads (the TLS transport takes the ciphertext from it, including
 * what it holds already).  The handshake starts at once, or once the
 * configuration is loaded.  Returns 0 and stores the transport in *out
 * (one reference, the caller's); AS_EINVAL (NULL arguments, bad options),
 * AS_ENOTSUP, -ENOMEM, with *out set to NULL.  On failure lower (if not
 * NULL) is aborted and released.
 */
int as_tls_transport_new(as_transport *lower, as_reader *reader,
                         const as_tls_options *tls, as_transport **out);

/** True if t is a TLS transport. */
int as_is_tls_transport(const as_transport *t);

/**
 * A future that finishes (NULL) when t's handshake is done, at once if it
 * already is, or fails with the handshake's error.  New reference; NULL
 * for a NULL t or on allocation failure, a future failed with AS_EINVAL
 * "not a TLS transport" if t is not TLS.
 */
as_future *as_tls_handshake(as_transport *t);

/* ------------------------------------------------------------ engines */

/** What an engine's steps return besides errors (negative codes). */
enum as_tls_step {
    AS_TLS_OK = 0,     /**< done (bytes were read, the handshake finished...) */
    AS_TLS_WANT = 1,   /**< needs more ciphertext from the peer first */
    AS_TLS_CLOSED = 2  /**< read: the peer sent close_notify */
};

/**
 * A TLS engine: a TLS session in memory, sans I/O.  The transport calls
 * these on the loop thread; an engine never blocks and never touches a fd.
 * Every call returning an int returns an enum as_tls_step or a negative
 * code, with error_message() describing the last failure.
 */
typedef struct as_tls_engine_ops {
    const char *name;  /**< "openssl" */
    /** Ciphertext from the peer: take all len bytes (0 or -ENOMEM). */
    int (*feed)(void *engine, const void *data, size_t len);
    /** Ciphertext to send: how many bytes are waiting, and where (*data). */
    size_t (*output)(void *engine, const void **data);
    /** The bytes output() showed have been taken: drop them. */
    void (*output_done)(void *engine);
    /** One handshake step: AS_TLS_OK once done, AS_TLS_WANT, or an error. */
    int (*handshake)(void *engine);
    /** Decrypt into buf (size cap > 0): OK with *got > 0, WANT, CLOSED, error. */
    int (*read)(void *engine, void *buf, size_t cap, size_t *got);
    /** Encrypt len > 0 bytes: OK with *done == len, or WANT with *done the
     *  part taken, or an error. */
    int (*write)(void *engine, const void *buf, size_t len, size_t *done);
    /** Send close_notify (once), then read until the peer's: OK when it has
     *  come, WANT until then, or an error. */
    int (*shutdown)(void *engine);
    /** The last error's message (valid until the next call). */
    const char *(*error_message)(void *engine);
    /** get_extra_info for the TLS keys above: 0, or AS_ENOKEY. */
    int (*extra_info)(void *engine, const char *key, as_extra_info *out);
    /** Free the engine. */
    void (*destroy)(void *engine);
} as_tls_engine_ops;

/**
 * as_tls_transport_new() with an engine of your own (rule 3).  Only the
 * timeouts of tls are used (tls may be NULL: the defaults).  Works in a
 * build without OpenSSL.  AS_EINVAL for a NULL lower, reader, ops or out
 * (engine destroyed, lower released), -ENOMEM; *out NULL on failure.
 */
int as_tls_transport_new_engine(as_transport *lower, as_reader *reader,
                                const as_tls_engine_ops *ops, void *engine,
                                const as_tls_options *tls, as_transport **out);

/**
 * as_writer_start_tls() with an engine of your own (rule 3: it is the
 * transport's, or destroyed, whatever the outcome): how a binding upgrades
 * a connection with its language's TLS (the Python binding's engine is an
 * ssl.SSLObject).  Only the timeouts of tls are used (NULL: the defaults);
 * the engine decides the side.  Works in a build without OpenSSL.  Fails
 * as as_writer_start_tls() does, and with AS_EINVAL for a NULL ops; NULL
 * for a NULL writer.
 */
as_future *as_writer_start_tls_engine(as_writer *w, const as_tls_engine_ops *ops,
                                      void *engine, const as_tls_options *tls);

#ifdef __cplusplus
}
#endif
#endif /* AS_TLS_H */
