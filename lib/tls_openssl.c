/*
 * tls_openssl.c - OpenSSL as the TLS engine (tls.h's engine interface),
 * and the contexts it runs on.
 *
 * Each session is an SSL object between two memory BIOs: `in` holds
 * ciphertext that came from the peer, `out` ciphertext for the peer.  The
 * SSL never sees a socket, so SSL_do_handshake(), SSL_read() and
 * SSL_write() never block: when `in` runs dry they fail with
 * SSL_ERROR_WANT_READ, which is the engine's AS_TLS_WANT, and the
 * transport feeds more when it has some.  `out` is a growing memory
 * buffer, so OpenSSL never wants to write: whatever it produced is handed
 * to the lower transport after each step, which queues what the kernel
 * does not take (and counts it for backpressure).
 *
 * Errors come back as CPython words them: "[LIB: MNEMONIC] reason", the
 * mnemonic being OpenSSL's reason text upper-cased (it is, for every
 * reason a TLS connection meets), and a verification failure gets the
 * verifier's own text, as CPython's SSLCertVerificationError does.
 *
 * Without OpenSSL (configure --without-openssl) only the stubs at the end
 * are compiled, and each says AS_ENOTSUP (tests/check_tls_api.c checks
 * what a user then sees).
 */
#include "config.h"
#include "tls_internal.h"
#include "errors.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#ifdef HAVE_OPENSSL

#include <arpa/inet.h>
#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

int as__tls_openssl_available(void)
{
    return 1;
}

/* ------------------------------------------------------------ messages */

static const char *lib_name(unsigned long e)
{
    switch (ERR_GET_LIB(e)) {
    case ERR_LIB_SSL: return "SSL";
    case ERR_LIB_X509: return "X509";
    case ERR_LIB_X509V3: return "X509V3";
    case ERR_LIB_PEM: return "PEM";
    case ERR_LIB_EVP: return "EVP";
    case ERR_LIB_ASN1: return "ASN1";
    case ERR_LIB_SYS: return "SYS";
    default: return "SSL";
    }
}

/* "[SSL: WRONG_VERSION_NUMBER] wrong version number" for error e. */
static void format_error(unsigned long e, char *msg, size_t size)
{
    const char *reason = ERR_reason_error_string(e);
    char mnemonic[96];
    size_t i;

    if (!reason) {
        snprintf(msg, size, "[%s] unknown error (0x%lx)", lib_name(e), e);
        return;
    }
    for (i = 0; reason[i] && i + 1 < sizeof mnemonic; i++)
        mnemonic[i] = reason[i] == ' ' ? '_' : (char)toupper((unsigned char)reason[i]);
    mnemonic[i] = '\0';
    snprintf(msg, size, "[%s: %s] %s", lib_name(e), mnemonic, reason);
}

/* The error OpenSSL queued, as a code and a message.  The queue is
 * per-thread, and emptied here so the next call starts clean. */
static int queued_error(char *msg, size_t size, const char *fallback)
{
    unsigned long e = ERR_peek_error();
    if (!e) {
        snprintf(msg, size, "%s", fallback);
        return AS_ETLS;
    }
    /* The first error is the cause; later ones only add context. */
    format_error(e, msg, size);
    ERR_clear_error();
    return AS_ETLS;
}

/* A file the context needs: a missing or unreadable one is an OSError,
 * as CPython raises for load_cert_chain() or load_verify_locations(). */
static int check_file(const char *path, char *msg, size_t size)
{
    FILE *f = fopen(path, "r");
    int err = errno;
    if (f) {
        fclose(f);
        return 0;
    }
    snprintf(msg, size, "[Errno %d] %s: '%s'", err, as_strerror(-err), path);
    return -err;
}

/* ------------------------------------------------------------ ALPN */

/* The server's protocols, in wire format, belong to its SSL_CTX (ex_data
 * freed with it): sessions may outlive the server that made the context. */
static int alpn_index = -1;
static pthread_once_t alpn_once = PTHREAD_ONCE_INIT;

static void alpn_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx,
                      long argl, void *argp)
{
    (void)parent; (void)ad; (void)idx; (void)argl; (void)argp;
    free(ptr);
}

static void alpn_init(void)
{
    alpn_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, alpn_free);
}

/* "h2,http/1.1" -> "\x02h2\x08http/1.1".  0, or AS_EINVAL for an empty
 * or over-long name. */
