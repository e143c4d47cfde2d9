/*
 * check_tls.c - the TLS transport (tls.h): against our own server and
 * client, and against `openssl s_server` and `openssl s_client` as real
 * peers.  The certificates are made at test time by tests/tls_certs.sh in
 * a temporary folder (nothing is checked in); without the openssl program
 * or without OpenSSL in the build the suite cannot run and says so (77).
 */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

static char certdir[256];

/* A file of the test certificates: "ca.pem", "server.key"... */
static const char *cert(const char *name)
{
    static char paths[8][320];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, sizeof paths[0], "%s/%s", certdir, name);
    return p;
}

/* ------------------------------------------------------------ loop helpers */

static int wait_for(as_loop *loop, as_future *f)
{
    int rc;
    ck_assert_ptr_nonnull(f);
    rc = as_future_done(f) ? as_future_error(f) : as_loop_run_until_complete(loop, f);
    ck_assert(as_future_done(f));
    return rc;
}

/* The outcome of f once done, with its message in msg (copied). */
static int outcome(as_loop *loop, as_future *f, char *msg, size_t size)
{
    int rc = wait_for(loop, f);
    if (msg)
        snprintf(msg, size, "%s", rc && as_future_error_message(f) ? as_future_error_message(f) : "");
    return rc;
}

static void turn(as_loop *loop)
{
    if (as_loop_call_soon(loop, tu_noop, NULL, NULL, NULL) != 0 ||
        as_loop_run_once(loop) != 0)
        ck_abort_msg("loop turn failed");
}

/* Turn the loop for about `seconds`. */
static void run_for(as_loop *loop, double seconds)
{
    double end = as_loop_time(loop) + seconds;
    while (as_loop_time(loop) < end) {
        as_handle *h = NULL;
        ck_assert_int_eq(as_loop_call_later(loop, 0.01, tu_noop, NULL, NULL, &h), 0);
        turn(loop);
        as_handle_cancel(h);
        as_handle_unref(h);
    }
}

static as_bytes *read_ok(as_loop *loop, as_future *f)
{
    as_bytes *b;
    int rc = wait_for(loop, f);
    ck_assert_msg(rc == 0, "read failed: %s %s", as_err_name(rc),
                  as_future_error_message(f) ? as_future_error_message(f) : "");
    b = as_future_take_result(f);
    as_future_unref(f);
    return b;
}

static void expect_line(as_loop *loop, as_reader *r, const char *want)
{
    as_bytes *b = read_ok(loop, as_reader_readline(r));
    ck_assert_msg(b->len == strlen(want) && memcmp(b->data, want, b->len) == 0,
                  "got %.*s, wanted %s", (int)b->len, b->data, want);
    free(b);
}

static void close_conn(as_loop *loop, as_connection *c)
{
    as_future *f;
    as_writer_close(c->writer);
    f = as_writer_wait_closed(c->writer);
    (void)wait_for(loop, f);
    as_future_unref(f);
    as_connection_free(c);
}

/* Exception handler reports, counted and the last one kept. */
struct reports {
    int n;
    int code;
    char message[128], detail[256];
};

static void record_report(as_loop *loop, const as_error_context *ctx, void *p)
{
    struct reports *r = p;
    (void)loop;
    r->n++;
    r->code = ctx->code;
    snprintf(r->message, sizeof r->message, "%s", ctx->message ? ctx->message : "");
    snprintf(r->detail, sizeof r->detail, "%s", ctx->detail ? ctx->detail : "");
}

/* ------------------------------------------------------------ options */

static as_tls_options client_opts(void)
{
    as_tls_options o;
    memset(&o, 0, sizeof o);
    o.ca_file = cert("ca.pem");
    return o;
}

static as_tls_options server_opts(const char *name)
{
    static char c[8][320], k[8][320];
    static int next;
    as_tls_options o;
    int i = next++ % 8;
    memset(&o, 0, sizeof o);
    o.server_side = 1;
    snprintf(c[i], sizeof c[i], "%s/%s.pem", certdir, name);
    snprintf(k[i], sizeof k[i], "%s/%s.key", certdir, name);
    o.cert_file = c[i];
    o.key_file = k[i];
    return o;
}

/* ------------------------------------------------------------ our server */

/* Each connection: echo what it reads until EOF, then close.  The server
 * side's view (SNI, the client's certificate, ALPN) is kept. */
struct served {
    int connections, finished;
    char sni[64], alpn[32], version[16];
    int had_peercert;
    size_t echoed;
};

struct echo {
    struct served *stats;
    as_reader *r;
    as_writer *w;
};

static void echo_next(struct echo *e);

static void echo_end(struct echo *e)
{
    as_writer_close(e->w);
    e->stats->finished++;
    as_writer_unref(e->w);
    as_reader_unref(e->r);
    free(e);
}

static void echo_drained(as_future *f, void *p)
{
    struct echo *e = p;
    if (as_future_error(f) != 0)
        echo_end(e);
    else
        echo_next(e);
}

static void echo_got(as_future *f, void *p)
{
    struct echo *e = p;
    as_bytes *b;
    as_future *d;
    if (as_future_error(f) != 0 || ((as_bytes *)as_future_result(f))->len == 0) {
        echo_end(e);
        return;
    }
    b = as_future_take_result(f);
    e->stats->echoed += b->len;
    if (as_writer_write_bytes(e->w, b) < 0) {
        echo_end(e);
        return;
    }
    d = as_writer_drain(e->w);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(as_future_add_done_callback(d, echo_drained, e, NULL), 0);
    as_future_unref(d);
}

static void echo_next(struct echo *e)
{
    as_future *f = as_reader_read(e->r, 65536);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(as_future_add_done_callback(f, echo_got, e, NULL), 0);
    as_future_unref(f);
}

static void copy_string_info(as_transport *t, const char *key, char *dst, size_t size)
{
    as_extra_info info;
    dst[0] = '\0';
    if (as_transport_get_extra_info(t, key, &info) == 0 && info.kind == AS_EXTRA_STRING)
        snprintf(dst, size, "%s", info.u.string);
}

static as_future *on_echo_client(as_reader *r, as_writer *w, void *p)
{
    struct echo *e = malloc(sizeof *e);
    as_transport *t = as_writer_transport(w);
    as_extra_info info;
    ck_assert_ptr_nonnull(e);
    e->stats = p;
    e->r = r;
    e->w = w;
    e->stats->connections++;
    /* The handler runs only once the handshake is done. */
    ck_assert_str_eq(as_transport_kind(t), "tls");
    copy_string_info(t, "version", e->stats->version, sizeof e->stats->version);
    ck_assert_str_ne(e->stats->version, "");
    copy_string_info(t, "server_hostname", e->stats->sni, sizeof e->stats->sni);
    copy_string_info(t, "alpn_protocol", e->stats->alpn, sizeof e->stats->alpn);
    e->stats->had_peercert = as_transport_get_extra_info(t, "peercert", &info) == 0;
    echo_next(e);
    return NULL;
}

static as_server *start_echo(as_loop *loop, struct served *stats, const as_tls_options *tls,
                             char port[16])
{
    as_future *f = as_start_server_tls(loop, on_echo_client, stats, NULL, "127.0.0.1", "0",
                                       NULL, tls);
    as_server *s;
    int rc = wait_for(loop, f);
    ck_assert_msg(rc == 0, "start_server_tls: %s %s", as_err_name(rc),
                  as_future_error_message(f) ? as_future_error_message(f) : "");
    s = as_future_take_result(f);
    as_future_unref(f);
    snprintf(port, 16, "%d", as_server_port(s, 0));
    return s;
}

static void stop_server(as_loop *loop, as_server *s)
{
    as_future *f;
    as_server_close(s);
    f = as_server_wait_closed(s);
    (void)wait_for(loop, f);
    as_future_unref(f);
    as_server_unref(s);
}

static as_connection *connect_tls(as_loop *loop, const char *host, const char *port,
                                  const as_tls_options *tls)
{
    as_future *f = as_open_connection_tls(loop, host, port, NULL, tls);
    as_connection *c;
    int rc = wait_for(loop, f);
    ck_assert_msg(rc == 0, "open_connection_tls: %s %s", as_err_name(rc),
                  as_future_error_message(f) ? as_future_error_message(f) : "");
    c = as_future_take_result(f);
    as_future_unref(f);
    return c;
}

