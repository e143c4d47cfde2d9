/*
 * tls_echo_server.c - chapter 10's echo server over TLS, and the same
 * server upgrading a plaintext connection with STARTTLS (chapter 14).
 *
 *     ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
 *     ctx.load_cert_chain(cert, key)
 *
 *     async def handle_echo(reader, writer):
 *         while line := await reader.readline():
 *             writer.write(line)
 *             await writer.drain()
 *         writer.close()
 *         await writer.wait_closed()
 *
 *     server = await asyncio.start_server(handle_echo, '127.0.0.1', port,
 *                                         ssl=ctx)
 *
 * With --starttls the server listens in plaintext, as SMTP and IMAP do, and
 * a client must first send the line "STARTTLS"; it gets "220 go ahead",
 * and the TLS handshake follows on the same connection:
 *
 *     async def handle_starttls(reader, writer):
 *         if await reader.readline() != b'STARTTLS\r\n':
 *             ...refuse and close...
 *         writer.write(b'220 go ahead\r\n')
 *         await writer.start_tls(ctx)
 *         await handle_echo(reader, writer)
 *
 * Usage: tls_echo_server [--starttls] CERT KEY PORT
 *   CERT and KEY are PEM files (tests/tls_certs.sh makes a test pair);
 *   PORT 0 lets the system pick.  Prints "PORT n", serves on 127.0.0.1
 *   until SIGINT or SIGTERM, then shuts down (clients get a second) and
 *   exits 0.  tests/tls_examples.sh runs it against CPython 3.13 clients.
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "serve.h"

struct app {
    as_loop *loop;
    as_server *server;
    as_tls_options tls;    /* our certificate, server side */
    int starttls;
    struct crew crew;
};

/* One client's coroutine. */
struct echo {
    int pc;
    struct app *app;
    as_reader *reader;
    as_writer *writer;
    int err;               /* why the loop ended; 0 at EOF */
};

static int is_starttls(const as_bytes *line)
{
    return (line->len == 10 && memcmp(line->data, "STARTTLS\r\n", 10) == 0) ||
           (line->len == 9 && memcmp(line->data, "STARTTLS\n", 9) == 0);
}

static as_step echo_step(as_task *t, void *p)
{
    struct echo *e = p;
    as_bytes *data;
    int ok;

    AS_TASK_BEGIN(e);
    if (e->app->starttls) {
        AS_AWAIT(t, e, as_reader_readline(e->reader));
        if ((e->err = as_task_error(t)) != 0)
            goto done;
        data = as_task_take_result(t);
        ok = is_starttls(data);
        free(data);
        if (!ok) {
            (void)as_writer_write(e->writer, "530 say STARTTLS first\r\n", 24);
            goto done;
        }
        /* listing: starttls */
        /* Written before start_tls(): it goes out first, in plaintext. */
        if ((e->err = as_writer_write(e->writer, "220 go ahead\r\n", 14)) < 0)
            goto done;
        /* Whatever the reader holds beyond the STARTTLS line (a client
         * that did not wait for our answer sent its ClientHello with it)
         * is handed to the TLS engine, not to us. */
        AS_AWAIT(t, e, as_writer_start_tls(e->writer, &e->app->tls));
        if ((e->err = as_task_error(t)) != 0) {
            fprintf(stderr, "tls_echo_server: handshake: %s\n", as_task_error_message(t));
            goto done;
        }
        /* The same reader and writer, now reading and writing plaintext
         * through TLS. */
        /* end listing */
    }
    for (;;) {
        AS_AWAIT(t, e, as_reader_readline(e->reader));
        if ((e->err = as_task_error(t)) != 0)
            break;
        data = as_task_take_result(t);
        if (data->len == 0) {
            free(data);
            break;                      /* b"": the client closed */
        }
        if ((e->err = as_writer_write_bytes(e->writer, data)) < 0)
            break;
        AS_AWAIT(t, e, as_writer_drain(e->writer));
        if ((e->err = as_task_error(t)) != 0)
            break;
    }
done:
    if (e->err != 0 && e->err != AS_ECANCELLED)
        fprintf(stderr, "tls_echo_server: client: %s\n", as_strerror(e->err));
    /* close() sends close_notify and waits (at most 30 s, the shutdown
     * timeout) for the client's; wait_closed() ends after it. */
    as_writer_close(e->writer);
    AS_AWAIT(t, e, as_writer_wait_closed(e->writer));
    if (e->err == AS_ECANCELLED)
        AS_TASK_FAIL(t, AS_ECANCELLED, NULL);
    AS_TASK_END(t);
}

static void echo_free(void *p)
{
    struct echo *e = p;
    as_reader_unref(e->reader);
    as_writer_unref(e->writer);
    crew_leave(&e->app->crew);
    free(e);
}

/* With ssl=, the server calls this only after the handshake: a client
 * whose handshake failed was reported and closed, and never reaches us. */
static as_future *on_client(as_reader *reader, as_writer *writer, void *userdata)
{
    struct app *app = userdata;
    struct echo *e = calloc(1, sizeof *e);
    as_future *f;
    as_task *t;
    int err = -ENOMEM;

    if (!e || (err = as_task_new(app->loop, echo_step, e, echo_free, &t)) < 0) {
        fprintf(stderr, "tls_echo_server: cannot serve a client: %s\n", as_strerror(err));
        free(e);
        as_writer_close(writer);
        as_writer_unref(writer);
        as_reader_unref(reader);
        return NULL;
    }
    e->app = app;
    e->reader = reader;
    e->writer = writer;
    crew_join(&app->crew);
    f = as_future_ref(as_task_future(t));
    as_task_unref(t);
    return f;
}

int main(int argc, char **argv)
{
    struct app app;
    size_t pending;
    int argi = 1, err, status;

    memset(&app, 0, sizeof app);
    if (argi < argc && strcmp(argv[argi], "--starttls") == 0) {
        app.starttls = 1;
        argi++;
    }
    if (argc - argi != 3) {
        fprintf(stderr, "usage: tls_echo_server [--starttls] CERT KEY PORT\n");
        return 2;
    }
    if (!as_tls_available()) {
        fprintf(stderr, "tls_echo_server: %s\n", as_strerror(AS_ENOTSUP));
        return 1;
    }
    /* listing: options */
    /* ssl.create_default_context(Purpose.CLIENT_AUTH) + load_cert_chain():
     * zeros are the defaults (TLS 1.2 at least, no client certificate
     * asked for). */
    app.tls.server_side = 1;
    app.tls.cert_file = argv[argi];
    app.tls.key_file = argv[argi + 1];
    /* end listing */
    if ((err = as_loop_new(&app.loop)) < 0) {
        fprintf(stderr, "tls_echo_server: loop: %s\n", as_strerror(err));
        return 1;
    }
    if ((err = crew_init(&app.crew, app.loop)) < 0) {
        fprintf(stderr, "tls_echo_server: %s\n", as_strerror(err));
        as_loop_close(app.loop);
        return 1;
    }
    /* start_server(..., ssl=ctx), or a plaintext server for --starttls. */
    status = serve_until_signal("tls_echo_server", app.loop, on_client, &app,
                                argv[argi + 2], app.starttls ? NULL : &app.tls,
                                &app.crew, &app.server);
    as_server_unref(app.server);
    as_event_free(app.crew.idle);
    pending = as_loop_pending(app.loop);
    if (as_loop_close(app.loop) != 0 || pending != 0) {
        fprintf(stderr, "tls_echo_server: something was left alive\n");
        status = 1;
    }
    return status;
}
