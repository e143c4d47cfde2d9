/*
 * bulk_transfer.c - 1 GiB over loopback TCP, two ways, in one run:
 *
 *   blocking: a plain C sender (write() of 64 KiB blocks) and a plain C
 *             receiver (read() until 64 KiB are in), each blocking; the floor.
 *   streams:  the sender is StreamWriter write() + drain() per 64 KiB chunk,
 *             the receiver StreamReader readexactly(64 KiB), each on its own
 *             loop in its own process (as two programs would be).
 *
 * Each mode forks a receiver and a sender process; reports wall MiB/s and
 * the CPU seconds per GiB of both processes (user + system, from
 * getrusage(RUSAGE_CHILDREN) around the pair).  Every byte is counted and
 * the last chunk's contents checked, so a broken transfer cannot look fast.
 *
 *   bench/bulk_transfer [MiB] [runs]     (defaults: 1024 MiB, 3 runs)
 */
#include <asyncstreams.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static unsigned long long total_bytes;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int listener(char port[16], int *lfd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 1) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
        return -1;
    snprintf(port, 16, "%u", (unsigned)ntohs(sin.sin_port));
    *lfd = fd;
    return 0;
}

static int connect_blocking(const char *port)
{
    struct sockaddr_in sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = htons((unsigned short)atoi(port));
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
        return -1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* ------------------------------------------------------------ blocking */

static int blocking_send(const char *port)
{
    static unsigned char buf[CHUNK];
    unsigned long long sent = 0;
    int fd = connect_blocking(port);
    memset(buf, 'b', sizeof buf);
    if (fd < 0)
        return 1;
    while (sent < total_bytes) {
        size_t off = 0;
        while (off < CHUNK) {
            ssize_t n = write(fd, buf + off, CHUNK - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return 1;
            off += (size_t)n;
        }
        sent += CHUNK;
    }
    close(fd);
    return 0;
}

static int blocking_recv(int lfd)
{
    static unsigned char buf[CHUNK];
    unsigned long long got = 0;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        return 1;
    while (got < total_bytes) {
        size_t off = 0;
        while (off < CHUNK) { /* "readexactly" by hand */
            ssize_t n = read(fd, buf + off, CHUNK - off);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return 1;
            off += (size_t)n;
        }
        got += CHUNK;
    }
    return buf[CHUNK - 1] == 'b' && got == total_bytes ? 0 : 1;
}

/* ------------------------------------------------------------ streams */

struct sender {
    as_loop *loop;
    as_connection *conn;
    unsigned char buf[CHUNK];
    unsigned long long sent;
    int status;
};

static void pump(struct sender *s);

static void on_closed(as_future *f, void *ud)
{
    struct sender *s = ud;
    if (as_future_error(f) != 0)
        s->status = 1;
    as_loop_stop(s->loop);
}

static void on_drained(as_future *f, void *ud)
{
    struct sender *s = ud;
    if (as_future_error(f) != 0) {
        s->status = 1;
        as_loop_stop(s->loop);
        return;
    }
    pump(s);
}

/* while sent < total: write(chunk); await drain() */
static void pump(struct sender *s)
{
    as_future *f;
    while (s->sent < total_bytes) {
        if (as_writer_write(s->conn->writer, s->buf, CHUNK) != 0) {
            s->status = 1;
            as_loop_stop(s->loop);
            return;
        }
        s->sent += CHUNK;
        f = as_writer_drain(s->conn->writer);
        if (!as_future_done(f)) {
            as_future_add_done_callback(f, on_drained, s, NULL);
            as_future_unref(f);
            return;
        }
        if (as_future_error(f) != 0)
            s->status = 1;
        as_future_unref(f);
        if (s->status) {
            as_loop_stop(s->loop);
            return;
        }
    }
    as_writer_close(s->conn->writer);
    f = as_writer_wait_closed(s->conn->writer);
    as_future_add_done_callback(f, on_closed, s, NULL);
    as_future_unref(f);
}

static void on_connected(as_future *f, void *ud)
{
    struct sender *s = ud;
    if (as_future_error(f) != 0) {
        s->status = 1;
        as_loop_stop(s->loop);
        return;
    }
    s->conn = as_future_take_result(f);
    pump(s);
}

static int streams_send(const char *port)
{
    static struct sender s;
    as_future *f;
    memset(s.buf, 's', sizeof s.buf);
    if (as_loop_new(&s.loop) != 0)
        return 1;
    f = as_open_connection(s.loop, "127.0.0.1", port, NULL);
    as_future_add_done_callback(f, on_connected, &s, NULL);
    as_future_unref(f);
    if (as_loop_run_forever(s.loop) != 0)
        s.status = 1;
    as_connection_free(s.conn);
    as_loop_close(s.loop);
    return s.status;
}

struct receiver {
    as_loop *loop;
    as_reader *reader;
    as_transport *t;
    unsigned long long got;
    int status;
};

static void next_read(struct receiver *r);

static void on_chunk(as_future *f, void *ud)
{
    struct receiver *r = ud;
    as_bytes *b;
    if (as_future_error(f) != 0) {
        r->status = 1;
        as_loop_stop(r->loop);
        return;
    }
    b = as_future_result(f);
    r->got += b->len;
    if (r->got == total_bytes && b->data[b->len - 1] != 's')
        r->status = 1;
    next_read(r);
}

/* while got < total: await readexactly(64 KiB); without a callback per
 * chunk when the buffer already holds the next one. */
static void next_read(struct receiver *r)
{
    while (r->got < total_bytes) {
        as_future *f = as_reader_readexactly(r->reader, CHUNK);
        if (!as_future_done(f)) {
            as_future_add_done_callback(f, on_chunk, r, NULL);
            as_future_unref(f);
            return;
        }
        if (as_future_error(f) != 0) {
            r->status = 1;
            as_future_unref(f);
            as_loop_stop(r->loop);
            return;
        }
        r->got += ((as_bytes *)as_future_result(f))->len;
        as_future_unref(f);
    }
    as_loop_stop(r->loop);
}

static int streams_recv(int lfd)
{
    static struct receiver r;
    int fd = accept(lfd, NULL, NULL);
    if (fd < 0 || as_loop_new(&r.loop) != 0 ||
        as_reader_new(r.loop, AS_READER_DEFAULT_LIMIT, &r.reader) != 0 ||
        as_socket_transport_new(r.loop, fd, r.reader, &r.t) != 0)
        return 1;
    next_read(&r);
    if (r.got < total_bytes && as_loop_run_forever(r.loop) != 0)
        r.status = 1;
    if (r.got != total_bytes)
        r.status = 1;
    as_transport_abort(r.t);
    as_transport_unref(r.t);
    as_reader_unref(r.reader);
    as_loop_close(r.loop);
    return r.status;
}

/* ------------------------------------------------------------ driver */

static double cpu_children(void)
{
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static int run(const char *mode)
{
    char port[16];
    int lfd, st1, st2, streams = strcmp(mode, "streams") == 0;
    pid_t rx, tx;
    double t0, t1, c0, c1, gib = (double)total_bytes / (1024.0 * 1024 * 1024);

    if (listener(port, &lfd) < 0)
        return 1;
    c0 = cpu_children();
    t0 = now();
    if ((rx = fork()) == 0)
        _exit(streams ? streams_recv(lfd) : blocking_recv(lfd));
    close(lfd);
    if ((tx = fork()) == 0)
        _exit(streams ? streams_send(port) : blocking_send(port));
    waitpid(tx, &st1, 0);
    waitpid(rx, &st2, 0);
    t1 = now();
    c1 = cpu_children();
    if (!WIFEXITED(st1) || WEXITSTATUS(st1) || !WIFEXITED(st2) || WEXITSTATUS(st2)) {
        printf("%-9s FAILED (sender %d, receiver %d)\n", mode, st1, st2);
        return 1;
    }
    printf("%-9s %8.0f MiB/s  %6.2f CPU-s/GiB (both sides)  %.2f s\n", mode,
           (double)total_bytes / (1024.0 * 1024) / (t1 - t0), (c1 - c0) / gib, t1 - t0);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    unsigned long mib = argc > 1 ? strtoul(argv[1], NULL, 10) : 1024;
    int runs = argc > 2 ? atoi(argv[2]) : 3, i, status = 0;
    total_bytes = (unsigned long long)mib * 1024 * 1024;
    total_bytes -= total_bytes % CHUNK;
    printf("bulk transfer over loopback TCP: %lu MiB in 64 KiB chunks, %d runs each, interleaved\n",
           mib, runs);
    for (i = 0; i < runs; i++) {
        status |= run("blocking");
        status |= run("streams");
    }
    return status;
}