/* A connection that must fail: its code, and its message in msg. */
static int connect_fails(as_loop *loop, const char *host, const char *port,
                         const as_tls_options *tls, char *msg, size_t size)
{
    as_future *f = as_open_connection_tls(loop, host, port, NULL, tls);
    int rc = outcome(loop, f, msg, size);
    as_future_unref(f);
    ck_assert_int_ne(rc, 0);
    return rc;
}

/* ------------------------------------------------------------ openssl peers */

/* `openssl s_server ARGS... -accept 127.0.0.1:0`; its port in port. */
static pid_t spawn_s_server(const char *const *args, char port[16])
{
    const char *argv[40];
    int out[2], n = 0, i;
    pid_t pid;
    FILE *f;
    char line[256];

    argv[n++] = "openssl";
    argv[n++] = "s_server";
    argv[n++] = "-accept";
    argv[n++] = "127.0.0.1:0";
    argv[n++] = "-naccept";
    argv[n++] = "1";
    for (i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    ck_assert_int_eq(pipe(out), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(null, 2);
        close(out[0]);
        execvp("openssl", (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    f = fdopen(out[0], "r");
    port[0] = '\0';
    while (fgets(line, sizeof line, f)) {
        char *colon;
        if (strncmp(line, "ACCEPT ", 7) == 0 && (colon = strrchr(line, ':'))) {
            snprintf(port, 16, "%d", atoi(colon + 1));
            break;
        }
    }
    fclose(f); /* s_server's later output goes to a closed pipe: it ignores that */
    ck_assert_msg(port[0] != '\0', "openssl s_server did not start");
    return pid;
}

static void reap(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
}

/* `openssl s_client ARGS...` fed `input`; its output comes back through
 * *out_fd (non-blocking), read with drain_fd() while the loop runs. */
static pid_t spawn_s_client(const char *const *args, const char *input, int *out_fd)
{
    const char *argv[40];
    int in[2], out[2], n = 0, i;
    pid_t pid;

    argv[n++] = "openssl";
    argv[n++] = "s_client";
    for (i = 0; args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    ck_assert_int_eq(pipe(in), 0);
    ck_assert_int_eq(pipe(out), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(null, 2);
        close(in[1]);
        close(out[0]);
        execvp("openssl", (char *const *)argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    ck_assert_int_eq(write(in[1], input, strlen(input)), (ssize_t)strlen(input));
    close(in[1]);
    fcntl(out[0], F_SETFL, O_NONBLOCK);
    *out_fd = out[0];
    return pid;
}

/* Run the loop until pid exits (at most 10 s), collecting its output. */
static int wait_child(as_loop *loop, pid_t pid, int fd, char *buf, size_t size)
{
    size_t got = 0;
    int status = -1, i;
    for (i = 0; i < 2000; i++) {
        ssize_t r;
        while (got + 1 < size && (r = read(fd, buf + got, size - 1 - got)) > 0)
            got += (size_t)r;
        if (waitpid(pid, &status, WNOHANG) == pid)
            break;
        run_for(loop, 0.005);
    }
    {
        ssize_t r;
        while (got + 1 < size && (r = read(fd, buf + got, size - 1 - got)) > 0)
            got += (size_t)r;
    }
    buf[got] = '\0';
    close(fd);
    if (i == 2000) {
        reap(pid);
        ck_abort_msg("openssl s_client did not finish");
    }
    return status;
}

/* ------------------------------------------------------------ plain peers */

static int listener(char port[16])
{
    struct sockaddr_in in;
    socklen_t len = sizeof in;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&in, 0, sizeof in);
    in.sin_family = AF_INET;
    in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&in, sizeof in), 0);
    ck_assert_int_eq(listen(fd, 8), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    snprintf(port, 16, "%u", (unsigned)ntohs(in.sin_port));
    return fd;
}

/* A peer that is not a TLS server, in a child process: it accepts one
 * connection and then does `what`. */
enum plain_peer { SILENT, SAYS_HTTP, RESETS, CLOSES };

static pid_t spawn_plain_peer(enum plain_peer what, char port[16])
{
    int lfd = listener(port);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = accept(lfd, NULL, NULL);
        char buf[4096];
        struct linger lg = {1, 0};
        if (fd < 0)
            _exit(1);
        switch (what) {
        case SILENT:
            /* Read until the client gives up: EOF or a reset. */
            while (read(fd, buf, sizeof buf) > 0)
                ;
            _exit(0);
        case SAYS_HTTP:
            (void)!read(fd, buf, sizeof buf);
            (void)!write(fd, "HTTP/1.0 400 Bad Request\r\n\r\n", 28);
            break;
        case RESETS:
            (void)!read(fd, buf, sizeof buf);
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
            break;
        case CLOSES:
            (void)!read(fd, buf, sizeof buf);
            break;
        }
        close(fd);
        _exit(0);
    }
    close(lfd);
    return pid;
}

static int child_status(pid_t pid)
{
    int status = -1;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    return status;
}

/* ============================================================ the tests */

START_TEST(echo_with_our_server_and_extra_info)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char port[16];
    as_server *s = start_echo(loop, &stats, &so, port);
    as_connection *c = connect_tls(loop, "localhost", port, &co);
    as_transport *t = as_writer_transport(c->writer);
    as_extra_info info;
    struct sockaddr_storage ss;
    socklen_t len;

    ck_assert_str_eq(as_transport_kind(t), "tls");
    ck_assert(as_is_tls_transport(t));
    ck_assert_int_eq(as_transport_get_extra_info(t, "ssl_object", &info), 0);
    ck_assert_int_eq(info.kind, AS_EXTRA_POINTER);
    ck_assert_str_eq(SSL_get_version(info.u.pointer), "TLSv1.3");
    ck_assert_int_eq(as_transport_get_extra_info(t, "sslcontext", &info), 0);
    ck_assert_ptr_nonnull(info.u.pointer);
    ck_assert_int_eq(as_transport_get_extra_info(t, "version", &info), 0);
    ck_assert_str_eq(info.u.string, "TLSv1.3");
    ck_assert_int_eq(as_transport_get_extra_info(t, "cipher", &info), 0);
    ck_assert_int_eq(strncmp(info.u.string, "TLS_", 4), 0);
    ck_assert_int_eq(as_transport_get_extra_info(t, "peercert", &info), 0);
    ck_assert_int_eq(strncmp(info.u.string, "-----BEGIN CERTIFICATE-----", 27), 0);
    ck_assert_int_eq(as_transport_get_extra_info(t, "compression", &info), AS_ENOKEY);
    ck_assert_int_eq(as_transport_get_extra_info(t, "alpn_protocol", &info), AS_ENOKEY);
    ck_assert_int_eq(as_transport_get_extra_info(t, "no such key", &info), AS_ENOKEY);
    /* The socket's keys, by delegation. */
    ck_assert_int_eq(as_writer_peername(c->writer, &ss, &len), 0);
    ck_assert_int_eq(ntohs(((struct sockaddr_in *)&ss)->sin_port), atoi(port));
    ck_assert_int_ge(as_writer_fd(c->writer), 0);
    ck_assert_int_eq(as_writer_can_write_eof(c->writer), 0);
    ck_assert_int_eq(as_writer_write_eof(c->writer), AS_ESTATE);

    ck_assert_int_eq(as_writer_write(c->writer, "hello over TLS\n", 15), 0);
    expect_line(loop, c->reader, "hello over TLS\n");
    ck_assert_uint_eq(as_writer_bytes_sent(c->writer), 15);
    close_conn(loop, c);
    ck_assert_int_eq(stats.connections, 1);
    ck_assert_str_eq(stats.sni, "localhost");
    ck_assert_str_eq(stats.version, "TLSv1.3");
    ck_assert_int_eq(stats.had_peercert, 0);
    stop_server(loop, s);
    ck_assert_int_eq(stats.finished, 1);
    tu_close(loop);
}
END_TEST

START_TEST(an_ip_address_is_checked_against_the_certificate_and_not_sent_as_sni)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char port[16];
    as_server *s = start_echo(loop, &stats, &so, port);
    as_connection *c = connect_tls(loop, "127.0.0.1", port, &co);
    ck_assert_int_eq(as_writer_write(c->writer, "x\n", 2), 0);
    expect_line(loop, c->reader, "x\n");
    close_conn(loop, c);
    ck_assert_str_eq(stats.sni, ""); /* RFC 6066: no IP address in SNI */

    co.server_hostname = "localhost"; /* explicit SNI, another host */
    c = connect_tls(loop, "127.0.0.1", port, &co);
    ck_assert_int_eq(as_writer_write(c->writer, "y\n", 2), 0);
    expect_line(loop, c->reader, "y\n");
    close_conn(loop, c);
    ck_assert_str_eq(stats.sni, "localhost");
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(https_get_against_openssl_s_server)
{
    as_loop *loop = tu_loop();
    const char *args[] = {"-cert", cert("server.pem"), "-key", cert("server.key"),
                          "-www", NULL};
    char port[16];
    pid_t pid = spawn_s_server(args, port);
    as_tls_options co = client_opts();
    as_connection *c = connect_tls(loop, "localhost", port, &co);
    as_bytes *b;
    static const char req[] = "GET / HTTP/1.0\r\n\r\n";

    ck_assert_int_eq(as_writer_write(c->writer, req, sizeof req - 1), 0);
    b = read_ok(loop, as_reader_readline(c->reader));
    ck_assert_msg(b->len >= 12 && memcmp(b->data, "HTTP/1.0 200", 12) == 0,
                  "status line %.*s", (int)b->len, b->data);
    free(b);
    /* The rest of the page, then EOF: s_server ends it with close_notify. */
    b = read_ok(loop, as_reader_read(c->reader, -1));
    ck_assert_uint_gt(b->len, 0);
    free(b);
    ck_assert(as_reader_at_eof(c->reader));
    close_conn(loop, c);
    reap(pid);
    tu_close(loop);
}
END_TEST

START_TEST(openssl_s_client_against_our_server)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server");
    char port[16], connect[32], out[4096];
    as_server *s;
    int fd, status;
    pid_t pid;

    so.alpn_protocols = "echo/1";
    s = start_echo(loop, &stats, &so, port);
    snprintf(connect, sizeof connect, "127.0.0.1:%s", port);
    {
        const char *args[] = {"-connect", connect, "-CAfile", cert("ca.pem"),
                              "-verify_return_error", "-servername", "localhost",
                              "-alpn", "echo/1", "-quiet", NULL};
        pid = spawn_s_client(args, "ping from s_client\n", &fd);
    }
    /* s_client sends its line and waits (-quiet implies -ign_eof); our
     * server echoes it; the test closes the server's side. */
    while (stats.echoed < 19)
        run_for(loop, 0.01);
    as_server_close_clients(s);
    status = wait_child(loop, pid, fd, out, sizeof out);
    ck_assert_msg(WIFEXITED(status), "s_client status %d", status);
    ck_assert_msg(strstr(out, "ping from s_client\n") != NULL, "s_client printed: %s", out);
    ck_assert_str_eq(stats.sni, "localhost");
    ck_assert_str_eq(stats.alpn, "echo/1");
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(mutual_tls_with_a_client_certificate)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char port[16];
    as_server *s;
    as_connection *c;

    so.verify_mode = AS_TLS_CERT_REQUIRED;
    so.ca_file = cert("ca.pem");
    s = start_echo(loop, &stats, &so, port);
    co.cert_file = cert("client.pem");
    co.key_file = cert("client.key");
    c = connect_tls(loop, "localhost", port, &co);
    ck_assert_int_eq(as_writer_write(c->writer, "mtls\n", 5), 0);
    expect_line(loop, c->reader, "mtls\n");
    close_conn(loop, c);
    ck_assert_int_eq(stats.had_peercert, 1);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(mutual_tls_without_a_client_certificate_fails_on_both_sides)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    struct reports rep = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char port[16], msg[256];
    as_server *s;
    as_connection *c;
    as_future *f;
    int rc;

    as_loop_set_exception_handler(loop, record_report, &rep, NULL);
    so.verify_mode = AS_TLS_CERT_REQUIRED;
    so.ca_file = cert("ca.pem");
    s = start_echo(loop, &stats, &so, port);
    /* TLS 1.3: the client's handshake is over before the server checks
     * it, so the server's alert fails the first read. */
    c = connect_tls(loop, "localhost", port, &co);
    f = as_reader_read(c->reader, 100);
    rc = outcome(loop, f, msg, sizeof msg);
    as_future_unref(f);
    ck_assert_int_eq(rc, AS_ETLS);
    ck_assert_str_eq(msg, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] tlsv13 alert certificate required");
    close_conn(loop, c);
    while (rep.n == 0)
        run_for(loop, 0.01);
    ck_assert_str_eq(rep.message, "SSL handshake failed");
    ck_assert_int_eq(rep.code, AS_ETLS);
    ck_assert_str_eq(rep.detail, "[SSL: PEER_DID_NOT_RETURN_A_CERTIFICATE] peer did not return a certificate");
    ck_assert_int_eq(stats.connections, 0); /* the handler never saw it */

    /* TLS 1.2: the handshake itself fails. */
    co.max_version = AS_TLS_VERSION_1_2;
    ck_assert_int_eq(connect_fails(loop, "localhost", port, &co, msg, sizeof msg), AS_ETLS);
    ck_assert_str_eq(msg, "[SSL: SSLV3_ALERT_HANDSHAKE_FAILURE] sslv3 alert handshake failure");
    ck_assert_int_eq(stats.connections, 0);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(mutual_tls_with_openssl_s_client)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server");
    char port[16], connect[32], out[4096];
    as_server *s;
    int fd;
    pid_t pid;

    so.verify_mode = AS_TLS_CERT_REQUIRED;
    so.ca_file = cert("ca.pem");
    s = start_echo(loop, &stats, &so, port);
    snprintf(connect, sizeof connect, "127.0.0.1:%s", port);
    {
        const char *args[] = {"-connect", connect, "-CAfile", cert("ca.pem"),
                              "-cert", cert("client.pem"), "-key", cert("client.key"),
                              "-servername", "localhost", "-quiet", NULL};
        pid = spawn_s_client(args, "with a certificate\n", &fd);
    }
    while (stats.echoed < 19)
        run_for(loop, 0.01);
    as_server_close_clients(s);
    (void)wait_child(loop, pid, fd, out, sizeof out);
    ck_assert_msg(strstr(out, "with a certificate\n") != NULL, "s_client printed: %s", out);
    ck_assert_int_eq(stats.had_peercert, 1);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(alpn_picks_the_servers_first_choice_the_client_offers)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    struct reports rep = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char port[16], msg[256];
    as_server *s;
    as_connection *c;
    as_extra_info info;

    so.alpn_protocols = "http/1.1,h2";
    s = start_echo(loop, &stats, &so, port);
    co.alpn_protocols = "h2,http/1.1";
    c = connect_tls(loop, "localhost", port, &co);
    ck_assert_int_eq(as_transport_get_extra_info(as_writer_transport(c->writer),
                                                 "alpn_protocol", &info), 0);
    ck_assert_str_eq(info.u.string, "http/1.1");
    close_conn(loop, c);
    run_for(loop, 0.05);
    ck_assert_str_eq(stats.alpn, "http/1.1");

    co.alpn_protocols = "spdy/3"; /* nothing in common: no ALPN, still connected */
    c = connect_tls(loop, "localhost", port, &co);
    ck_assert_int_eq(as_transport_get_extra_info(as_writer_transport(c->writer),
                                                 "alpn_protocol", &info), AS_ENOKEY);
    close_conn(loop, c);

    /* An empty name: the client gives up (the server reports the reset). */
    as_loop_set_exception_handler(loop, record_report, &rep, NULL);
    co.alpn_protocols = "h2,,x";
    ck_assert_int_eq(connect_fails(loop, "localhost", port, &co, msg, sizeof msg), AS_EINVAL);
    ck_assert_str_eq(msg, "alpn_protocols: each protocol must be 1 to 255 bytes");
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(alpn_against_openssl_s_server)
{
    as_loop *loop = tu_loop();
    const char *args[] = {"-cert", cert("server.pem"), "-key", cert("server.key"),
                          "-alpn", "h2", "-rev", NULL};
    char port[16];
    pid_t pid = spawn_s_server(args, port);
    as_tls_options co = client_opts();
    as_connection *c;
    as_extra_info info;

    co.alpn_protocols = "http/1.1,h2";
    c = connect_tls(loop, "localhost", port, &co);
    ck_assert_int_eq(as_transport_get_extra_info(as_writer_transport(c->writer),
                                                 "alpn_protocol", &info), 0);
    ck_assert_str_eq(info.u.string, "h2");
    /* -rev: s_server sends each line back reversed. */
    ck_assert_int_eq(as_writer_write(c->writer, "stressed\n", 9), 0);
    expect_line(loop, c->reader, "desserts\n");
    close_conn(loop, c);
    reap(pid);
    tu_close(loop);
}
END_TEST

/* One server with certificate `name`, one client with options co: the
 * connection must fail verification with `why` after the prefix. */
static void verification_fails(const char *name, const char *hostname,
                               const as_tls_options *co, const char *why)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    struct reports rep = {0};
    as_tls_options so = server_opts(name);
    char port[16], msg[256], want[256];
    as_server *s;

    as_loop_set_exception_handler(loop, record_report, &rep, NULL);
    s = start_echo(loop, &stats, &so, port);
    ck_assert_int_eq(connect_fails(loop, hostname, port, co, msg, sizeof msg), AS_ECERT);
    snprintf(want, sizeof want, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: %s",
             why);
    ck_assert_str_eq(msg, want);
    /* The server hears about it from our alert. */
    while (rep.n == 0)
        run_for(loop, 0.01);
    ck_assert_str_eq(rep.message, "SSL handshake failed");
    ck_assert_msg(strstr(rep.detail, "ALERT") != NULL, "server saw: %s", rep.detail);
    ck_assert_int_eq(stats.connections, 0);
    stop_server(loop, s);
    tu_close(loop);
}

START_TEST(verification_fails_for_a_wrong_host_name)
{
    as_tls_options co = client_opts();
    co.server_hostname = "wrong.example";
    verification_fails("server", "127.0.0.1", &co,
                       "Hostname mismatch, certificate is not valid for 'wrong.example'.");
}
END_TEST

START_TEST(verification_fails_for_an_unknown_ca)
{
    as_tls_options co = client_opts();
    verification_fails("other", "localhost", &co, "unable to get local issuer certificate");
}
END_TEST

START_TEST(verification_fails_for_an_expired_certificate)
{
    as_tls_options co = client_opts();
    verification_fails("expired", "localhost", &co, "certificate has expired");
}
END_TEST

START_TEST(verification_fails_for_a_self_signed_certificate)
{
    as_tls_options co = client_opts();
    verification_fails("self", "localhost", &co, "self-signed certificate");
}
END_TEST

START_TEST(the_system_trust_store_does_not_know_the_test_ca)
{
    as_tls_options co;
    memset(&co, 0, sizeof co); /* ssl=True: the system's store */
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");
    verification_fails("server", "localhost", &co, "unable to get local issuer certificate");
}
END_TEST

START_TEST(ssl_cert_file_trusts_the_test_ca_for_the_default_store)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server"), co;
    char port[16];
    as_server *s = start_echo(loop, &stats, &so, port);
    as_connection *c;

    memset(&co, 0, sizeof co);
    setenv("SSL_CERT_FILE", cert("ca.pem"), 1);
    c = connect_tls(loop, "localhost", port, &co);
    close_conn(loop, c);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(verification_can_be_relaxed)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("self"), co = client_opts();
    char port[16];
    as_server *s = start_echo(loop, &stats, &so, port);
    as_connection *c;

    co.verify_mode = AS_TLS_CERT_NONE; /* anything goes (insecure) */
    c = connect_tls(loop, "localhost", port, &co);
    close_conn(loop, c);
    stop_server(loop, s);

    so = server_opts("server");
    s = start_echo(loop, &stats, &so, port);
    co = client_opts();
    co.server_hostname = "wrong.example";
    co.no_check_hostname = 1; /* the chain is checked, the name not */
    c = connect_tls(loop, "127.0.0.1", port, &co);
    close_conn(loop, c);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(the_handshake_timeout_aborts_and_closes_the_fd)
{
    as_loop *loop = tu_loop();
    as_tls_options co = client_opts();
    char port[16], msg[256];
    pid_t pid = spawn_plain_peer(SILENT, port);
    double start = as_loop_time(loop);

    co.handshake_timeout = 0.3;
    ck_assert_int_eq(connect_fails(loop, "localhost", port, &co, msg, sizeof msg),
                     -ECONNABORTED);
    ck_assert_str_eq(msg, "SSL handshake is taking longer than 0.3 seconds: "
                          "aborting the connection");
    ck_assert(as_loop_time(loop) - start >= 0.29);
    /* The peer sees the connection end: its read loop finishes. */
    ck_assert_int_eq(child_status(pid), 0);
    tu_close(loop);
}
END_TEST

START_TEST(a_peer_that_is_not_tls)
{
    as_loop *loop = tu_loop();
    as_tls_options co = client_opts();
    char port[16], msg[256];
    pid_t pid = spawn_plain_peer(SAYS_HTTP, port);
    ck_assert_int_eq(connect_fails(loop, "localhost", port, &co, msg, sizeof msg), AS_ETLS);
    ck_assert_str_eq(msg, "[SSL: WRONG_VERSION_NUMBER] wrong version number");
    (void)child_status(pid);
    tu_close(loop);
}
END_TEST

START_TEST(a_reset_during_the_handshake)
{
    as_loop *loop = tu_loop();
    as_tls_options co = client_opts();
    char port[16], msg[256];
    pid_t pid = spawn_plain_peer(RESETS, port);
    ck_assert_int_eq(connect_fails(loop, "localhost", port, &co, msg, sizeof msg),
                     -ECONNRESET);
    (void)child_status(pid);
    tu_close(loop);
}
END_TEST

START_TEST(an_eof_during_the_handshake_is_a_reset)
{
    as_loop *loop = tu_loop();
    as_tls_options co = client_opts();
    char port[16], msg[256];
    pid_t pid = spawn_plain_peer(CLOSES, port);
    ck_assert_int_eq(connect_fails(loop, "localhost", port, &co, msg, sizeof msg),
                     -ECONNRESET);
    ck_assert_str_eq(msg, "Connection lost: the peer closed the connection during the "
                          "TLS handshake");
    (void)child_status(pid);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------ hand-made TLS servers
 * A plain server whose handler upgrades with start_tls and keeps the
 * socket transport, so a test can misbehave underneath TLS. */

enum misbehave {
    WRITE_THEN_FIN,      /* data, then FIN without close_notify */
    WRITE_THEN_GARBAGE,  /* data, then a record that does not decrypt */
    NEVER_READ_AGAIN,    /* after the handshake, stop reading for good */
    STARTTLS_LINE,       /* "STARTTLS\r\n", then TLS: echo until EOF */
    REPLY_THEN_STARTTLS, /* "STARTTLS\r\n" -> "220 go ahead\r\n", then as above */
    PLAIN_IDLE           /* no TLS: hold the connection until the test ends it */
};

struct rogue {
    enum misbehave what;
    as_loop *loop;
    as_reader *r;
    as_writer *w;
    as_transport *lower;      /* the socket transport under TLS */
    size_t buffered_at_starttls;
    int upgraded, done;
    struct served stats;      /* the echo after STARTTLS */
};

static void rogue_finish(struct rogue *g)
{
    as_writer_unref(g->w);
    as_reader_unref(g->r);
    as_transport_unref(g->lower);
    g->w = NULL;
    g->r = NULL;
    g->lower = NULL;
    g->done = 1;
}

static void rogue_upgraded(as_future *hs, void *p)
{
    struct rogue *g = p;
    ck_assert_msg(as_future_error(hs) == 0, "server start_tls: %s",
                  as_future_error_message(hs) ? as_future_error_message(hs) : "");
    g->upgraded = 1;
    switch (g->what) {
    case WRITE_THEN_FIN:
        ck_assert_int_eq(as_writer_write(g->w, "last words", 10), 0);
        as_transport_close(g->lower); /* FIN, no close_notify */
        g->done = 1; /* the test lets go once the TLS side has seen it */
        break;
    case WRITE_THEN_GARBAGE:
        /* One turn, one segment: a good record, then one whose MAC fails. */
        ck_assert_int_eq(as_writer_write(g->w, "hello", 5), 0);
        ck_assert_int_eq(as_transport_write(g->lower, "\x17\x03\x03\x00\x15"
                                            "not a valid record..", 26), 0);
        as_transport_close(g->lower);
        g->done = 1;
        break;
    case NEVER_READ_AGAIN:
        ck_assert_int_eq(as_transport_pause_reading(g->lower), 0);
        g->done = 1; /* the test ends the connection */
        break;
    case STARTTLS_LINE:
    case REPLY_THEN_STARTTLS: {
        /* The connection is the echo's now (with our references). */
        struct echo *e = malloc(sizeof *e);
        ck_assert_ptr_nonnull(e);
        e->stats = &g->stats;
        e->r = g->r;
        e->w = g->w;
        g->r = NULL;
        g->w = NULL;
        as_transport_unref(g->lower);
        g->lower = NULL;
        g->done = 1;
        echo_next(e);
        break;
    }
    case PLAIN_IDLE:
        break;
    }
}

static as_tls_options rogue_tls;

static void rogue_upgrade(struct rogue *g)
{
    as_future *hs;
    g->lower = as_transport_ref(as_writer_transport(g->w));
    g->buffered_at_starttls = as_reader_buffered(g->r);
    hs = as_writer_start_tls(g->w, &rogue_tls);
    ck_assert_ptr_nonnull(hs);
    ck_assert_int_eq(as_future_add_done_callback(hs, rogue_upgraded, g, NULL), 0);
    as_future_unref(hs);
}

static void rogue_line(as_future *f, void *p)
{
    struct rogue *g = p;
    as_bytes *line = as_future_result(f);
    ck_assert_int_eq(as_future_error(f), 0);
    ck_assert(line->len == 10 && memcmp(line->data, "STARTTLS\r\n", 10) == 0);
    if (g->what == REPLY_THEN_STARTTLS) /* written before: goes out as plaintext */
        ck_assert_int_eq(as_writer_write(g->w, "220 go ahead\r\n", 14), 0);
    rogue_upgrade(g);
}

static as_future *on_rogue_client(as_reader *r, as_writer *w, void *p)
{
    struct rogue *g = p;
    g->r = r;
    g->w = w;
    if (g->what == PLAIN_IDLE) {
        g->lower = as_transport_ref(as_writer_transport(w));
        g->done = 1;
    } else if (g->what == STARTTLS_LINE || g->what == REPLY_THEN_STARTTLS) {
        as_future *f = as_reader_readline(r);
        ck_assert_int_eq(as_future_add_done_callback(f, rogue_line, g, NULL), 0);
        as_future_unref(f);
    } else {
        rogue_upgrade(g);
    }
    return NULL;
}

static as_server *start_rogue(as_loop *loop, struct rogue *g, char port[16])
{
    as_future *f = as_start_server(loop, on_rogue_client, g, NULL, "127.0.0.1", "0", NULL);
    as_server *s;
    ck_assert_int_eq(wait_for(loop, f), 0);
    s = as_future_take_result(f);
    as_future_unref(f);
    snprintf(port, 16, "%d", as_server_port(s, 0));
    rogue_tls = server_opts("server");
    g->loop = loop;
    return s;
}

START_TEST(eof_without_close_notify_after_data_is_eof)
{
    as_loop *loop = tu_loop();
    struct rogue g = {WRITE_THEN_FIN, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
    as_tls_options co = client_opts();
    char port[16];
    as_server *s = start_rogue(loop, &g, port);
    as_connection *c = connect_tls(loop, "localhost", port, &co);
    as_bytes *b = read_ok(loop, as_reader_read(c->reader, -1));
    as_future *f;

    /* CPython's SSLProtocol: a truncation after the handshake is EOF. */
    ck_assert(b->len == 10 && memcmp(b->data, "last words", 10) == 0);
    free(b);
    f = as_writer_wait_closed(c->writer);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    ck_assert_int_eq(as_writer_write(c->writer, "x", 1), AS_ECLOSED);
    close_conn(loop, c);
    rogue_finish(&g);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(plaintext_decrypted_before_an_error_is_read_first)
{
    as_loop *loop = tu_loop();
    struct rogue g = {WRITE_THEN_GARBAGE, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
    as_tls_options co = client_opts();
    char port[16], msg[256];
    as_server *s = start_rogue(loop, &g, port);
    as_connection *c = connect_tls(loop, "localhost", port, &co);
    as_future *waiting = as_reader_read(c->reader, 100), *f;
    as_bytes *b;

    /* The waiting read gets the good record; the bad one is the error of
     * the next read and of the connection. */
    b = read_ok(loop, waiting);
    ck_assert(b->len == 5 && memcmp(b->data, "hello", 5) == 0);
    free(b);
    f = as_reader_read(c->reader, 100);
    ck_assert_int_eq(outcome(loop, f, msg, sizeof msg), AS_ETLS);
    as_future_unref(f);
    ck_assert_msg(strncmp(msg, "[SSL: ", 6) == 0, "message %s", msg);
    f = as_writer_wait_closed(c->writer);
    ck_assert_int_eq(wait_for(loop, f), AS_ETLS);
    as_future_unref(f);
    close_conn(loop, c);
    run_for(loop, 0.05); /* the server's TLS sees its socket closed */
    rogue_finish(&g);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(wait_closed_ends_after_the_shutdown_timeout_when_nobody_answers)
{
    as_loop *loop = tu_loop();
    struct rogue g = {NEVER_READ_AGAIN, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
    as_tls_options co = client_opts();
    char port[16], msg[256];
    as_server *s = start_rogue(loop, &g, port);
    as_connection *c;
    as_future *f;
    double start;

    co.shutdown_timeout = 0.3;
    c = connect_tls(loop, "localhost", port, &co);
    while (!g.done)
        run_for(loop, 0.01);
    start = as_loop_time(loop);
    as_writer_close(c->writer);
    ck_assert(as_writer_is_closing(c->writer));
    f = as_writer_wait_closed(c->writer);
    ck_assert_int_eq(outcome(loop, f, msg, sizeof msg), AS_ETIMEOUT);
    as_future_unref(f);
    ck_assert_str_eq(msg, "SSL shutdown timed out");
    ck_assert(as_loop_time(loop) - start >= 0.29);
    ck_assert_int_eq(as_writer_fd(c->writer), -1); /* the fd is closed */
    as_connection_free(c);
    as_writer_abort(g.w); /* it reads nothing: closing would wait too */
    rogue_finish(&g);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

/* A client that pipelines: "STARTTLS\r\n" and its ClientHello in one
 * send(), as pain point 15 describes, then a TLS echo of one line.  It
 * runs in a child with OpenSSL used directly (a memory BIO for the hello,
 * then the socket), blocking: it is the peer, not the lesson.  Exit 0 if
 * the echo came back. */
static pid_t spawn_pipelining_client(const char *port)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct sockaddr_in in;
        SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
        SSL *ssl;
        BIO *mem_in = BIO_new(BIO_s_mem()), *mem_out = BIO_new(BIO_s_mem()), *sock;
        char buf[4096], *hello;
        long n;
        int fd = socket(AF_INET, SOCK_STREAM, 0);

        memset(&in, 0, sizeof in);
        in.sin_family = AF_INET;
        in.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        in.sin_port = htons((unsigned short)atoi(port));
        if (!ctx || fd < 0 || connect(fd, (struct sockaddr *)&in, sizeof in) < 0 ||
            SSL_CTX_load_verify_locations(ctx, cert("ca.pem"), NULL) != 1)
            _exit(2);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
        ssl = SSL_new(ctx);
        SSL_set_bio(ssl, mem_in, mem_out);
        SSL_set_connect_state(ssl);
        SSL_set_tlsext_host_name(ssl, "localhost");
        SSL_set1_host(ssl, "localhost");
        if (SSL_do_handshake(ssl) != -1)
            _exit(3);
        n = BIO_get_mem_data(mem_out, &hello);
        if (n <= 0 || (size_t)n + 10 > sizeof buf)
            _exit(4);
        memcpy(buf, "STARTTLS\r\n", 10);
        memcpy(buf + 10, hello, (size_t)n);
        if (send(fd, buf, 10 + (size_t)n, 0) != 10 + n)
            _exit(5);
        (void)BIO_reset(mem_out);
        sock = BIO_new_socket(fd, BIO_NOCLOSE);
        SSL_set_bio(ssl, sock, sock);
        if (SSL_connect(ssl) != 1 || SSL_write(ssl, "secret\n", 7) != 7)
            _exit(6);
        n = 0;
        while (n < 7) {
            int r = SSL_read(ssl, buf + n, (int)(sizeof buf - (size_t)n));
            if (r <= 0)
                _exit(7);
            n += r;
        }
        if (memcmp(buf, "secret\n", 7) != 0)
            _exit(8);
        SSL_shutdown(ssl);
        close(fd);
        _exit(0);
    }
    return pid;
}

START_TEST(start_tls_with_the_client_hello_in_the_same_segment)
{
    as_loop *loop = tu_loop();
    struct rogue g = {STARTTLS_LINE, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
    char port[16];
    as_server *s = start_rogue(loop, &g, port);
    pid_t pid = spawn_pipelining_client(port);
    int status = -1, i;

    for (i = 0; i < 1000 && waitpid(pid, &status, WNOHANG) != pid; i++)
        run_for(loop, 0.01);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "client status %d", status);
    /* The ClientHello had come with the line: it went to TLS, never to
     * the application as plaintext. */
    ck_assert_uint_gt(g.buffered_at_starttls, 0);
    ck_assert_uint_eq(g.stats.echoed, 7);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

/* The same with our own client: start_tls on both sides. */
START_TEST(start_tls_on_both_sides)
{
    as_loop *loop = tu_loop();
    struct rogue g = {STARTTLS_LINE, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
    as_tls_options co = client_opts();
    char port[16];
    as_server *s = start_rogue(loop, &g, port);
    as_future *f = as_open_connection(loop, "127.0.0.1", port, NULL), *hs;
    as_connection *c;

    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    ck_assert_int_eq(as_writer_write(c->writer, "STARTTLS\r\n", 10), 0);
    co.server_hostname = "localhost";
    hs = as_writer_start_tls(c->writer, &co);
    ck_assert_int_eq(wait_for(loop, hs), 0);
    as_future_unref(hs);
    ck_assert_str_eq(as_transport_kind(as_writer_transport(c->writer)), "tls");
    ck_assert_int_eq(as_writer_write(c->writer, "secret\n", 7), 0);
    expect_line(loop, c->reader, "secret\n");
    close_conn(loop, c);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(start_tls_sends_what_was_written_before_as_plaintext_first)
{
    as_loop *loop = tu_loop();
    struct rogue g = {REPLY_THEN_STARTTLS, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
    as_tls_options co = client_opts();
    char port[16];
    as_server *s = start_rogue(loop, &g, port);
    as_future *f = as_open_connection(loop, "127.0.0.1", port, NULL), *hs;
    as_connection *c;

    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    ck_assert_int_eq(as_writer_write(c->writer, "STARTTLS\r\n", 10), 0);
    expect_line(loop, c->reader, "220 go ahead\r\n");
    co.server_hostname = "localhost";
    hs = as_writer_start_tls(c->writer, &co);
    /* Written while handshaking: kept, then encrypted, in order. */
    ck_assert_int_eq(as_writer_write(c->writer, "early\n", 6), 0);
    ck_assert_uint_ge(as_writer_get_write_buffer_size(c->writer), 6);
    ck_assert_int_eq(wait_for(loop, hs), 0);
    as_future_unref(hs);
    expect_line(loop, c->reader, "early\n");
    close_conn(loop, c);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------ bulk and backpressure */

struct bulk {
    as_loop *loop;
    as_writer *w;
    const unsigned char *data;
    size_t len, off, chunk;
    int done, err;
};

static void bulk_more(struct bulk *b);

static void bulk_drained(as_future *f, void *p)
{
    struct bulk *b = p;
    if ((b->err = as_future_error(f)) != 0) {
        b->done = 1;
        return;
    }
    bulk_more(b);
}

/* write + drain, chunk by chunk, as a well-behaved producer does. */
static void bulk_more(struct bulk *b)
{
    while (b->off < b->len) {
        size_t n = b->len - b->off < b->chunk ? b->len - b->off : b->chunk;
        as_future *d;
        ck_assert_int_eq(as_writer_write(b->w, b->data + b->off, n), 0);
        b->off += n;
        d = as_writer_drain(b->w);
        ck_assert_ptr_nonnull(d);
        if (!as_future_done(d)) {
            ck_assert_int_eq(as_future_add_done_callback(d, bulk_drained, b, NULL), 0);
            as_future_unref(d);
            return;
        }
        as_future_unref(d);
    }
    b->done = 1;
}

START_TEST(sixty_four_mib_each_way_through_our_server)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    size_t len = (size_t)(getenv("AS_TLS_BULK_MIB") ? atoi(getenv("AS_TLS_BULK_MIB"))
                                                    : tu_scale(64, 1)) << 20, i;
    unsigned char *data = malloc(len);
    char port[16];
    as_server *s = start_echo(loop, &stats, &so, port);
    as_connection *c = connect_tls(loop, "localhost", port, &co);
    struct bulk b = {loop, c->writer, NULL, 0, 0, 1 << 20, 0, 0};
    as_future *back;
    as_bytes *got;

    ck_assert_ptr_nonnull(data);
    for (i = 0; i < len; i++)
        data[i] = (unsigned char)(i * 7 + (i >> 13));
    b.data = data;
    b.len = len;
    back = as_reader_readexactly(c->reader, (ssize_t)len);
    bulk_more(&b);
    got = read_ok(loop, back);
    ck_assert(b.done && b.err == 0);
    ck_assert_uint_eq(got->len, len);
    ck_assert(memcmp(got->data, data, len) == 0);
    free(got);
    ck_assert_uint_eq(stats.echoed, len);
    ck_assert_uint_eq(as_writer_bytes_sent(c->writer), len);
    close_conn(loop, c);
    stop_server(loop, s);
    free(data);
    tu_close(loop);
}
END_TEST

START_TEST(a_full_reader_pauses_both_layers_and_resuming_loses_nothing)
{
    as_loop *loop = tu_loop();
    struct rogue g = {STARTTLS_LINE, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
    as_tls_options co = client_opts();
    char port[16];
    as_server *s = start_rogue(loop, &g, port);
    as_future *f = as_open_connection(loop, "127.0.0.1", port, NULL), *hs;
    as_connection *c;
    as_transport *lower, *t;
    size_t len = 1 << 20, i;
    unsigned char *data = malloc(len);
    as_bytes *got;

    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    lower = as_transport_ref(as_writer_transport(c->writer));
    ck_assert_int_eq(as_writer_write(c->writer, "STARTTLS\r\n", 10), 0);
    co.server_hostname = "localhost";
    hs = as_writer_start_tls(c->writer, &co);
    ck_assert_int_eq(wait_for(loop, hs), 0);
    as_future_unref(hs);
    t = as_writer_transport(c->writer);

    /* A line of 1 MiB comes back; we do not read it yet. */
    for (i = 0; i < len - 1; i++)
        data[i] = (unsigned char)('a' + i % 26);
    data[len - 1] = '\n';
    ck_assert_int_eq(as_writer_write(c->writer, data, len), 0);
    ck_assert_uint_ge(as_writer_get_write_buffer_size(c->writer), as_transport_get_write_buffer_size(lower));
    for (i = 0; i < 400 && !as_transport_is_reading_paused(lower); i++)
        run_for(loop, 0.005);
    ck_assert(as_transport_is_reading_paused(t));
    ck_assert(as_transport_is_reading_paused(lower));
    ck_assert_uint_le(as_reader_buffered(c->reader), 2 * 65536 + 65536);
    f = as_reader_readexactly(c->reader, (ssize_t)len);
    got = read_ok(loop, f);
    ck_assert(got->len == len && memcmp(got->data, data, len) == 0);
    free(got);
    close_conn(loop, c);
    as_transport_unref(lower);
    stop_server(loop, s);
    free(data);
    tu_close(loop);
}
END_TEST

START_TEST(writes_during_the_handshake_count_and_drain_waits)
{
    as_loop *loop = tu_loop();
    struct rogue g = {STARTTLS_LINE, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
    as_tls_options co = client_opts();
    char port[16];
    as_server *s = start_rogue(loop, &g, port);
    as_future *f = as_open_connection(loop, "127.0.0.1", port, NULL), *hs, *d, *fl;
    as_connection *c;
    static unsigned char big[200000];
    as_bytes *got;

    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    ck_assert_int_eq(as_writer_write(c->writer, "STARTTLS\r\n", 10), 0);
    co.server_hostname = "localhost";
    hs = as_writer_start_tls(c->writer, &co);
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\n';
    ck_assert_int_eq(as_writer_write(c->writer, big, sizeof big), 0);
    /* The plaintext kept, plus the socket's queue (the line, maybe). */
    ck_assert_uint_ge(as_writer_get_write_buffer_size(c->writer), sizeof big);
    d = as_writer_drain(c->writer);
    fl = as_writer_flush(c->writer);
    ck_assert(!as_future_done(d) && !as_future_done(fl));
    ck_assert_int_eq(wait_for(loop, hs), 0);
    ck_assert_int_eq(wait_for(loop, d), 0);
    ck_assert_int_eq(wait_for(loop, fl), 0);
    ck_assert_uint_eq(as_writer_bytes_sent(c->writer), sizeof big);
    as_future_unref(hs);
    as_future_unref(d);
    as_future_unref(fl);
    got = read_ok(loop, as_reader_readexactly(c->reader, sizeof big));
    ck_assert(memcmp(got->data, big, sizeof big) == 0);
    free(got);
    close_conn(loop, c);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------ misuse and bad input */

START_TEST(start_tls_refuses_what_it_cannot_do_and_leaves_the_connection_alone)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server"), co = client_opts(), bad;
    char port[16], msg[256];
    as_server *s = start_echo(loop, &stats, &so, port);
    as_connection *c = connect_tls(loop, "localhost", port, &co);
    as_future *f;

    f = as_writer_start_tls(c->writer, &co);
    ck_assert_int_eq(outcome(loop, f, msg, sizeof msg), AS_ESTATE);
    ck_assert_str_eq(msg, "the connection already uses TLS");
    as_future_unref(f);
    memset(&bad, 0, sizeof bad);
    bad.server_side = 1; /* no certificate */
    ck_assert_ptr_null(as_writer_start_tls(NULL, &bad));
    close_conn(loop, c);
    stop_server(loop, s);

    /* On a plain connection, bad options fail and plaintext still works. */
    {
        struct rogue g = {PLAIN_IDLE, NULL, NULL, NULL, NULL, 0, 0, 0, {0}};
        as_server *plain = start_rogue(loop, &g, port);
        as_future *cf = as_open_connection(loop, "127.0.0.1", port, NULL);
        as_connection *pc;
        ck_assert_int_eq(wait_for(loop, cf), 0);
        pc = as_future_take_result(cf);
        as_future_unref(cf);
        f = as_writer_start_tls(pc->writer, &bad);
        ck_assert_int_eq(outcome(loop, f, msg, sizeof msg), AS_EINVAL);
        ck_assert_str_eq(msg, "a TLS server needs cert_file");
        as_future_unref(f);
        ck_assert_str_eq(as_transport_kind(as_writer_transport(pc->writer)), "socket");
        bad = client_opts(); /* a client without a name to check */
        f = as_writer_start_tls(pc->writer, &bad);
        ck_assert_int_eq(outcome(loop, f, msg, sizeof msg), AS_EINVAL);
        ck_assert_str_eq(msg, "check_hostname requires server_hostname");
        as_future_unref(f);
        ck_assert_int_eq(as_writer_write(pc->writer, "plain\n", 6), 0);
        while (!g.done)
            run_for(loop, 0.01);
        expect_line(loop, g.r, "plain\n");
        as_writer_abort(pc->writer);
        as_connection_free(pc);
        as_writer_abort(g.w);
        rogue_finish(&g);
        stop_server(loop, plain);
    }
    tu_close(loop);
}
END_TEST

START_TEST(bad_options_fail_with_a_clear_error)
{
    as_loop *loop = tu_loop();
    as_tls_options o = client_opts();
    char msg[256];
    as_future *f;
    FILE *junk;

    o.min_version = 5;
    ck_assert_int_eq(connect_fails(loop, "localhost", "1", &o, msg, sizeof msg), AS_EINVAL);
    ck_assert_str_eq(msg, "min_version and max_version must be 0 or AS_TLS_VERSION_1_2 or _1_3");
    o = client_opts();
    o.handshake_timeout = -1;
    ck_assert_int_eq(connect_fails(loop, "localhost", "1", &o, msg, sizeof msg), AS_EINVAL);
    ck_assert_str_eq(msg, "ssl_handshake_timeout should be a positive number, got -1");
    o = client_opts();
    ck_assert_int_eq(connect_fails(loop, NULL, "1", &o, msg, sizeof msg), AS_EINVAL);
    ck_assert_str_eq(msg, "You must set server_hostname when using ssl without a host");
    f = as_open_unix_connection_tls(loop, "/tmp/nowhere", NULL, &o);
    ck_assert_int_eq(outcome(loop, f, msg, sizeof msg), AS_EINVAL);
    ck_assert_str_eq(msg, "you have to pass server_hostname when using ssl");
    as_future_unref(f);
    {
        char port[16];
        pid_t pid = spawn_plain_peer(SILENT, port);
        o.ca_file = cert("no-such-file.pem");
        ck_assert_int_eq(connect_fails(loop, "localhost", port, &o, msg, sizeof msg), -ENOENT);
        ck_assert_msg(strstr(msg, "[Errno 2] ") == msg && strstr(msg, "no-such-file.pem"),
                      "message %s", msg);
        ck_assert_int_eq(child_status(pid), 0);
    }

    /* A server whose certificate is missing, or not a certificate. */
    o = server_opts("missing");
    f = as_start_server_tls(loop, on_echo_client, NULL, NULL, "127.0.0.1", "0", NULL, &o);
    ck_assert_int_eq(outcome(loop, f, msg, sizeof msg), -ENOENT);
    as_future_unref(f);
    junk = fopen(cert("junk.pem"), "w");
    ck_assert_ptr_nonnull(junk);
    fputs("this is not PEM\n", junk);
    fclose(junk);
    o.cert_file = o.key_file = cert("junk.pem");
    f = as_start_server_tls(loop, on_echo_client, NULL, NULL, "127.0.0.1", "0", NULL, &o);
    ck_assert_int_eq(outcome(loop, f, msg, sizeof msg), AS_ETLS);
    ck_assert_msg(strncmp(msg, "[PEM: ", 6) == 0 || strncmp(msg, "[SSL: ", 6) == 0,
                  "message %s", msg);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(tls_over_a_unix_socket)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char path[300];
    as_future *f;
    as_server *s;
    as_connection *c;

    snprintf(path, sizeof path, "%s/tls.sock", certdir);
    f = as_start_unix_server_tls(loop, on_echo_client, &stats, NULL, path, NULL, &so);
    ck_assert_int_eq(wait_for(loop, f), 0);
    s = as_future_take_result(f);
    as_future_unref(f);
    co.server_hostname = "localhost";
    f = as_open_unix_connection_tls(loop, path, NULL, &co);
    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    ck_assert_int_eq(as_writer_write(c->writer, "unix\n", 5), 0);
    expect_line(loop, c->reader, "unix\n");
    close_conn(loop, c);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(cancelling_open_connection_during_the_handshake)
{
    as_loop *loop = tu_loop();
    as_tls_options co = client_opts();
    char port[16];
    pid_t pid = spawn_plain_peer(SILENT, port);
    as_future *f = as_open_connection_tls(loop, "localhost", port, NULL, &co);

    run_for(loop, 0.2); /* connected, handshaking with a silent peer */
    ck_assert(!as_future_done(f));
    ck_assert_int_eq(as_future_cancel(f, NULL), 1);
    run_for(loop, 0.05);
    as_future_unref(f);
    ck_assert_int_eq(child_status(pid), 0); /* it saw the connection end */
    tu_close(loop);
}
END_TEST

START_TEST(a_client_that_is_not_tls_is_reported_and_the_server_goes_on)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    struct reports rep = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char port[16];
    as_server *s;
    as_connection *c;
    as_future *f;
    as_bytes *b;

    as_loop_set_exception_handler(loop, record_report, &rep, NULL);
    s = start_echo(loop, &stats, &so, port);
    f = as_open_connection(loop, "127.0.0.1", port, NULL);
    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    ck_assert_int_eq(as_writer_write(c->writer, "GET / HTTP/1.0\r\n\r\n", 18), 0);
    b = read_ok(loop, as_reader_read(c->reader, -1)); /* an alert, then EOF */
    free(b);
    close_conn(loop, c);
    while (rep.n == 0)
        run_for(loop, 0.01);
    ck_assert_str_eq(rep.message, "SSL handshake failed");
    ck_assert_int_eq(rep.code, AS_ETLS);
    ck_assert_int_eq(stats.connections, 0);
    c = connect_tls(loop, "localhost", port, &co);
    ck_assert_int_eq(as_writer_write(c->writer, "still here\n", 11), 0);
    expect_line(loop, c->reader, "still here\n");
    close_conn(loop, c);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(the_peers_close_notify_is_eof_and_closes_the_connection)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char port[16];
    as_server *s = start_echo(loop, &stats, &so, port);
    as_connection *c = connect_tls(loop, "localhost", port, &co);
    as_bytes *b;
    as_future *f;

    as_server_close_clients(s); /* the server's close(): close_notify */
    b = read_ok(loop, as_reader_read(c->reader, -1));
    ck_assert_uint_eq(b->len, 0);
    free(b);
    f = as_writer_wait_closed(c->writer);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    ck_assert(as_writer_is_closing(c->writer));
    ck_assert_int_eq(as_writer_write(c->writer, "late", 4), AS_ECLOSED);
    as_connection_free(c);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

START_TEST(dropping_an_open_tls_writer_is_reported_and_leaks_nothing)
{
    as_loop *loop = tu_loop();
    struct served stats = {0};
    struct reports rep = {0};
    as_tls_options so = server_opts("server"), co = client_opts();
    char port[16];
    as_server *s;
    as_connection *c;

    as_loop_set_exception_handler(loop, record_report, &rep, NULL);
    s = start_echo(loop, &stats, &so, port);
    c = connect_tls(loop, "localhost", port, &co);
    as_connection_free(c); /* never closed */
    ck_assert_int_eq(rep.n, 1);
    ck_assert_int_eq(strncmp(rep.message, "unclosed StreamWriter", 21), 0);
    stop_server(loop, s);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ main */

static void remove_certdir(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", certdir);
    if (system(cmd) != 0)
        fprintf(stderr, "check_tls: could not remove %s\n", certdir);
}

int main(void)
{
    const char *srcdir = getenv("top_srcdir");
    char cmd[800];
    Suite *suite;
    TCase *tc;
    int rc;

    if (!as_tls_available()) {
        printf("check_tls: SKIP: built without OpenSSL (configure --without-openssl)\n");
        return 77;
    }
    if (system("openssl version >/dev/null 2>&1") != 0) {
        printf("check_tls: SKIP: no openssl program to make certificates and be a peer\n");
        return 77;
    }
    snprintf(certdir, sizeof certdir, "%s/as-tls-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(certdir)) {
        perror("check_tls: mkdtemp");
        return 99;
    }
    snprintf(cmd, sizeof cmd, "sh '%s/tests/tls_certs.sh' '%s'", srcdir ? srcdir : ".", certdir);
    if (system(cmd) != 0) {
        fprintf(stderr, "check_tls: tests/tls_certs.sh failed\n");
        remove_certdir();
        return 99;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer process that ends early */
    /* The tests choose their trust explicitly. */
    unsetenv("SSL_CERT_FILE");
    unsetenv("SSL_CERT_DIR");

    suite = suite_create("tls");
    tc = tcase_create("tls");
    tcase_set_timeout(tc, tu_under_valgrind() ? 600 : 60);
    tcase_add_test(tc, echo_with_our_server_and_extra_info);
    tcase_add_test(tc, an_ip_address_is_checked_against_the_certificate_and_not_sent_as_sni);
    tcase_add_test(tc, https_get_against_openssl_s_server);
    tcase_add_test(tc, openssl_s_client_against_our_server);
    tcase_add_test(tc, mutual_tls_with_a_client_certificate);
    tcase_add_test(tc, mutual_tls_without_a_client_certificate_fails_on_both_sides);
    tcase_add_test(tc, mutual_tls_with_openssl_s_client);
    tcase_add_test(tc, alpn_picks_the_servers_first_choice_the_client_offers);
    tcase_add_test(tc, alpn_against_openssl_s_server);
    tcase_add_test(tc, verification_fails_for_a_wrong_host_name);
    tcase_add_test(tc, verification_fails_for_an_unknown_ca);
    tcase_add_test(tc, verification_fails_for_an_expired_certificate);
    tcase_add_test(tc, verification_fails_for_a_self_signed_certificate);
    tcase_add_test(tc, the_system_trust_store_does_not_know_the_test_ca);
    tcase_add_test(tc, ssl_cert_file_trusts_the_test_ca_for_the_default_store);
    tcase_add_test(tc, verification_can_be_relaxed);
    tcase_add_test(tc, the_handshake_timeout_aborts_and_closes_the_fd);
    tcase_add_test(tc, a_peer_that_is_not_tls);
    tcase_add_test(tc, a_reset_during_the_handshake);
    tcase_add_test(tc, an_eof_during_the_handshake_is_a_reset);
    tcase_add_test(tc, eof_without_close_notify_after_data_is_eof);
    tcase_add_test(tc, plaintext_decrypted_before_an_error_is_read_first);
    tcase_add_test(tc, wait_closed_ends_after_the_shutdown_timeout_when_nobody_answers);
    tcase_add_test(tc, start_tls_with_the_client_hello_in_the_same_segment);
    tcase_add_test(tc, start_tls_on_both_sides);
    tcase_add_test(tc, start_tls_sends_what_was_written_before_as_plaintext_first);
    tcase_add_test(tc, a_full_reader_pauses_both_layers_and_resuming_loses_nothing);
    tcase_add_test(tc, writes_during_the_handshake_count_and_drain_waits);
    tcase_add_test(tc, start_tls_refuses_what_it_cannot_do_and_leaves_the_connection_alone);
    tcase_add_test(tc, bad_options_fail_with_a_clear_error);
    tcase_add_test(tc, tls_over_a_unix_socket);
    tcase_add_test(tc, cancelling_open_connection_during_the_handshake);
    tcase_add_test(tc, a_client_that_is_not_tls_is_reported_and_the_server_goes_on);
    tcase_add_test(tc, the_peers_close_notify_is_eof_and_closes_the_connection);
    tcase_add_test(tc, dropping_an_open_tls_writer_is_reported_and_leaks_nothing);
    suite_add_tcase(suite, tc);
    tc = tcase_create("bulk");
    tcase_set_timeout(tc, tu_under_valgrind() ? 600 : 120);
    tcase_add_test(tc, sixty_four_mib_each_way_through_our_server);
    suite_add_tcase(suite, tc);
    rc = tu_run(suite);
    remove_certdir();
    return rc;
}
