/*
 * bulk_lines.c - a pipelined line protocol, to measure what write
 * coalescing buys (transport.c, "Coalescing").
 *
 *   bulk_lines server COALESCE   serve one connection: readline() ->
 *                                write(line) -> drain(), until EOF; prints
 *                                "PORT n" first.  COALESCE is 1 or 0.
 *   bulk_lines client PORT N DEPTH
 *                                a blocking client keeping DEPTH 64-byte
 *                                lines in flight until N lines came back;
 *                                prints lines/s.
 *
 * bench/bulk_run.sh runs the server under `strace -c` and divides its
 * system calls by the number of lines.
 */
#include <asyncstreams.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE 64

struct server {
    as_loop *loop;
    as_reader *reader;
    as_writer *writer;
    unsigned long lines;
    int status;
};

static void serve(struct server *s);

static void stop(struct server *s, int status)
{
    s->status = status;
    as_loop_stop(s->loop);
}

static void on_drained(as_future *f, void *ud)
{
    struct server *s = ud;
    if (as_future_error(f) != 0)
        stop(s, 1);
    else
        serve(s);
}

/* One line: echo it, then go on (or wait for drain). */
static int handle(struct server *s, as_future *f)
{
    as_bytes *line;
    as_future *d;
    if (as_future_error(f) != 0) {
        stop(s, 1);
        return 0;
    }
    line = as_future_result(f);
    if (line->len == 0) { /* EOF */
        stop(s, 0);
        return 0;
    }
    s->lines++;
    if (as_writer_write(s->writer, line->data, line->len) != 0) {
        stop(s, 1);
        return 0;
    }
    d = as_writer_drain(s->writer);
    if (!as_future_done(d)) {
        /* Above high water (rare here): go on once drained. */
        as_future_add_done_callback(d, on_drained, s, NULL);
        as_future_unref(d);
        return 0;
    }
    as_future_unref(d);
    return 1;
}

static void on_line(as_future *f, void *ud)
{
    struct server *s = ud;
    if (handle(s, f))
        serve(s);
}

static void serve(struct server *s)
{
    for (;;) {
        as_future *f = as_reader_readline(s->reader);
        if (!as_future_done(f)) {
            as_future_add_done_callback(f, on_line, s, NULL);
            as_future_unref(f);
            return;
        }
        if (!handle(s, f)) {
            as_future_unref(f);
            return;
        }
        as_future_unref(f);
    }
}

static int server(int coalesce)
{
    struct server s;
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    as_transport *t;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), fd;

    memset(&s, 0, sizeof s);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 1) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
        return 1;
    printf("PORT %u\n", (unsigned)ntohs(sin.sin_port));
    fflush(stdout);
    if ((fd = accept(lfd, NULL, NULL)) < 0 || as_loop_new(&s.loop) != 0 ||
        as_reader_new(s.loop, AS_READER_DEFAULT_LIMIT, &s.reader) != 0 ||
        as_socket_transport_new(s.loop, fd, s.reader, &t) != 0 ||
        as_writer_new(t, s.reader, &s.writer) != 0)
        return 1;
    as_transport_unref(t);
    as_socket_transport_set_coalescing(as_writer_transport(s.writer), coalesce);
    serve(&s);
    if (as_loop_run_forever(s.loop) != 0)
        s.status = 1;
    as_writer_close(s.writer);
    as_writer_unref(s.writer);
    as_reader_unref(s.reader);
    as_loop_close(s.loop);
    fprintf(stderr, "server: %lu lines echoed (coalescing %s)\n", s.lines,
            coalesce ? "on" : "off");
    return s.status;
}

static int client(const char *port, unsigned long n, unsigned long depth)
{
    struct sockaddr_in sin;
    char line[LINE], buf[65536];
    unsigned long sent = 0;
    unsigned long long want = (unsigned long long)n * LINE, got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct timespec t0, t1;
    double secs;

    memset(line, 'x', sizeof line);
    line[LINE - 1] = '\n';
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)atoi(port));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
        return 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* Fill the pipeline, then send one line per line that comes back. */
    while (got < want) {
        unsigned long in_flight = sent - (unsigned long)(got / LINE);
        if (sent < n && in_flight < depth) {
            unsigned long k = depth - in_flight, i;
            char out[LINE * 64];
            if (k > n - sent)
                k = n - sent;
            if (k > 64)
                k = 64;
            for (i = 0; i < k; i++)
                memcpy(out + i * LINE, line, LINE);
            if (send(fd, out, k * LINE, 0) != (ssize_t)(k * LINE))
                return 1;
            sent += k;
        }
        {
            ssize_t r = recv(fd, buf, sizeof buf, 0);
            if (r <= 0)
                return 1;
            got += (unsigned long long)r;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("client: %lu lines, depth %lu: %.0f lines/s\n", n, depth, (double)n / secs);
    close(fd);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "server") == 0)
        return server(atoi(argv[2]));
    if (argc >= 5 && strcmp(argv[1], "client") == 0)
        return client(argv[2], strtoul(argv[3], NULL, 10), strtoul(argv[4], NULL, 10));
    fprintf(stderr, "usage: bulk_lines server 0|1 | client PORT N DEPTH\n");
    return 2;
}
