/*
 * https_status.c - a site-status checker: is https://HOST/ up, and what
 * does it answer?
 *
 *     async def status(host, port=443):
 *         reader, writer = await asyncio.open_connection(host, port,
 *                                                        ssl=True)
 *         writer.write(f'HEAD / HTTP/1.1\r\nHost: {host}\r\n'
 *                      'Connection: close\r\n\r\n'.encode())
 *         line = await reader.readline()
 *         writer.close()
 *         await writer.wait_closed()
 *         return line        # b'HTTP/1.1 200 OK\r\n'
 *
 * ssl=True verifies the server: its certificate must chain to a CA in
 * the system's trust store (or the one --cafile names, or SSL_CERT_FILE)
 * and name HOST.  A failure is reported with CPython's words, e.g.
 * "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: ...".
 *
 * Usage: https_status [--cafile FILE] HOST [PORT]
 *   Prints "HOST: STATUS LINE" and exits 0 for a 2xx or 3xx status, 1 for
 *   any other status or error.  tests/tls_examples.sh runs it against a
 *   CPython 3.13 HTTPS server with a test CA (chapter 14).
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct check {
    int pc;
    const char *host, *port;
    as_tls_options tls;
    as_connection *conn;
    as_bytes *line;        /* the status line */
    int code;              /* the HTTP status, 0 if none was read */
};

/* listing: status */
static as_step status_step(as_task *t, void *p)
{
    struct check *c = p;
    char request[512];
    int n, err;

    AS_TASK_BEGIN(c);
    /* The connection is made, then verified: the result comes once the
     * handshake is done, so a bad certificate fails this await. */
    AS_AWAIT(t, c, as_open_connection_tls(as_task_loop(t), c->host, c->port, NULL,
                                          &c->tls));
    AS_TASK_CHECK(t);
    c->conn = as_task_take_result(t);

    n = snprintf(request, sizeof request,
                 "HEAD / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", c->host);
    if (n < 0 || (size_t)n >= sizeof request)
        AS_TASK_FAIL(t, AS_EINVAL, "host name too long");
    if ((err = as_writer_write(c->conn->writer, request, (size_t)n)) < 0)
        AS_TASK_FAIL(t, err, NULL);

    /* Plaintext in, plaintext out: readline() never sees a TLS record. */
    AS_AWAIT(t, c, as_reader_readline(c->conn->reader));
    AS_TASK_CHECK(t);
    c->line = as_task_take_result(t);
    if (c->line->len > 9 && memcmp(c->line->data, "HTTP/1.", 7) == 0)
        c->code = atoi((const char *)c->line->data + 9);

    /* close_notify, then the server's, then the socket closes. */
    as_writer_close(c->conn->writer);
    AS_AWAIT(t, c, as_writer_wait_closed(c->conn->writer));
    AS_TASK_END(t);
}
/* end listing */

int main(int argc, char **argv)
{
    struct check c;
    as_loop *loop;
    as_task *t;
    as_future *f;
    size_t len, pending;
    int argi = 1, err, status = 1;

    memset(&c, 0, sizeof c);
    /* listing: options */
    /* ssl=True: all zeros is create_default_context(), which verifies the
     * chain and the host name. */
    if (argi + 1 < argc && strcmp(argv[argi], "--cafile") == 0) {
        c.tls.ca_file = argv[argi + 1];     /* cafile=: trust this CA instead */
        argi += 2;
    }
    /* end listing */
    if (argc - argi < 1 || argc - argi > 2) {
        fprintf(stderr, "usage: https_status [--cafile FILE] HOST [PORT]\n");
        return 2;
    }
    c.host = argv[argi];
    c.port = argc - argi == 2 ? argv[argi + 1] : "443";

    if ((err = as_loop_new(&loop)) < 0) {
        fprintf(stderr, "https_status: loop: %s\n", as_strerror(err));
        return 1;
    }
    if ((err = as_task_new(loop, status_step, &c, NULL, &t)) < 0) {
        fprintf(stderr, "https_status: %s\n", as_strerror(err));
        as_loop_close(loop);
        return 1;
    }
    f = as_future_ref(as_task_future(t));
    as_task_unref(t);
    err = as_loop_run_until_complete(loop, f);
    if (err != 0) {
        fprintf(stderr, "https_status: %s: %s\n", c.host, as_future_error_message(f));
    } else {
        len = c.line->len;
        while (len > 0 && (c.line->data[len - 1] == '\n' || c.line->data[len - 1] == '\r'))
            len--;
        printf("%s: %.*s\n", c.host, (int)len, (const char *)c.line->data);
        status = c.code >= 200 && c.code < 400 ? 0 : 1;
    }
    as_future_unref(f);
    if (c.conn && err != 0)
        as_writer_abort(c.conn->writer);   /* failed halfway: no goodbye */
    as_connection_free(c.conn);
    free(c.line);
    pending = as_loop_pending(loop);
    if (as_loop_close(loop) != 0 || pending != 0) {
        fprintf(stderr, "https_status: something was left alive\n");
        status = 1;
    }
    return status;
}