static int alpn_wire(const char *list, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(list), pos = 0;
    unsigned char *w = malloc(n + 1);
    const char *p = list;

    if (!w)
        return -ENOMEM;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > 255) {
            free(w);
            return AS_EINVAL;
        }
        w[pos++] = (unsigned char)len;
        memcpy(w + pos, p, len);
        pos += len;
        p += len + (comma ? 1 : 0);
        if (comma && !*p) {
            free(w);
            return AS_EINVAL; /* a trailing comma: an empty name */
        }
    }
    *out = w;
    *outlen = pos;
    return 0;
}

/* The server picks the first of its protocols the client offers (as
 * CPython's server does); none in common: go on without ALPN. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    const unsigned char *ours = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), alpn_index);
    unsigned char *chosen;
    (void)arg;
    if (!ours)
        return SSL_TLSEXT_ERR_NOACK;
    if (SSL_select_next_proto(&chosen, outlen, ours + 1, ours[0], in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_NOACK;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

/* The client's list goes to OpenSSL as is; the server's is kept, with
 * its length in front (it is at most a few hundred bytes, and
 * SSL_select_next_proto() wants it with the length separately). */
static int set_alpn(SSL_CTX *ctx, const as_tls_options *o, char *msg, size_t size)
{
    unsigned char *wire, *kept;
    size_t len;
    int err;

    if (!o->alpn_protocols || !*o->alpn_protocols)
        return 0;
    if ((err = alpn_wire(o->alpn_protocols, &wire, &len)) < 0) {
        snprintf(msg, size, "alpn_protocols: each protocol must be 1 to 255 bytes");
        return err;
    }
    if (!o->server_side) {
        err = SSL_CTX_set_alpn_protos(ctx, wire, (unsigned)len) == 0
                  ? 0 : queued_error(msg, size, "cannot set the ALPN protocols");
        free(wire);
        return err;
    }
    pthread_once(&alpn_once, alpn_init);
    if (len > 255 || alpn_index < 0 || !(kept = malloc(len + 1))) {
        free(wire);
        snprintf(msg, size, "alpn_protocols: too long for a server (255 bytes)");
        return AS_EINVAL;
    }
    kept[0] = (unsigned char)len;
    memcpy(kept + 1, wire, len);
    free(wire);
    if (!SSL_CTX_set_ex_data(ctx, alpn_index, kept)) {
        free(kept);
        return -ENOMEM;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    return 0;
}

/* ------------------------------------------------------------ contexts */

static int set_trust(SSL_CTX *ctx, const as_tls_options *o, int verifying,
                     char *msg, size_t size)
{
    int err;
    if (o->ca_file && (err = check_file(o->ca_file, msg, size)) < 0)
        return err;
    if (o->ca_file || o->ca_path) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, o->ca_path) != 1)
            return queued_error(msg, size, "cannot load the CA file or folder");
        /* A server asking for client certificates names the CAs it takes. */
        if (o->server_side && verifying && o->ca_file) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(o->ca_file);
            if (names)
                SSL_CTX_set_client_CA_list(ctx, names);
            ERR_clear_error();
        }
    } else if (verifying && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        return queued_error(msg, size, "cannot load the system's trust store");
    }
    return 0;
}

