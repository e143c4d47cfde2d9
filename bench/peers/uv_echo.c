/*
 * uv_echo.c - libuv echo server, the main peer the targets are set against.
 *
 * usage: uv_echo PORT [MAX_SECONDS]
 *   PORT 0 picks a free port; prints "PORT n" on stdout once listening on
 *   127.0.0.1.  Exits cleanly on SIGTERM/SIGINT (so callgrind and strace -c
 *   write their totals), and by itself after MAX_SECONDS if given.
 *
 * Written to be as cheap as libuv allows, so that matching it means something:
 * every read lands in one 256 KiB buffer shared by all connections, and is
 * sent straight back with uv_try_write() (one send(), no request, no malloc).
 * Only if that send is partial is the rest copied into a uv_write() request;
 * the connection then stops reading until the write completes, which bounds
 * its memory.  (libuv's own test/echo-server.c mallocs a buffer per read and
 * always goes through uv_write(), which costs more.)
 */
#define _POSIX_C_SOURCE 200809L /* uv.h needs pthread_rwlock_t */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <uv.h>

#define READ_SIZE (256 * 1024)

struct conn {
    uv_tcp_t tcp;       /* first: the handle pointer is the conn pointer */
    uv_write_t wr;
    char *rest;         /* the unsent tail of a partial write, or NULL */
};

static char rbuf[READ_SIZE];
static uv_loop_t *loop;

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    (void)h;
    (void)suggested;
    *buf = uv_buf_init(rbuf, sizeof rbuf);
}

static void on_close(uv_handle_t *h)
{
    struct conn *c = (struct conn *)h;
    free(c->rest);
    free(c);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

static void on_written(uv_write_t *wr, int status)
{
    struct conn *c = wr->data;
    free(c->rest);
    c->rest = NULL;
    if (status < 0 || uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = (struct conn *)s;
    uv_buf_t b;
    int w;

    if (nread == 0)
        return;                 /* EAGAIN */
    if (nread < 0) {            /* UV_EOF or an error */
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    b = uv_buf_init(buf->base, (unsigned)nread);
    w = uv_try_write(s, &b, 1);
    if (w == UV_EAGAIN)
        w = 0;
    if (w < 0) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    if (w == nread)
        return;
    c->rest = malloc((size_t)(nread - w));
    if (!c->rest) {
        uv_close((uv_handle_t *)s, on_close);
        return;
    }
    memcpy(c->rest, buf->base + w, (size_t)(nread - w));
    b = uv_buf_init(c->rest, (unsigned)(nread - w));
    c->wr.data = c;
    uv_read_stop(s);
    if (uv_write(&c->wr, s, &b, 1, on_written) != 0)
        uv_close((uv_handle_t *)s, on_close);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct conn *c;
    if (status < 0)
        return;
    c = calloc(1, sizeof *c);
    if (!c)
        return;
    uv_tcp_init(loop, &c->tcp);
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
        uv_tcp_nodelay(&c->tcp, 1) != 0 ||
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        uv_close((uv_handle_t *)&c->tcp, on_close);
}

static void on_stop(uv_signal_t *h, int sig)
{
    (void)sig;
    uv_stop(h->loop);
}

static void on_timeout(uv_timer_t *t)
{
    uv_stop(t->loop);
}

int main(int argc, char **argv)
{
    uv_tcp_t server;
    uv_signal_t sterm, sint;
    uv_timer_t limit;
    struct sockaddr_in sa;
    int salen = sizeof sa, port, rc;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: uv_echo PORT [MAX_SECONDS]\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN); /* a peer that closes first must not kill us */
    port = atoi(argv[1]);
    loop = uv_default_loop();
    uv_tcp_init(loop, &server);
    uv_ip4_addr("127.0.0.1", port, &sa);
    if ((rc = uv_tcp_bind(&server, (const struct sockaddr *)&sa, 0)) != 0 ||
        (rc = uv_listen((uv_stream_t *)&server, 1024, on_connection)) != 0 ||
        (rc = uv_tcp_getsockname(&server, (struct sockaddr *)&sa, &salen)) != 0) {
        fprintf(stderr, "uv_echo: listen: %s\n", uv_strerror(rc));
        return 1;
    }
    uv_signal_init(loop, &sterm);
    uv_signal_start(&sterm, on_stop, SIGTERM);
    uv_unref((uv_handle_t *)&sterm);
    uv_signal_init(loop, &sint);
    uv_signal_start(&sint, on_stop, SIGINT);
    uv_unref((uv_handle_t *)&sint);
    if (argc == 3) {
        uv_timer_init(loop, &limit);
        uv_timer_start(&limit, on_timeout, 1000 * strtoull(argv[2], NULL, 10), 0);
        uv_unref((uv_handle_t *)&limit);
    }
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    return 0;
}