static int set_certificate(SSL_CTX *ctx, const as_tls_options *o, char *msg,
                           size_t size)
{
    const char *key = o->key_file ? o->key_file : o->cert_file;
    int err;
    if (!o->cert_file)
        return 0;
    if ((err = check_file(o->cert_file, msg, size)) < 0 ||
        (err = check_file(key, msg, size)) < 0)
        return err;
    if (SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        return queued_error(msg, size, "cannot load the certificate chain");
    return 0;
}

/*
 * ssl.create_default_context(), CPython 3.13, for the purpose the side
 * implies: TLS 1.2 at least, no compression, no renegotiation, strict and
 * partial-chain verification; then the options' certificate, trust and
 * ALPN.  Runs on a worker thread: it reads files.
 */
static int build_context(as__tls_config *c, char *msg, size_t size)
{
    const as_tls_options *o = &c->o;
    SSL_CTX *ctx;
    int mode, verifying, err;

    ERR_clear_error();
    ctx = SSL_CTX_new(o->server_side ? TLS_server_method() : TLS_client_method());
    if (!ctx)
        return queued_error(msg, size, "cannot make an SSL context");
    verifying = o->verify_mode != AS_TLS_CERT_NONE;
    mode = !verifying ? SSL_VERIFY_NONE
           : o->verify_mode == AS_TLS_CERT_REQUIRED && o->server_side
               ? SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT
               : SSL_VERIFY_PEER;
    SSL_CTX_set_verify(ctx, mode, NULL);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 (o->server_side ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    /* A write may be retried from another place in memory (the
     * transport's plaintext queue moves), and idle sessions give their
     * buffers back. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
    X509_VERIFY_PARAM_set_flags(SSL_CTX_get0_param(ctx),
                                X509_V_FLAG_PARTIAL_CHAIN | X509_V_FLAG_X509_STRICT);
    if (SSL_CTX_set_min_proto_version(ctx, o->min_version) != 1 ||
        (o->max_version && SSL_CTX_set_max_proto_version(ctx, o->max_version) != 1)) {
        err = queued_error(msg, size, "unsupported protocol version");
        goto fail;
    }
    if ((err = set_trust(ctx, o, verifying, msg, size)) < 0 ||
        (err = set_certificate(ctx, o, msg, size)) < 0 ||
        (err = set_alpn(ctx, o, msg, size)) < 0)
        goto fail;
    c->ctx = ctx;
    return 0;
fail:
    SSL_CTX_free(ctx);
    ERR_clear_error();
    return err;
}

/* On the worker thread (tls_setup.c).  OpenSSL keeps state per thread (its
 * random generators, the error queue) and frees it when the thread ends;
 * nobody waits for a worker to end, so a program exiting at that moment
 * would leave it behind.  It is released here, with the outcome (and its
 * message) already made. */
int as__tls_openssl_build(as__tls_config *c, char *msg, size_t size)
{
    int err = build_context(c, msg, size);
    OPENSSL_thread_stop();
    return err;
}

void as__tls_openssl_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

/* ------------------------------------------------------------ the engine */

typedef struct ossl_engine {
    SSL *ssl;
    BIO *in, *out;      /* ciphertext from the peer, for the peer */
    char *hostname;     /* the name checked, for the mismatch message */
    char *peer_pem;     /* "peercert", made when first asked for */
    char alpn[256];     /* "alpn_protocol", NUL-terminated */
    char msg[512];
} ossl_engine;

/* The outcome of an SSL call that returned rc. */
static int step_result(ossl_engine *e, int rc)
{
    unsigned long first;
    long verify;

    switch (SSL_get_error(e->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        return AS_TLS_WANT;
    case SSL_ERROR_ZERO_RETURN:
        return AS_TLS_CLOSED;
    default:
        break;
    }
    first = ERR_peek_error();
    if (ERR_GET_LIB(first) == ERR_LIB_SSL &&
        ERR_GET_REASON(first) == SSL_R_CERTIFICATE_VERIFY_FAILED &&
        (verify = SSL_get_verify_result(e->ssl)) != X509_V_OK) {
        char why[256];
        if (verify == X509_V_ERR_HOSTNAME_MISMATCH)
            snprintf(why, sizeof why, "Hostname mismatch, certificate is not valid for '%s'.",
                     e->hostname ? e->hostname : "");
        else if (verify == X509_V_ERR_IP_ADDRESS_MISMATCH)
            snprintf(why, sizeof why, "IP address mismatch, certificate is not valid for '%s'.",
                     e->hostname ? e->hostname : "");
        else
            snprintf(why, sizeof why, "%s", X509_verify_cert_error_string(verify));
        snprintf(e->msg, sizeof e->msg,
                 "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: %s", why);
        ERR_clear_error();
        return AS_ECERT;
    }
    return queued_error(e->msg, sizeof e->msg, "TLS engine error");
}

static int ossl_feed(void *p, const void *data, size_t len)
{
    ossl_engine *e = p;
    const unsigned char *d = data;
    while (len > 0) {
        int n = len > INT_MAX ? INT_MAX : (int)len;
        if (BIO_write(e->in, d, n) != n) {
            ERR_clear_error();
            return -ENOMEM;
        }
        d += n;
        len -= (size_t)n;
    }
    return 0;
}

static size_t ossl_output(void *p, const void **data)
{
    ossl_engine *e = p;
    char *ptr = NULL;
    long n = BIO_get_mem_data(e->out, &ptr);
    *data = ptr;
    return n > 0 ? (size_t)n : 0;
}

static void ossl_output_done(void *p)
{
    ossl_engine *e = p;
    (void)BIO_reset(e->out); /* a memory BIO keeps its storage */
}

static int ossl_handshake(void *p)
{
    ossl_engine *e = p;
    int rc;
    ERR_clear_error();
    rc = SSL_do_handshake(e->ssl);
    return rc == 1 ? AS_TLS_OK : step_result(e, rc);
}

static int ossl_read(void *p, void *buf, size_t cap, size_t *got)
{
    ossl_engine *e = p;
    ERR_clear_error();
    if (SSL_read_ex(e->ssl, buf, cap, got) == 1)
        return AS_TLS_OK;
    *got = 0;
    return step_result(e, 0);
}

static int ossl_write(void *p, const void *buf, size_t len, size_t *done)
{
    ossl_engine *e = p;
    ERR_clear_error();
    if (SSL_write_ex(e->ssl, buf, len, done) == 1)
        return AS_TLS_OK;
    *done = 0;
    return step_result(e, 0);
}

/* Our close_notify once, then read (dropping any data: the application
 * closed) until the peer's.  SSL_shutdown() is called only once: a second
 * call would try to read the peer's alert itself and fail on application
 * data still in flight. */
static int ossl_shutdown(void *p)
{
    ossl_engine *e = p;
    unsigned char sink[4096];
    size_t got;
    int rc;

    ERR_clear_error();
    if (!(SSL_get_shutdown(e->ssl) & SSL_SENT_SHUTDOWN)) {
        rc = SSL_shutdown(e->ssl);
        if (rc == 1)
            return AS_TLS_OK;
        if (rc < 0 && (rc = step_result(e, rc)) < 0)
            return rc;
    }
    if (SSL_get_shutdown(e->ssl) & SSL_RECEIVED_SHUTDOWN)
        return AS_TLS_OK;
    for (;;) {
        if (SSL_read_ex(e->ssl, sink, sizeof sink, &got) == 1)
            continue;
        rc = step_result(e, 0);
        return rc == AS_TLS_CLOSED ? AS_TLS_OK : rc;
    }
}

static const char *ossl_error_message(void *p)
{
    return ((ossl_engine *)p)->msg;
}

static int string_info(const char *s, as_extra_info *out)
{
    if (!s)
        return AS_ENOKEY;
    out->kind = AS_EXTRA_STRING;
    out->u.string = s;
    return 0;
}

/* The peer's certificate in PEM, made once. */
static const char *peer_pem(ossl_engine *e)
{
    X509 *cert;
    BIO *mem;
    char *data;
    long n;

    if (e->peer_pem)
        return e->peer_pem;
    if (!(cert = SSL_get1_peer_certificate(e->ssl)))
        return NULL;
    if ((mem = BIO_new(BIO_s_mem())) && PEM_write_bio_X509(mem, cert) == 1 &&
        (n = BIO_get_mem_data(mem, &data)) > 0 && (e->peer_pem = malloc((size_t)n + 1))) {
        memcpy(e->peer_pem, data, (size_t)n);
        e->peer_pem[n] = '\0';
    }
    BIO_free(mem);
    X509_free(cert);
    ERR_clear_error();
    return e->peer_pem;
}

static int ossl_extra_info(void *p, const char *key, as_extra_info *out)
{
    ossl_engine *e = p;
    if (strcmp(key, "ssl_object") == 0 || strcmp(key, "sslcontext") == 0) {
        out->kind = AS_EXTRA_POINTER;
        out->u.pointer = key[1] == 's' ? (void *)e->ssl : (void *)SSL_get_SSL_CTX(e->ssl);
        return 0;
    }
    if (!SSL_is_init_finished(e->ssl))
        return AS_ENOKEY;
    if (strcmp(key, "peercert") == 0)
        return string_info(peer_pem(e), out);
    if (strcmp(key, "cipher") == 0)
        return string_info(SSL_get_cipher_name(e->ssl), out);
    if (strcmp(key, "version") == 0)
        return string_info(SSL_get_version(e->ssl), out);
    if (strcmp(key, "server_hostname") == 0)
        return string_info(SSL_get_servername(e->ssl, TLSEXT_NAMETYPE_host_name), out);
    if (strcmp(key, "compression") == 0) {
        const COMP_METHOD *m = SSL_get_current_compression(e->ssl);
        return string_info(m ? SSL_COMP_get_name(m) : NULL, out);
    }
    if (strcmp(key, "alpn_protocol") == 0) {
        /* OpenSSL's copy is not NUL-terminated: keep one that is. */
        const unsigned char *proto;
        unsigned len;
        SSL_get0_alpn_selected(e->ssl, &proto, &len);
        if (!proto || len == 0)
            return AS_ENOKEY;
        memcpy(e->alpn, proto, len); /* len <= 255 by the protocol */
        e->alpn[len] = '\0';
        return string_info(e->alpn, out);
    }
    return AS_ENOKEY;
}

static void ossl_destroy(void *p)
{
    ossl_engine *e = p;
    SSL_free(e->ssl); /* and both BIOs */
    free(e->hostname);
    free(e->peer_pem);
    free(e);
}

static const as_tls_engine_ops ossl_ops = {
    .name = "openssl",
    .feed = ossl_feed,
    .output = ossl_output,
    .output_done = ossl_output_done,
    .handshake = ossl_handshake,
    .read = ossl_read,
    .write = ossl_write,
    .shutdown = ossl_shutdown,
    .error_message = ossl_error_message,
    .extra_info = ossl_extra_info,
    .destroy = ossl_destroy,
};

static int is_ip_address(const char *s)
{
    unsigned char buf[16];
    return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* A client's name: SNI (never for an IP address, RFC 6066) and, unless
 * disabled, the host name or IP address the certificate must match. */
static int set_hostname(ossl_engine *e, const as_tls_options *o)
{
    const char *h = o->server_hostname;
    int check = o->verify_mode != AS_TLS_CERT_NONE && !o->no_check_hostname;

    if (!h || !*h)
        return 0;
    if (!(e->hostname = malloc(strlen(h) + 1)))
        return -ENOMEM;
    strcpy(e->hostname, h);
    if (is_ip_address(h)) {
        if (check && X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(e->ssl), h) != 1)
            return AS_EINVAL;
        return 0;
    }
    if (SSL_set_tlsext_host_name(e->ssl, h) != 1)
        return AS_EINVAL;
    if (check) {
        SSL_set_hostflags(e->ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (SSL_set1_host(e->ssl, h) != 1)
            return AS_EINVAL;
    }
    return 0;
}

int as__tls_openssl_engine(const as__tls_config *c, const as_tls_engine_ops **ops,
                           void **engine, char *msg, size_t size)
{
    ossl_engine *e = calloc(1, sizeof *e);
    int err;

    ERR_clear_error();
    if (!e)
        return -ENOMEM;
    e->ssl = SSL_new(c->ctx);
    e->in = BIO_new(BIO_s_mem());
    e->out = BIO_new(BIO_s_mem());
    if (!e->ssl || !e->in || !e->out) {
        BIO_free(e->in);
        BIO_free(e->out);
        SSL_free(e->ssl);
        free(e);
        ERR_clear_error();
        return -ENOMEM;
    }
    /* An empty `in` means "wait for more", never EOF: the transport
     * decides what the peer's EOF means. */
    BIO_set_mem_eof_return(e->in, -1);
    BIO_set_mem_eof_return(e->out, -1);
    SSL_set_bio(e->ssl, e->in, e->out);
    if (c->o.server_side) {
        SSL_set_accept_state(e->ssl);
    } else {
        SSL_set_connect_state(e->ssl);
        if ((err = set_hostname(e, &c->o)) < 0) {
            snprintf(msg, size, "invalid server_hostname '%s'", c->o.server_hostname);
            ossl_destroy(e);
            ERR_clear_error();
            return err;
        }
    }
    *ops = &ossl_ops;
    *engine = e;
    return 0;
}

#else /* no OpenSSL */

static int unsupported(char *msg, size_t size)
{
    snprintf(msg, size, "%s", as_strerror(AS_ENOTSUP));
    return AS_ENOTSUP;
}

int as__tls_openssl_available(void)
{
    return 0;
}

int as__tls_openssl_build(as__tls_config *c, char *msg, size_t size)
{
    (void)c;
    return unsupported(msg, size);
}

void as__tls_openssl_free(void *ctx)
{
    (void)ctx;
}

int as__tls_openssl_engine(const as__tls_config *c, const as_tls_engine_ops **ops,
                           void **engine, char *msg, size_t size)
{
    (void)c;
    (void)ops;
    (void)engine;
    return unsupported(msg, size);
}

#endif
