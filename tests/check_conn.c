/* check_conn.c - transport, StreamWriter, open_connection over real sockets. */
#include "testutil.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

/* A listening TCP socket on 127.0.0.1 (or ::1), port chosen by the OS. */
static int listener(int family, char port[16])
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int fd = socket(family, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    memset(&ss, 0, sizeof ss);
    if (family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        len = sizeof *in;
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        in6->sin6_family = AF_INET6;
        in6->sin6_addr = in6addr_loopback;
        len = sizeof *in6;
    }
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&ss, len), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    len = sizeof ss;
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    snprintf(port, 16, "%u", family == AF_INET
             ? (unsigned)ntohs(((struct sockaddr_in *)&ss)->sin_port)
             : (unsigned)ntohs(((struct sockaddr_in6 *)&ss)->sin6_port));
    return fd;
}

/* Run the loop until f is done; return its outcome. */
static int wait_for(as_loop *loop, as_future *f)
{
    int rc = as_loop_run_until_complete(loop, f);
    ck_assert(as_future_done(f));
    return rc;
}

/* open_connection to 127.0.0.1:port that must succeed. */
static as_connection *connect_ok(as_loop *loop, const char *host, const char *port,
                                 const as_connect_options *opts)
{
    as_future *f = as_open_connection(loop, host, port, opts);
    as_connection *c;
    int rc;
    ck_assert_ptr_nonnull(f);
    rc = wait_for(loop, f);
    ck_assert_msg(rc == 0, "connect failed: %s %s", as_err_name(rc),
                  as_future_error_message(f) ? as_future_error_message(f) : "");
    c = as_future_take_result(f);
    ck_assert_ptr_nonnull(c);
    as_future_unref(f);
    return c;
}

static int accept_peer(int lfd)
{
    int fd = accept(lfd, NULL, NULL);
    struct timeval tv = {10, 0};
    ck_assert_int_ge(fd, 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

/* One loop turn that cannot block.  No ck_assert on the hot path: in
 * Check, each passing assertion writes its location to a pipe, and these
 * loops run tens of thousands of times. */
static void turn(as_loop *loop)
{
    if (as_loop_call_soon(loop, tu_noop, NULL, NULL, NULL) != 0 ||
        as_loop_run_once(loop) != 0)
        ck_abort_msg("loop turn failed");
}

/* Receive from the peer fd without blocking, turning the loop between
 * tries, until n bytes arrived or EOF.  Returns the count. */
static size_t peer_read(as_loop *loop, int fd, unsigned char *buf, size_t n)
{
    size_t got = 0;
    int idle = 0;
    while (got < n && idle < 200000) {
        ssize_t r = recv(fd, buf + got, n - got, MSG_DONTWAIT);
        if (r > 0) {
            got += (size_t)r;
            idle = 0;
        } else if (r == 0) {
            break;
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ck_abort_msg("peer recv: %s", strerror(errno));
            idle++;
        }
        turn(loop);
    }
    return got;
}

/* Close a connection the polite way and let the loop finish with it. */
static void close_conn(as_loop *loop, as_connection *c)
{
    as_future *f;
    as_writer_close(c->writer);
    f = as_writer_wait_closed(c->writer);
    (void)wait_for(loop, f);
    as_future_unref(f);
    as_connection_free(c);
}

/* Read with the reader; returns the future's outcome, result in *out. */
static int reader_wait(as_loop *loop, as_future *f, as_bytes **out)
{
    int rc;
    ck_assert_ptr_nonnull(f);
    rc = as_future_done(f) ? as_future_error(f) : wait_for(loop, f);
    if (out)
        *out = rc == 0 ? as_future_take_result(f) : NULL;
    as_future_unref(f);
    return rc;
}

/* A blocking send of everything (the kernel's buffers hold 64 KiB). */
static int write_all_fd(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0)
            return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void pattern(unsigned char *buf, size_t n, size_t offset)
{
    size_t i;
    for (i = 0; i < n; i++)
        buf[i] = (unsigned char)((offset + i) * 7 + ((offset + i) >> 13));
}

/* Small kernel buffers, so our write queue (not the kernel) absorbs the
 * backlog.  The receive buffer must stay well above twice the loopback MSS
 * (64 KiB): below that Linux sends no window updates when the application
 * reads, and the sender stalls on the zero-window probe timer. */
static void small_buffers(int fd, int snd, int rcv)
{
    if (snd)
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd), 0);
    if (rcv)
        ck_assert_int_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv), 0);
}

/* ------------------------------------------------------------ basics */

START_TEST(connect_exchange_and_extra_info)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd, one = 0;
    socklen_t len = sizeof one;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    struct sockaddr_storage ss;
    char text[64];
    unsigned char buf[16];
    as_bytes *line;

    pfd = accept_peer(lfd);
    /* get_extra_info: peername is the listener, sockname is ours. */
    ck_assert_int_eq(as_writer_peername(c->writer, &ss, &len), 0);
    as_format_sockaddr((struct sockaddr *)&ss, len, text, sizeof text);
    ck_assert(strstr(text, "'127.0.0.1'") != NULL && strstr(text, port) != NULL);
    len = sizeof ss;
    ck_assert_int_eq(as_writer_sockname(c->writer, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET);
    ck_assert_int_ge(as_writer_fd(c->writer), 0);
    /* TCP_NODELAY is on, as in CPython. */
    len = sizeof one;
    ck_assert_int_eq(getsockopt(as_writer_fd(c->writer), IPPROTO_TCP, TCP_NODELAY,
                                &one, &len), 0);
    ck_assert_int_ne(one, 0);
    ck_assert_int_eq(fcntl(as_writer_fd(c->writer), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);

    /* A small write leaves within one loop turn, with no drain. */
    ck_assert_int_eq(as_writer_write(c->writer, "hello", 5), 0);
    ck_assert_int_eq(recv(pfd, buf, sizeof buf, MSG_DONTWAIT), -1);
    ck_assert_int_eq(as_loop_run_once(loop), 0);
    ck_assert_int_eq(recv(pfd, buf, sizeof buf, MSG_DONTWAIT), 5);
    ck_assert_int_eq(memcmp(buf, "hello", 5), 0);
    ck_assert_uint_eq(as_writer_bytes_sent(c->writer), 5);

    /* The peer's reply, then its FIN: readline, then EOF; writing stays
     * open after the peer's FIN. */
    ck_assert_int_eq(send(pfd, "world\nrest", 10, 0), 10);
    shutdown(pfd, SHUT_WR);
    ck_assert_int_eq(reader_wait(loop, as_reader_readline(c->reader), &line), 0);
    ck_assert_uint_eq(line->len, 6);
    ck_assert_int_eq(memcmp(line->data, "world\n", 6), 0);
    free(line);
    ck_assert_int_eq(reader_wait(loop, as_reader_read(c->reader, -1), &line), 0);
    ck_assert_uint_eq(line->len, 4);
    free(line);
    ck_assert(as_reader_at_eof(c->reader));
    ck_assert_int_eq(as_writer_write(c->writer, "after", 5), 0);
    ck_assert_uint_eq(peer_read(loop, pfd, buf, 5), 5);

    close_conn(loop, c);
    ck_assert_int_eq(recv(pfd, buf, sizeof buf, 0), 0); /* our FIN */
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(zero_length_write_is_a_noop)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    size_t pending;
    struct iovec iov[3] = {{(void *)"x", 1}, {NULL, 0}, {(void *)"yz", 2}};
    unsigned char buf[8];

    pfd = accept_peer(lfd);
    pending = as_loop_pending(loop);
    ck_assert_int_eq(as_writer_write(c->writer, NULL, 0), 0);
    ck_assert_int_eq(as_writer_write(c->writer, "", 0), 0);
    ck_assert_uint_eq(as_writer_get_write_buffer_size(c->writer), 0);
    ck_assert_uint_eq(as_loop_pending(loop), pending); /* nothing scheduled */
    ck_assert_int_eq(as_writer_write(c->writer, NULL, 3), AS_EINVAL);
    /* writelines with an empty buffer in the middle: the empty piece must
     * not stall the queue (close() would then never finish). */
    ck_assert_int_eq(as_writer_writelines(c->writer, iov, 3), 0);
    ck_assert_uint_eq(peer_read(loop, pfd, buf, 3), 3);
    ck_assert_int_eq(memcmp(buf, "xyz", 3), 0);
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ owned writes */

/* A buffer handed over with as_writer_write_owned(): counts its releases. */
struct owned {
    unsigned char *data;
    int released;
    as_writer *abort_on_release; /* a hook that closes its own connection */
};

static void owned_release(void *p)
{
    struct owned *o = p;
    o->released++;
    if (o->abort_on_release)
        as_writer_abort(o->abort_on_release);
}

START_TEST(owned_writes_keep_their_order_and_are_released_once_sent)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char mid[1000], buf[1100];
    struct owned o = {mid, 0, NULL};
    as_bytes *b = tu_bytes("tail", 4);
    size_t pending;

    pfd = accept_peer(lfd);
    memset(mid, 'm', sizeof mid);
    /* Copied, adopted, copied, adopted: one flush, in order. */
    ck_assert_int_eq(as_writer_write(c->writer, "head", 4), 0);
    ck_assert_int_eq(as_writer_write_owned(c->writer, mid, sizeof mid, &o, owned_release), 0);
    ck_assert_int_eq(as_writer_write(c->writer, "--", 2), 0);
    ck_assert_int_eq(as_writer_write_bytes(c->writer, b), 0); /* b is the writer's now */
    ck_assert_uint_eq(as_writer_get_write_buffer_size(c->writer), 4 + 1000 + 2 + 4);
    /* Coalesced: nothing sent yet, so nothing released yet. */
    ck_assert_int_eq(o.released, 0);
    ck_assert_uint_eq(peer_read(loop, pfd, buf, 1010), 1010);
    ck_assert_int_eq(memcmp(buf, "head", 4), 0);
    ck_assert_int_eq(memcmp(buf + 4, mid, 1000), 0);
    ck_assert_int_eq(memcmp(buf + 1004, "--tail", 6), 0);
    ck_assert_int_eq(o.released, 1);
    ck_assert_uint_eq(as_writer_bytes_sent(c->writer), 1010);

    /* Zero bytes: accepted and released at once, nothing scheduled. */
    pending = as_loop_pending(loop);
    ck_assert_int_eq(as_writer_write_owned(c->writer, NULL, 0, &o, owned_release), 0);
    ck_assert_int_eq(o.released, 2);
    ck_assert_uint_eq(as_loop_pending(loop), pending);
    /* No release hook, or no bytes behind a length: refused, not released. */
    ck_assert_int_eq(as_writer_write_owned(c->writer, mid, 1, &o, NULL), AS_EINVAL);
    ck_assert_int_eq(as_writer_write_owned(c->writer, NULL, 1, &o, owned_release), AS_EINVAL);
    ck_assert_int_eq(as_writer_write_bytes(c->writer, NULL), AS_EINVAL);
    ck_assert_int_eq(o.released, 2);

    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* Bytes handed to write_bytes() come back to the same connection's reader
 * once sent, and hold its next result when it fits (the echo pattern:
 * no malloc per read).  Identity is checked because that is the point;
 * the contents because that is the contract. */
START_TEST(write_bytes_blocks_are_recycled_for_the_next_read)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char buf[600];
    as_bytes *a, *b, *small, *mine;

    pfd = accept_peer(lfd);
    memset(buf, 'a', 500);
    ck_assert_int_eq(send(pfd, buf, 500, 0), 500);
    ck_assert_int_eq(reader_wait(loop, as_reader_readexactly(c->reader, 500), &a), 0);
    ck_assert_int_eq(as_writer_write_bytes(c->writer, a), 0); /* echo it */
    ck_assert_uint_eq(peer_read(loop, pfd, buf, 500), 500);   /* sent: recycled */
    memset(buf, 'b', 400);
    ck_assert_int_eq(send(pfd, buf, 400, 0), 400);
    ck_assert_int_eq(reader_wait(loop, as_reader_readexactly(c->reader, 400), &b), 0);
    ck_assert_ptr_eq(b, a);                 /* the same block, ... */
    ck_assert_uint_eq(b->len, 400);         /* ... holding the new result */
    ck_assert_int_eq(memcmp(b->data, buf, 400), 0);
    ck_assert_int_eq(as_writer_write_bytes(c->writer, b), 0);
    ck_assert_uint_eq(peer_read(loop, pfd, buf, 400), 400);
    /* A result under half the spare's size gets a block of its own. */
    ck_assert_int_eq(send(pfd, "tiny", 4, 0), 4);
    ck_assert_int_eq(reader_wait(loop, as_reader_readexactly(c->reader, 4), &small), 0);
    ck_assert_ptr_ne(small, b);
    ck_assert_int_eq(memcmp(small->data, "tiny", 4), 0);
    free(small);
    /* Bytes the caller made come back too, and are reused within their
     * own length (the sanitizers check no byte beyond it is touched). */
    mine = tu_bytes("0123456789", 10);
    ck_assert_int_eq(as_writer_write_bytes(c->writer, mine), 0);
    ck_assert_uint_eq(peer_read(loop, pfd, buf, 10), 10);
    ck_assert_int_eq(send(pfd, "abcdefghij", 10, 0), 10);
    ck_assert_int_eq(reader_wait(loop, as_reader_readexactly(c->reader, 10), &b), 0);
    ck_assert_ptr_eq(b, mine);
    ck_assert_int_eq(memcmp(b->data, "abcdefghij", 10), 0);
    free(b);
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* 64 KiB in, the same 64 KiB out: the read takes the reader's storage, the
 * write hands it over, and once sent the next recv() lands in it again.
 * An echo of big messages copies nothing and allocates nothing. */
START_TEST(a_big_echo_goes_round_in_one_block)
{
    enum { N = 65536 };
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd, round;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char *out = malloc(N), *in = malloc(N);
    unsigned char *first = NULL;
    as_bytes *b;

    pfd = accept_peer(lfd);
    for (round = 0; round < 3; round++) {
        const unsigned char *where;
        int turns = 0;
        pattern(out, N, (size_t)round * N);
        ck_assert_int_eq(write_all_fd(pfd, out, N), 0);
        while (as_reader_buffered(c->reader) < N && turns++ < 100000)
            turn(loop);
        ck_assert_uint_eq(as_reader_peek(c->reader, &where), N);
        if (round == 0)
            first = (unsigned char *)where;
        else
            ck_assert_ptr_eq(where, first); /* received into the same block */
        ck_assert_int_eq(reader_wait(loop, as_reader_readexactly(c->reader, N), &b), 0);
        ck_assert_ptr_eq(b->data, where);   /* the result is that block */
        ck_assert_int_eq(memcmp(b->data, out, N), 0);
        ck_assert_int_eq(as_writer_write_bytes(c->writer, b), 0);
        ck_assert_uint_eq(peer_read(loop, pfd, in, N), N);
        ck_assert_int_eq(memcmp(in, out, N), 0);
    }
    close_conn(loop, c);
    free(out);
    free(in);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(a_big_owned_write_to_a_slow_reader_arrives_intact_and_is_released)
{
    enum { TOTAL = 1 << 20 };
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char *out = malloc(TOTAL), *in = malloc(TOTAL + 1);
    struct owned o = {out, 0, NULL};
    size_t got;

    pfd = accept_peer(lfd);
    small_buffers(as_writer_fd(c->writer), 16384, 0);
    small_buffers(pfd, 0, 262144);
    pattern(out, TOTAL, 0);
    /* 1 MiB at once: sent directly, the rest kept by pointer (not copied:
     * the buffer size counts it, and the release waits for the last byte). */
    ck_assert_int_eq(as_writer_write_owned(c->writer, out, TOTAL, &o, owned_release), 0);
    ck_assert_uint_gt(as_writer_get_write_buffer_size(c->writer), 0);
    ck_assert_int_eq(o.released, 0);
    got = peer_read(loop, pfd, in, TOTAL);
    ck_assert_uint_eq(got, TOTAL);
    ck_assert_int_eq(memcmp(in, out, TOTAL), 0);
    ck_assert_int_eq(o.released, 1);
    ck_assert_uint_eq(as_writer_get_write_buffer_size(c->writer), 0);
    close_conn(loop, c);
    ck_assert_int_eq(recv(pfd, in, 1, 0), 0); /* exactly once: then EOF */
    ck_assert_int_eq(o.released, 1);
    free(in);
    free(out);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(owned_writes_are_released_on_abort_and_refused_after_close)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char data[64] = {0};
    struct owned o = {data, 0, NULL}, p = {data, 0, NULL};
    as_future *f;

    pfd = accept_peer(lfd);
    ck_assert_int_eq(as_writer_write_owned(c->writer, data, sizeof data, &o, owned_release), 0);
    ck_assert_int_eq(as_writer_write_owned(c->writer, data, sizeof data, &p, owned_release), 0);
    f = as_writer_flush(c->writer);
    as_writer_abort(c->writer); /* drops the queue: both released, once */
    ck_assert_int_eq(o.released, 1);
    ck_assert_int_eq(p.released, 1);
    ck_assert_int_eq(wait_for(loop, f), AS_ECONNLOST);
    as_future_unref(f);
    /* After close: refused, and the buffer stays the caller's. */
    ck_assert_int_eq(as_writer_write_owned(c->writer, data, sizeof data, &o, owned_release),
                     AS_ECLOSED);
    ck_assert_int_eq(o.released, 1);
    /* write_bytes takes its bytes even when refused (no leak: the
     * sanitizers and valgrind check). */
    ck_assert_int_eq(as_writer_write_bytes(c->writer, tu_bytes("x", 1)), AS_ECLOSED);
    as_connection_free(c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(a_release_hook_may_abort_its_own_connection)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char data[16], buf[64];
    struct owned o = {data, 0, NULL}, p = {data, 0, NULL};
    as_future *f;

    pfd = accept_peer(lfd);
    memset(data, 'd', sizeof data);
    o.abort_on_release = c->writer;
    ck_assert_int_eq(as_writer_write_owned(c->writer, data, sizeof data, &o, owned_release), 0);
    ck_assert_int_eq(as_writer_write_owned(c->writer, data, sizeof data, &p, owned_release), 0);
    /* One flush sends both; releasing the first aborts the connection,
     * which releases the second from inside the flush. */
    f = as_writer_wait_closed(c->writer);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    ck_assert_int_eq(o.released, 1);
    ck_assert_int_eq(p.released, 1);
    ck_assert_int_eq(as_writer_fd(c->writer), -1);
    (void)recv(pfd, buf, sizeof buf, 0); /* the bytes, or the reset */
    as_connection_free(c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(write_buffer_limits)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    size_t high, low;

    pfd = accept_peer(lfd);
    as_writer_get_write_buffer_limits(c->writer, &high, &low);
    ck_assert_uint_eq(high, 65536);
    ck_assert_uint_eq(low, 16384);
    ck_assert_int_eq(as_writer_set_write_buffer_limits(c->writer, -1, 1000), 0);
    as_writer_get_write_buffer_limits(c->writer, &high, &low);
    ck_assert_uint_eq(high, 4000);
    ck_assert_uint_eq(low, 1000);
    ck_assert_int_eq(as_writer_set_write_buffer_limits(c->writer, 1000, -1), 0);
    as_writer_get_write_buffer_limits(c->writer, &high, &low);
    ck_assert_uint_eq(high, 1000);
    ck_assert_uint_eq(low, 250);
    ck_assert_int_eq(as_writer_set_write_buffer_limits(c->writer, 100, 200), AS_EINVAL);
    ck_assert_int_eq(as_writer_set_write_buffer_limits(c->writer, 0, 0), 0);
    ck_assert_int_eq(as_writer_set_write_buffer_limits(c->writer, -1, -1), 0);
    as_writer_get_write_buffer_limits(c->writer, &high, &low);
    ck_assert_uint_eq(high, 65536);
    ck_assert_uint_eq(low, 16384);
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------- write + drain loops */

/* A producer: write chunk, drain, repeat; as a coroutine would, by hand. */
struct producer {
    as_loop *loop;
    as_writer *w;
    size_t total, chunk, sent;
    size_t max_buffered;
    int iterations, error, finished;
    int error_iteration;
    unsigned char *buf;
};

static void produce(struct producer *p);

static void drained(as_future *f, void *ud)
{
    struct producer *p = ud;
    int rc = as_future_error(f);
    if (rc) {
        p->error = rc;
        p->finished = 1;
        return;
    }
    produce(p);
}

static void produce(struct producer *p)
{
    while (p->sent < p->total) {
        size_t n = p->total - p->sent < p->chunk ? p->total - p->sent : p->chunk;
        as_future *d;
        int rc;
        pattern(p->buf, n, p->sent);
        p->iterations++;
        rc = as_writer_write(p->w, p->buf, n);
        if (rc) {
            p->error = rc;
            p->error_iteration = p->iterations;
            p->finished = 1;
            return;
        }
        p->sent += n;
        if (as_writer_get_write_buffer_size(p->w) > p->max_buffered)
            p->max_buffered = as_writer_get_write_buffer_size(p->w);
        d = as_writer_drain(p->w);
        ck_assert_ptr_nonnull(d);
        if (!as_future_done(d)) {
            ck_assert_int_eq(as_future_add_done_callback(d, drained, p, NULL), 0);
            as_future_unref(d);
            return;
        }
        rc = as_future_error(d);
        as_future_unref(d);
        if (rc) {
            p->error = rc;
            p->error_iteration = p->iterations;
            p->finished = 1;
            return;
        }
    }
    p->finished = 1;
}

START_TEST(one_megabyte_to_a_slow_reader)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    struct producer p;
    size_t total = 1 << 20, got = 0, i;
    unsigned char *in = malloc(total + 1), expect[4096];
    int turns = 0;
    /* A deadline, not a count of turns: a turn that does not wait is a
     * few microseconds, and a loopback TCP stall (the peer's window
     * opening late) outlasted a million of them on epoll. */
    double deadline = as_loop_time(loop) + 30.0;

    pfd = accept_peer(lfd);
    small_buffers(as_writer_fd(c->writer), 16384, 0);
    small_buffers(pfd, 0, 262144);
    memset(&p, 0, sizeof p);
    p.loop = loop;
    p.w = c->writer;
    p.total = total;
    p.chunk = 8192;
    p.buf = malloc(p.chunk);
    produce(&p);
    /* The peer reads 4 KiB at a time, one read per loop turn. */
    while ((got < total || !p.finished) && as_loop_time(loop) < deadline) {
        ssize_t r = recv(pfd, in + got, 4096 < total + 1 - got ? 4096 : total + 1 - got,
                         MSG_DONTWAIT);
        if (r > 0)
            got += (size_t)r;
        else if (!(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
            ck_abort_msg("peer recv: %zd %s", r, strerror(errno));
        turn(loop);
        turns++;
        /* Memory stays bounded: never more than high water + one chunk. */
        if (as_writer_get_write_buffer_size(c->writer) > 65536 + p.chunk)
            ck_abort_msg("write buffer %zu above high water + chunk",
                         as_writer_get_write_buffer_size(c->writer));
    }
    ck_assert_msg(p.finished, "producer stuck: sent %zu got %zu buffered %zu iter %d turns %d",
                  p.sent, got, as_writer_get_write_buffer_size(c->writer), p.iterations, turns);
    ck_assert_int_eq(p.error, 0);
    ck_assert_uint_eq(got, total);
    ck_assert_uint_gt(p.max_buffered, 16384); /* the watermark was exercised */
    for (i = 0; i < total; i += sizeof expect) {
        pattern(expect, sizeof expect, i);
        ck_assert_msg(memcmp(in + i, expect, sizeof expect) == 0, "corrupt at %zu", i);
    }
    ck_assert_uint_eq(as_writer_bytes_sent(c->writer), total);
    close_conn(loop, c);
    ck_assert_int_eq(recv(pfd, in, 1, 0), 0); /* exactly once: then EOF */
    free(in);
    free(p.buf);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* 100 "tasks", each writing one 64 KiB frame and draining; every tenth
 * drain that has to wait is cancelled, and leaves the others waiting. */
struct frame_task {
    int index;
    int done, error;
    int *completed;
};

static void frame_drained(as_future *f, void *ud)
{
    struct frame_task *t = ud;
    t->error = as_future_error(f);
    t->done = 1;
    (*t->completed)++;
}

START_TEST(hundred_concurrent_drains)
{
    enum { N = 100, FRAME = 65536 };
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd, i, completed = 0, waited = 0;
    int cancelled[N] = {0};
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    struct frame_task tasks[N];
    unsigned char *frame = malloc(FRAME), *in = malloc((size_t)N * FRAME);
    size_t got;

    pfd = accept_peer(lfd);
    small_buffers(as_writer_fd(c->writer), 16384, 0);
    small_buffers(pfd, 0, 262144);
    for (i = 0; i < N; i++) {
        as_future *d;
        memset(frame, i, FRAME);
        memcpy(frame, &i, sizeof i);
        ck_assert_int_eq(as_writer_write(c->writer, frame, FRAME), 0);
        tasks[i].index = i;
        tasks[i].done = tasks[i].error = 0;
        tasks[i].completed = &completed;
        d = as_writer_drain(c->writer);
        ck_assert_ptr_nonnull(d);
        if (!as_future_done(d))
            waited++;
        ck_assert_int_eq(as_future_add_done_callback(d, frame_drained, &tasks[i], NULL), 0);
        if (i % 10 == 5 && !as_future_done(d)) {
            ck_assert_int_eq(as_future_cancel(d, NULL), 1);
            cancelled[i] = 1;
        }
        as_future_unref(d);
    }
    ck_assert_int_ge(waited, N - 2); /* all but the first frames had to wait */
    got = peer_read(loop, pfd, in, (size_t)N * FRAME);
    ck_assert_uint_eq(got, (size_t)N * FRAME);
    while (completed < N)
        turn(loop);
    for (i = 0; i < N; i++) {
        int idx;
        size_t j;
        ck_assert(tasks[i].done);
        ck_assert_int_eq(tasks[i].error, cancelled[i] ? AS_ECANCELLED : 0);
        memcpy(&idx, in + (size_t)i * FRAME, sizeof idx);
        ck_assert_int_eq(idx, i); /* each frame once, in order, intact */
        for (j = sizeof idx; j < FRAME; j++)
            if (in[(size_t)i * FRAME + j] != (unsigned char)i)
                ck_abort_msg("frame %d corrupt at byte %zu", i, j);
    }
    close_conn(loop, c);
    free(frame);
    free(in);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(peer_reset_ends_write_drain_loop)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd, turns = 0;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    struct producer p;
    struct linger lg = {1, 0};
    as_future *f;
    const char *msg = NULL;
    int err, rerr;

    /* The default disposition: a SIGPIPE would kill this test process. */
    signal(SIGPIPE, SIG_DFL);
    pfd = accept_peer(lfd);
    memset(&p, 0, sizeof p);
    p.loop = loop;
    p.w = c->writer;
    p.total = (size_t)1 << 40; /* "for ever" */
    p.chunk = 65536;
    p.buf = malloc(p.chunk);
    /* The peer resets the connection before we write anything. */
    ck_assert_int_eq(setsockopt(pfd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    close(pfd);
    produce(&p);
    while (!p.finished && turns++ < 10000)
        turn(loop);
    ck_assert(p.finished);
    err = p.error;
    ck_assert_msg(err == -ECONNRESET || err == -EPIPE, "got %s", as_err_name(err));
    ck_assert_int_le(p.iterations, 2);
    /* The error is sticky: the next write, drain and read say the same. */
    ck_assert_int_eq(as_writer_write(c->writer, "x", 1), err);
    f = as_writer_drain(c->writer);
    ck_assert_int_eq(as_future_error(f), err);
    as_future_unref(f);
    rerr = reader_wait(loop, as_reader_read(c->reader, 10), NULL);
    ck_assert_int_eq(rerr, err);
    ck_assert_int_eq(as_transport_error(as_writer_transport(c->writer), &msg), err);
    ck_assert_ptr_nonnull(msg);
    f = as_writer_wait_closed(c->writer);
    ck_assert_int_eq(wait_for(loop, f), err);
    as_future_unref(f);
    ck_assert_int_eq(as_writer_fd(c->writer), -1);
    as_connection_free(c);
    free(p.buf);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(write_eof_then_read_reply)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char buf[64];
    as_bytes *reply;
    size_t n;

    pfd = accept_peer(lfd);
    ck_assert_int_eq(as_writer_can_write_eof(c->writer), 1);
    ck_assert_int_eq(as_writer_write(c->writer, "request", 7), 0);
    ck_assert_int_eq(as_writer_write_eof(c->writer), 0);
    ck_assert_int_eq(as_writer_write_eof(c->writer), 0); /* idempotent */
    ck_assert_int_eq(as_writer_write(c->writer, "more", 4), AS_ESTATE);
    /* The peer sees the request, then EOF (FIN after the queued bytes). */
    n = peer_read(loop, pfd, buf, sizeof buf);
    ck_assert_uint_eq(n, 7);
    ck_assert_int_eq(memcmp(buf, "request", 7), 0);
    /* ...and can still answer: reading goes on after our EOF. */
    ck_assert_int_eq(send(pfd, "reply", 5, 0), 5);
    close(pfd);
    ck_assert_int_eq(reader_wait(loop, as_reader_read(c->reader, -1), &reply), 0);
    ck_assert_uint_eq(reply->len, 5);
    ck_assert_int_eq(memcmp(reply->data, "reply", 5), 0);
    free(reply);
    close_conn(loop, c);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(close_flushes_then_fin)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    size_t total = 512 * 1024;
    unsigned char *out = malloc(total), *in = malloc(total + 1);
    as_future *closed, *fl;

    pfd = accept_peer(lfd);
    small_buffers(as_writer_fd(c->writer), 16384, 0);
    small_buffers(pfd, 0, 262144);
    pattern(out, total, 0);
    ck_assert_int_eq(as_writer_write(c->writer, out, total), 0);
    ck_assert_uint_gt(as_writer_get_write_buffer_size(c->writer), 0);
    fl = as_writer_flush(c->writer);
    ck_assert(!as_future_done(fl));
    closed = as_writer_wait_closed(c->writer);
    as_writer_close(c->writer);
    ck_assert(as_writer_is_closing(c->writer));
    /* Dropping every reference right after close() still delivers it all
     * (transport.h, lifetime rule 3). */
    as_connection_free(c);
    ck_assert_uint_eq(peer_read(loop, pfd, in, total + 1), total);
    ck_assert(memcmp(in, out, total) == 0);
    ck_assert_int_eq(wait_for(loop, fl), 0);
    ck_assert_int_eq(wait_for(loop, closed), 0);
    as_future_unref(fl);
    as_future_unref(closed);
    free(out);
    free(in);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(abort_resets_and_state_table)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char buf[8];
    as_future *f;
    as_bytes *b;

    pfd = accept_peer(lfd);
    ck_assert_int_eq(as_writer_write(c->writer, "lost", 4), 0); /* coalesced, queued */
    f = as_writer_flush(c->writer);
    as_writer_abort(c->writer);
    as_writer_abort(c->writer); /* idempotent */
    ck_assert_int_eq(as_writer_fd(c->writer), -1); /* closed synchronously */
    ck_assert_int_eq(recv(pfd, buf, sizeof buf, 0), -1);
    ck_assert_int_eq(errno, ECONNRESET);
    ck_assert_int_eq(wait_for(loop, f), AS_ECONNLOST);
    as_future_unref(f);
    /* The reader sees EOF, not an error (CPython's abort()). */
    ck_assert_int_eq(reader_wait(loop, as_reader_read(c->reader, 10), &b), 0);
    ck_assert_uint_eq(b->len, 0);
    free(b);
    /* Method x state after close (writer.h's table). */
    ck_assert_int_eq(as_writer_write(c->writer, "x", 1), AS_ECLOSED);
    ck_assert_int_eq(as_writer_write(c->writer, "", 0), AS_ECLOSED);
    ck_assert_int_eq(as_writer_write_eof(c->writer), AS_ECLOSED);
    f = as_writer_drain(c->writer);
    ck_assert_int_eq(as_future_error(f), AS_ECONNLOST);
    ck_assert_str_eq(as_future_error_message(f), "Connection lost");
    as_future_unref(f);
    f = as_writer_wait_closed(c->writer);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    as_writer_close(c->writer); /* no-op */
    as_connection_free(c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* 1 MB queued to a peer that never reads, where a plain close() would
 * flush for ever: close_within() closes the fd by its deadline, with a
 * reset, and says what got out. */
START_TEST(close_within_aborts_at_the_deadline)
{
    enum { TOTAL = 1 << 20 };
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char *big = calloc(1, TOTAL), buf[4096];
    as_future *flushed, *closed;
    double t0, took;
    ssize_t r;

    pfd = accept_peer(lfd);
    small_buffers(as_writer_fd(c->writer), 16384, 0);
    small_buffers(pfd, 0, 131072); /* the kernels cannot hold 1 MB between them */
    ck_assert_int_eq(as_writer_write(c->writer, big, TOTAL), 0);
    ck_assert_uint_gt(as_writer_get_write_buffer_size(c->writer), 0);
    flushed = as_writer_flush(c->writer);
    closed = as_writer_wait_closed(c->writer);
    t0 = mono_now();
    as_writer_close_within(c->writer, 0.3);
    as_writer_close_within(c->writer, 100); /* a second deadline is ignored */
    ck_assert(as_writer_is_closing(c->writer));
    ck_assert_int_eq(wait_for(loop, closed), 0);
    took = mono_now() - t0;
    /* By the deadline, not before it (the margin is for a loaded machine). */
    ck_assert_msg(took >= 0.25 && took < 2.0, "closed after %.3f s", took);
    ck_assert_int_eq(as_writer_fd(c->writer), -1);
    ck_assert_int_eq(wait_for(loop, flushed), AS_ECONNLOST);
    ck_assert_uint_lt(as_writer_bytes_sent(c->writer), TOTAL);
    ck_assert_uint_eq(as_loop_pending(loop), 0); /* no timer left behind */
    /* The peer reads what was sent, then the reset. */
    while ((r = recv(pfd, buf, sizeof buf, 0)) > 0)
        ;
    ck_assert_int_eq(r, -1);
    ck_assert_int_eq(errno, ECONNRESET);
    as_future_unref(flushed);
    as_future_unref(closed);
    as_connection_free(c);
    free(big);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* A close_within() that the peer lets finish in time is a plain close: the
 * bytes, then FIN, and the deadline's timer is gone. */
START_TEST(close_within_that_finishes_in_time_is_a_clean_close)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connection *c = connect_ok(loop, "127.0.0.1", port, NULL);
    unsigned char buf[16];
    as_future *closed;

    pfd = accept_peer(lfd);
    ck_assert_int_eq(as_writer_write(c->writer, "bye", 3), 0); /* coalesced: queued */
    closed = as_writer_wait_closed(c->writer);
    as_writer_close_within(c->writer, 30);
    ck_assert_int_eq(wait_for(loop, closed), 0);
    ck_assert_uint_eq(as_writer_bytes_sent(c->writer), 3);
    ck_assert_uint_eq(as_loop_pending(loop), 0); /* the timer was cancelled */
    ck_assert_int_eq(recv(pfd, buf, sizeof buf, 0), 3);
    ck_assert_int_eq(recv(pfd, buf, sizeof buf, 0), 0); /* FIN, not a reset */
    as_future_unref(closed);
    as_connection_free(c);

    /* Nothing queued: closed at once, no timer at all. */
    close(pfd);
    c = connect_ok(loop, "127.0.0.1", port, NULL);
    pfd = accept_peer(lfd);
    as_writer_close_within(c->writer, 30);
    ck_assert_int_eq(as_writer_fd(c->writer), -1);
    ck_assert_uint_eq(as_loop_pending(loop), 0);
    as_connection_free(c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* A transport answers a waiting read as soon as its recv() has fed the
 * reader, not at the end of the turn: bytes fed by hand later in the same
 * turn (here, by an end-of-turn callback) are left for the next read. */
struct late_feed {
    as_reader *reader;
    as_future *read;
    int read_done_before;
};

static void feed_late(void *p)
{
    struct late_feed *lf = p;
    lf->read_done_before = as_future_done(lf->read);
    ck_assert_int_eq(as_reader_feed_data(lf->reader, "def", 3), 0);
}

START_TEST(a_transport_answers_a_waiting_read_at_once)
{
    as_loop *loop = tu_loop();
    as_reader *r;
    as_transport *t;
    struct late_feed lf;
    as_bytes *b;
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(as_reader_new(loop, AS_READER_DEFAULT_LIMIT, &r), 0);
    ck_assert_int_eq(as_socket_transport_new(loop, sv[0], r, &t), 0);
    lf.reader = r;
    lf.read = as_reader_read(r, 100);
    lf.read_done_before = -1;
    ck_assert(!as_future_done(lf.read));
    ck_assert_int_eq(send(sv[1], "abc", 3, 0), 3);
    ck_assert_int_eq(as_loop_call_end_of_turn(loop, feed_late, &lf, NULL, NULL), 0);
    ck_assert_int_eq(as_loop_run_once(loop), 0); /* polls, reads, then feed_late */
    ck_assert_int_eq(lf.read_done_before, 1);
    ck_assert_int_eq(reader_wait(loop, lf.read, &b), 0);
    ck_assert_uint_eq(b->len, 3);
    ck_assert_int_eq(memcmp(b->data, "abc", 3), 0);
    free(b);
    ck_assert_int_eq(reader_wait(loop, as_reader_read(r, 100), &b), 0);
    ck_assert_uint_eq(b->len, 3);
    ck_assert_int_eq(memcmp(b->data, "def", 3), 0);
    free(b);
    as_transport_close(t);
    as_transport_unref(t);
    as_reader_unref(r);
    close(sv[1]);
    tu_close(loop);
}
END_TEST

/* A read already waiting when one feed takes the buffer above twice the
 * limit: the feed answers the read (still short) and then pauses; the
 * read must resume the transport, or it waits for ever. */
START_TEST(a_waiting_read_resumes_a_feed_that_paused)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connect_options o = {1000, 0, NULL, NULL};
    as_connection *c = connect_ok(loop, "127.0.0.1", port, &o);
    static unsigned char out[100000];
    as_future *f = as_reader_readexactly(c->reader, sizeof out);
    as_bytes *b;

    pfd = accept_peer(lfd);
    pattern(out, sizeof out, 0);
    ck_assert_int_eq(send(pfd, out, sizeof out, 0), (ssize_t)sizeof out);
    ck_assert_int_eq(reader_wait(loop, f, &b), 0);
    ck_assert_uint_eq(b->len, sizeof out);
    ck_assert_int_eq(memcmp(b->data, out, sizeof out), 0);
    free(b);
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(reading_pauses_above_twice_the_limit)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd, turns = 0;
    as_connect_options o = {1000, 0, NULL, NULL};
    as_connection *c = connect_ok(loop, "127.0.0.1", port, &o);
    as_transport *t = as_writer_transport(c->writer);
    unsigned char out[100000];
    as_bytes *b;

    pfd = accept_peer(lfd);
    pattern(out, sizeof out, 0);
    ck_assert_int_eq(send(pfd, out, sizeof out, 0), (ssize_t)sizeof out);
    while (!as_transport_is_reading_paused(t) && turns++ < 1000)
        turn(loop);
    ck_assert(as_transport_is_reading_paused(t));
    ck_assert_uint_gt(as_reader_buffered(c->reader), 2000);
    /* readexactly of everything cannot deadlock: waiting resumes reading. */
    ck_assert_int_eq(reader_wait(loop, as_reader_readexactly(c->reader, sizeof out), &b), 0);
    ck_assert_uint_eq(b->len, sizeof out);
    ck_assert_int_eq(memcmp(b->data, out, sizeof out), 0);
    free(b);
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ connect */

START_TEST(connect_refused)
{
    as_loop *loop = tu_loop();
    char port[16], want[96];
    int lfd = listener(AF_INET, port);
    as_future *f;

    close(lfd); /* nothing listens there now */
    f = as_open_connection(loop, "127.0.0.1", port, NULL);
    ck_assert_int_eq(wait_for(loop, f), -ECONNREFUSED);
    snprintf(want, sizeof want, "[Errno %d] Connect call failed ('127.0.0.1', %s)",
             ECONNREFUSED, port);
    ck_assert_str_eq(as_future_error_message(f), want);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(unresolvable_name)
{
    as_loop *loop = tu_loop();
    as_future *f = as_open_connection(loop, "no-such-host.invalid", "80", NULL);
    ck_assert(!as_future_done(f)); /* resolving on the worker thread */
    ck_assert_int_eq(wait_for(loop, f), AS_ERESOLVE);
    ck_assert(strncmp(as_future_error_message(f), "[Errno -", 8) == 0);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

START_TEST(localhost_via_resolver_thread_and_local_address)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connect_options o = {0, AF_INET, "127.0.0.1", "0"};
    as_connection *c = connect_ok(loop, "localhost", port, &o);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    pfd = accept_peer(lfd);
    ck_assert_int_eq(as_writer_sockname(c->writer, &ss, &len), 0);
    ck_assert_int_eq(((struct sockaddr_in *)&ss)->sin_addr.s_addr, htonl(INADDR_LOOPBACK));
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* Both addresses numeric: both resolutions finish in the same turn, so
 * their done callbacks both run; the second must not start over. */
START_TEST(numeric_host_and_local_address)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port), pfd;
    as_connect_options o = {0, AF_INET, "127.0.0.1", "0"};
    as_connection *c = connect_ok(loop, "127.0.0.1", port, &o);

    pfd = accept_peer(lfd);
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(ipv6_loopback)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET6, port), pfd;
    as_connection *c = connect_ok(loop, "::1", port, NULL);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char text[96], want[96];

    pfd = accept_peer(lfd);
    ck_assert_int_eq(as_writer_peername(c->writer, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_INET6);
    as_format_sockaddr((struct sockaddr *)&ss, len, text, sizeof text);
    snprintf(want, sizeof want, "('::1', %s, 0, 0)", port);
    ck_assert_str_eq(text, want);
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(every_address_is_tried_and_bind_errors)
{
    as_loop *loop = tu_loop();
    char port[16];
    int lfd = listener(AF_INET, port);
    as_connect_options o = {0, 0, "203.0.113.1", NULL}; /* not ours: bind fails */
    as_future *f;
    char want[256];

    f = as_open_connection(loop, "127.0.0.1", port, &o);
    ck_assert_int_eq(wait_for(loop, f), -EADDRNOTAVAIL);
    snprintf(want, sizeof want, "[Errno %d] error while attempting to bind on address "
             "('203.0.113.1', 0): [errno %d] %s", EADDRNOTAVAIL, EADDRNOTAVAIL,
             as_strerror(-EADDRNOTAVAIL));
    ck_assert_str_eq(as_future_error_message(f), want);
    as_future_unref(f);
    /* The listener's own address is taken: CPython 3.13's message exactly,
     * the one servers give too. */
    o.local_port = port;
    o.local_host = "127.0.0.1";
    f = as_open_connection(loop, "127.0.0.1", port, &o);
    ck_assert_int_eq(wait_for(loop, f), -EADDRINUSE);
    snprintf(want, sizeof want, "[Errno %d] error while attempting to bind on address "
             "('127.0.0.1', %s): [errno %d] address already in use",
             EADDRINUSE, port, EADDRINUSE);
    ck_assert_str_eq(as_future_error_message(f), want);
    as_future_unref(f);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(cancel_while_resolving)
{
    as_loop *loop = tu_loop();
    as_future *f = as_open_connection(loop, "localhost", "1", NULL);
    int turns = 0;
    ck_assert_int_eq(as_future_cancel(f, NULL), 1);
    as_future_unref(f);
    /* The worker still answers; that answer must be dropped cleanly. */
    while (as_loop_objects(loop) > 0 && turns++ < 2000) {
        tu_turn(loop);
        { struct timespec ts = {0, 1000000}; nanosleep(&ts, NULL); }
    }
    tu_close(loop);
}
END_TEST

/* getaddrinfo() takes "99999" and wraps it to 34463: a numeric port out of
 * range is refused before anything is resolved or connected, in asyncio's
 * words (socket.connect()'s and bind()'s OverflowError). */
START_TEST(a_port_out_of_range_is_refused)
{
    static const char *const bad[] = {"65536", "99999", "-1", " 70000",
                                      "99999999999999999999999"};
    as_loop *loop = tu_loop();
    as_connect_options o = {0, 0, "127.0.0.1", NULL};
    char port[16];
    int lfd = listener(AF_INET, port);
    as_connection *c;
    as_future *f;
    size_t i;

    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        f = as_open_connection(loop, "127.0.0.1", bad[i], NULL);
        ck_assert_int_eq(wait_for(loop, f), AS_EPORT);
        ck_assert_str_eq(as_future_error_message(f), "connect(): port must be 0-65535.");
        as_future_unref(f);
        /* A name too: nothing is resolved. */
        f = as_open_connection(loop, "localhost", bad[i], NULL);
        ck_assert_int_eq(wait_for(loop, f), AS_EPORT);
        as_future_unref(f);
        o.local_port = bad[i];
        f = as_open_connection(loop, "127.0.0.1", port, &o);
        ck_assert_int_eq(wait_for(loop, f), AS_EPORT);
        ck_assert_str_eq(as_future_error_message(f), "bind(): port must be 0-65535.");
        as_future_unref(f);
    }
    /* The edges are ports, and service names are getaddrinfo()'s to judge. */
    f = as_open_connection(loop, "127.0.0.1", "0", NULL);
    ck_assert_int_eq(wait_for(loop, f), -ECONNREFUSED);
    as_future_unref(f);
    f = as_open_connection(loop, "127.0.0.1", "65535", NULL);
    ck_assert_int_ne(wait_for(loop, f), AS_EPORT);
    as_future_unref(f);
    f = as_open_connection(loop, "127.0.0.1", "no-such-service", NULL);
    ck_assert_int_eq(wait_for(loop, f), AS_ERESOLVE);
    as_future_unref(f);
    o.local_port = "0";
    f = as_open_connection(loop, "127.0.0.1", port, &o);
    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    close_conn(loop, c);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* CPython's host=None and port=None: getaddrinfo()'s loopback address and
 * port 0. */
START_TEST(a_null_host_is_loopback_and_a_null_port_is_zero)
{
    as_loop *loop = tu_loop();
    char port[16], want[96];
    int lfd = listener(AF_INET, port);
    as_connection *c;
    as_future *f;

    f = as_open_connection(loop, NULL, port, NULL);
    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    close_conn(loop, c);
    f = as_open_connection(loop, "127.0.0.1", NULL, NULL);
    ck_assert_int_eq(wait_for(loop, f), -ECONNREFUSED);
    snprintf(want, sizeof want, "[Errno %d] Connect call failed ('127.0.0.1', 0)",
             ECONNREFUSED);
    ck_assert_str_eq(as_future_error_message(f), want);
    as_future_unref(f);
    close(lfd);
    tu_close(loop);
}
END_TEST

START_TEST(bad_arguments)
{
    as_loop *loop = tu_loop();
    as_future *f;
    as_connect_options o = {-5, 0, NULL, NULL};

    f = as_open_connection(loop, NULL, NULL, NULL);
    ck_assert_int_eq(as_future_error(f), AS_EINVAL);
    as_future_unref(f);
    f = as_open_connection(loop, "127.0.0.1", "80", &o);
    ck_assert_int_eq(as_future_error(f), AS_EINVAL);
    as_future_unref(f);
    f = as_open_unix_connection(loop, "", NULL);
    ck_assert_int_eq(as_future_error(f), AS_EINVAL);
    as_future_unref(f);
    tu_turn(loop);
    tu_close(loop);
}
END_TEST

START_TEST(unix_connection)
{
    as_loop *loop = tu_loop();
    char path[64], text[160], want[160];
    struct sockaddr_un un;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int lfd, pfd;
    as_future *f;
    as_connection *c;
    unsigned char buf[8];

    snprintf(path, sizeof path, "/tmp/as_conn_%d.sock", (int)getpid());
    unlink(path);
    lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&un, 0, sizeof un);
    un.sun_family = AF_UNIX;
    strcpy(un.sun_path, path);
    ck_assert_int_eq(bind(lfd, (struct sockaddr *)&un, sizeof un), 0);
    ck_assert_int_eq(listen(lfd, 4), 0);

    f = as_open_unix_connection(loop, path, NULL);
    ck_assert_int_eq(wait_for(loop, f), 0);
    c = as_future_take_result(f);
    as_future_unref(f);
    pfd = accept_peer(lfd);
    ck_assert_int_eq(as_writer_peername(c->writer, &ss, &len), 0);
    as_format_sockaddr((struct sockaddr *)&ss, len, text, sizeof text);
    snprintf(want, sizeof want, "('%s')", path);
    ck_assert_str_eq(text, want);
    ck_assert_int_eq(as_writer_write(c->writer, "unix", 4), 0);
    ck_assert_uint_eq(peer_read(loop, pfd, buf, 4), 4);
    ck_assert_int_eq(memcmp(buf, "unix", 4), 0);
    close_conn(loop, c);
    close(pfd);
    close(lfd);
    unlink(path);

    /* Nobody listening: the system error, with the path. */
    f = as_open_unix_connection(loop, path, NULL);
    ck_assert_int_eq(wait_for(loop, f), -ENOENT);
    snprintf(want, sizeof want, "[Errno %d] Connect call failed ('%s')", ENOENT, path);
    ck_assert_str_eq(as_future_error_message(f), want);
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

/*
 * Sockets numbered above FD_SETSIZE.  Where the loop can watch them
 * (select()'s sets grow, poll, epoll), open_connection and a transport work
 * as they do below it; where it cannot (the suite's build against a
 * fixed-size select(), Makefile.am), the connect fails with AS_EFDSETSIZE and
 * the transport refuses the fd and closes it.
 */
START_TEST(fd_above_fd_setsize)
{
    as_loop *loop = tu_loop();
    char port[16];
    unsigned char buf[4];
    int lfd = listener(AF_INET, port), fds[1200], n = 0, i, sv[2], pfd;
    as_future *f;
    as_connection *c;
    as_reader *r;
    as_bytes *b;
    as_transport *t = NULL;

    tu_raise_fd_limit(1300);
    while (n < 1100) {
        fds[n] = open("/dev/null", O_RDONLY);
        ck_assert_int_ge(fds[n], 0);
        n++;
    }
    f = as_open_connection(loop, "127.0.0.1", port, NULL);
    if (!tu_can_watch(loop, FD_SETSIZE)) {
        ck_assert_int_eq(wait_for(loop, f), AS_EFDSETSIZE);
        ck_assert(strstr(as_future_error_message(f), "too large") != NULL);
        as_future_unref(f);
    } else {
        ck_assert_int_eq(wait_for(loop, f), 0);
        c = as_future_take_result(f);
        as_future_unref(f);
        ck_assert_int_ge(as_transport_fd(as_writer_transport(c->writer)), FD_SETSIZE);
        pfd = accept_peer(lfd);
        ck_assert_int_eq(as_writer_write(c->writer, "high", 4), 0);
        ck_assert_uint_eq(peer_read(loop, pfd, buf, 4), 4);
        ck_assert_int_eq(memcmp(buf, "high", 4), 0);
        close_conn(loop, c);
        close(pfd);
    }
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_ge(sv[0], FD_SETSIZE);
    ck_assert_int_eq(as_reader_new(loop, AS_READER_DEFAULT_LIMIT, &r), 0);
    if (!tu_can_watch(loop, sv[0])) {
        /* A transport refuses such an fd too, and closes it. */
        ck_assert_int_eq(as_socket_transport_new(loop, sv[0], r, &t), AS_EFDSETSIZE);
        ck_assert_ptr_null(t);
        ck_assert_int_eq(fcntl(sv[0], F_GETFD), -1); /* closed */
    } else {
        ck_assert_int_eq(as_socket_transport_new(loop, sv[0], r, &t), 0);
        ck_assert_int_eq(send(sv[1], "abc", 3, 0), 3);
        ck_assert_int_eq(reader_wait(loop, as_reader_read(r, 100), &b), 0);
        ck_assert_uint_eq(b->len, 3);
        ck_assert_int_eq(memcmp(b->data, "abc", 3), 0);
        free(b);
        as_transport_close(t);
        as_transport_unref(t);
    }
    as_reader_unref(r);
    close(sv[1]);
    for (i = 0; i < n; i++)
        close(fds[i]);
    close(lfd);
    tu_close(loop);
}
END_TEST

/* The interface: a socket transport's kind and extra info. */
START_TEST(transport_interface_extra_info)
{
    as_loop *loop = tu_loop();
    as_reader *r;
    as_transport *t;
    as_extra_info info;
    struct sockaddr_storage ss;
    socklen_t len;
    int sv[2];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(as_reader_new(loop, AS_READER_DEFAULT_LIMIT, &r), 0);
    ck_assert_int_eq(as_socket_transport_new(loop, sv[0], r, &t), 0);
    ck_assert_str_eq(as_transport_kind(t), "socket");
    ck_assert(as_is_socket_transport(t));
    ck_assert_int_eq(as_transport_get_extra_info(t, "fd", &info), 0);
    ck_assert_int_eq(info.kind, AS_EXTRA_INT);
    ck_assert_int_eq((int)info.u.integer, sv[0]);
    ck_assert_int_eq(as_transport_fd(t), sv[0]);
    ck_assert_int_eq(as_transport_get_extra_info(t, "sockname", &info), 0);
    ck_assert_int_eq(info.kind, AS_EXTRA_ADDRESS);
    ck_assert_int_eq(info.u.address.addr.ss_family, AF_UNIX);
    ck_assert_int_eq(as_transport_peername(t, &ss, &len), 0);
    ck_assert_int_eq(ss.ss_family, AF_UNIX);
    ck_assert_int_eq(as_transport_get_extra_info(t, "no such key", &info), AS_ENOKEY);
    ck_assert_int_eq(as_transport_get_extra_info(t, NULL, &info), AS_EINVAL);
    ck_assert_int_eq(as_transport_get_extra_info(t, "fd", NULL), AS_EINVAL);
    ck_assert_int_eq(as_transport_peername(t, NULL, &len), AS_EINVAL);
    as_transport_close(t);
    ck_assert_int_eq(as_transport_fd(t), -1);
    ck_assert_int_eq(as_transport_sockname(t, &ss, &len), 0); /* cached */
    as_transport_unref(t);
    as_reader_unref(r);
    close(sv[1]);

    tu_close(loop);
}
END_TEST

/* Every call of transport.h, socket_transport.h, writer.h, connect.h and
 * resolve.h given NULL objects: the answer asyncstreams.h's NULL rule
 * promises.  Nothing is released that was not handed over, what was
 * handed over (bytes, an fd) is freed, and constructors leave *out NULL. */
START_TEST(every_call_accepts_null_objects)
{
    as_loop *loop = tu_loop();
    as_transport *t = tu_poison();
    as_writer *w = tu_poison();
    struct owned o = { NULL, 0, NULL };
    struct sockaddr_storage ss;
    struct sockaddr_in sin;
    struct iovec iov = { "a", 1 };
    as_extra_info info;
    socklen_t len = sizeof ss;
    const char *msg = "x";
    size_t high = 1, low = 1;
    char buf[32] = "x";
    int fd = open("/dev/null", O_RDONLY);
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    ck_assert_int_ge(fd, 0);
    tu_null_call calls[] = {
        /* transport.h */
        TU_NULL_PTR(as_transport_ref(NULL)),
        TU_NULL_VOID(as_transport_unref(NULL)),
        TU_NULL_PTR(as_transport_loop(NULL)),
        TU_NULL_PTR(as_transport_reader(NULL)),
        TU_NULL_INT(as_transport_write(NULL, "a", 1), AS_EINVAL),
        TU_NULL_INT(as_transport_writelines(NULL, &iov, 1), AS_EINVAL),
        TU_NULL_INT(as_transport_write_owned(NULL, "a", 1, &o, owned_release), AS_EINVAL),
        TU_NULL_INT(as_transport_write_bytes(NULL, tu_bytes("a", 1)), AS_EINVAL),
        TU_NULL_INT(as_transport_write_eof(NULL), AS_EINVAL),
        TU_NULL_INT(as_transport_eof_written(NULL), 0),
        TU_NULL_INT(as_transport_can_write_eof(NULL), 0),
        TU_NULL_VOID(as_transport_close(NULL)),
        TU_NULL_VOID(as_transport_close_within(NULL, 1)),
        TU_NULL_VOID(as_transport_abort(NULL)),
        TU_NULL_INT(as_transport_is_closing(NULL), 1),
        TU_NULL_INT(as_transport_error(NULL, &msg), AS_EINVAL),
        TU_NULL_PTR(as_transport_wait_writable(NULL)),
        TU_NULL_PTR(as_transport_flush(NULL)),
        TU_NULL_PTR(as_transport_closed(NULL)),
        TU_NULL_INT(as_transport_get_write_buffer_size(NULL), 0),
        TU_NULL_VOID(as_transport_get_write_buffer_limits(NULL, &high, &low)),
        TU_NULL_INT(as_transport_set_write_buffer_limits(NULL, -1, -1), AS_EINVAL),
        TU_NULL_INT(as_transport_bytes_sent(NULL), 0),
        TU_NULL_INT(as_transport_bytes_written(NULL), 0),
        TU_NULL_INT(as_transport_pause_reading(NULL), AS_EINVAL),
        TU_NULL_INT(as_transport_resume_reading(NULL), AS_EINVAL),
        TU_NULL_INT(as_transport_is_reading_paused(NULL), 0),
        TU_NULL_PTR(as_transport_kind(NULL)),
        TU_NULL_INT(as_transport_get_extra_info(NULL, "fd", &info), AS_EINVAL),
        TU_NULL_INT(as_transport_peername(NULL, &ss, &len), AS_EINVAL),
        TU_NULL_INT(as_transport_sockname(NULL, &ss, &len), AS_EINVAL),
        TU_NULL_INT(as_transport_fd(NULL), -1),
        TU_NULL_INT(as_transport_init(NULL, NULL, loop, NULL), AS_EINVAL),
        /* socket_transport.h: the fd is closed even so */
        TU_NULL_INT(as_socket_transport_new(NULL, fd, NULL, &t), AS_EINVAL),
        TU_NULL_INT(as_is_socket_transport(NULL), 0),
        TU_NULL_INT(as_socket_transport_set_coalescing(NULL, 1), AS_EINVAL),
        /* writer.h */
        TU_NULL_INT(as_writer_new(NULL, NULL, &w), AS_EINVAL),
        TU_NULL_PTR(as_writer_ref(NULL)),
        TU_NULL_VOID(as_writer_unref(NULL)),
        TU_NULL_PTR(as_writer_transport(NULL)),
        TU_NULL_PTR(as_writer_reader(NULL)),
        TU_NULL_PTR(as_writer_loop(NULL)),
        TU_NULL_INT(as_writer_write(NULL, "a", 1), AS_EINVAL),
        TU_NULL_INT(as_writer_write_bytes(NULL, tu_bytes("a", 1)), AS_EINVAL),
        TU_NULL_INT(as_writer_write_owned(NULL, "a", 1, &o, owned_release), AS_EINVAL),
        TU_NULL_INT(as_writer_writelines(NULL, &iov, 1), AS_EINVAL),
        TU_NULL_INT(as_writer_write_eof(NULL), AS_EINVAL),
        TU_NULL_INT(as_writer_can_write_eof(NULL), 0),
        TU_NULL_VOID(as_writer_close(NULL)),
        TU_NULL_VOID(as_writer_close_within(NULL, 1)),
        TU_NULL_VOID(as_writer_abort(NULL)),
        TU_NULL_INT(as_writer_is_closing(NULL), 1),
        TU_NULL_PTR(as_writer_drain(NULL)),
        TU_NULL_PTR(as_writer_flush(NULL)),
        TU_NULL_PTR(as_writer_wait_closed(NULL)),
        TU_NULL_INT(as_writer_peername(NULL, &ss, &len), AS_EINVAL),
        TU_NULL_INT(as_writer_sockname(NULL, &ss, &len), AS_EINVAL),
        TU_NULL_INT(as_writer_fd(NULL), -1),
        TU_NULL_INT(as_writer_get_write_buffer_size(NULL), 0),
        TU_NULL_VOID(as_writer_get_write_buffer_limits(NULL, &high, &low)),
        TU_NULL_INT(as_writer_set_write_buffer_limits(NULL, -1, -1), AS_EINVAL),
        TU_NULL_INT(as_writer_bytes_sent(NULL), 0),
        /* connect.h and resolve.h */
        TU_NULL_VOID(as_connection_free(NULL)),
        TU_NULL_PTR(as_open_connection(NULL, "127.0.0.1", "1", NULL)),
        TU_NULL_PTR(as_open_unix_connection(NULL, "/nonexistent", NULL)),
        TU_NULL_PTR(as_format_sockaddr(NULL, 0, buf, sizeof buf)),
        TU_NULL_PTR(as_format_sockaddr((struct sockaddr *)&sin, sizeof sin, NULL, 0)),
        TU_NULL_PTR(as_getaddrinfo(NULL, "localhost", "1", NULL)),
        TU_NULL_PTR(as_gai_message(EAI_NONAME, NULL, 0)),
    };

    tu_check_null(calls);
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(w);
    ck_assert_ptr_null(msg);
    ck_assert_uint_eq(high, 0);
    ck_assert_uint_eq(low, 0);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(o.released, 0);
    ck_assert_int_eq(fcntl(fd, F_GETFD), -1); /* closed */
    tu_close(loop);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("conn");
    TCase *tc = tcase_create("fd limit");
    tcase_add_test(tc, fd_above_fd_setsize);
    suite_add_tcase(s, tc);
#ifdef AS_SELECT_FIXED
    return tu_run(s); /* built against the fixed-size select(): this case only */
#endif

    tc = tcase_create("transport");
    tcase_add_test(tc, connect_exchange_and_extra_info);
    tcase_add_test(tc, zero_length_write_is_a_noop);
    tcase_add_test(tc, write_buffer_limits);
    tcase_add_test(tc, one_megabyte_to_a_slow_reader);
    tcase_add_test(tc, hundred_concurrent_drains);
    tcase_add_test(tc, peer_reset_ends_write_drain_loop);
    tcase_add_test(tc, write_eof_then_read_reply);
    tcase_add_test(tc, close_flushes_then_fin);
    tcase_add_test(tc, abort_resets_and_state_table);
    tcase_add_test(tc, reading_pauses_above_twice_the_limit);
    tcase_add_test(tc, a_waiting_read_resumes_a_feed_that_paused);
    tcase_add_test(tc, a_transport_answers_a_waiting_read_at_once);
    tcase_add_test(tc, close_within_aborts_at_the_deadline);
    tcase_add_test(tc, close_within_that_finishes_in_time_is_a_clean_close);
    tcase_add_test(tc, owned_writes_keep_their_order_and_are_released_once_sent);
    tcase_add_test(tc, write_bytes_blocks_are_recycled_for_the_next_read);
    tcase_add_test(tc, a_big_echo_goes_round_in_one_block);
    tcase_add_test(tc, a_big_owned_write_to_a_slow_reader_arrives_intact_and_is_released);
    tcase_add_test(tc, owned_writes_are_released_on_abort_and_refused_after_close);
    tcase_add_test(tc, a_release_hook_may_abort_its_own_connection);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("connect");
    tcase_add_test(tc, connect_refused);
    tcase_add_test(tc, unresolvable_name);
    tcase_add_test(tc, localhost_via_resolver_thread_and_local_address);
    tcase_add_test(tc, numeric_host_and_local_address);
    tcase_add_test(tc, ipv6_loopback);
    tcase_add_test(tc, every_address_is_tried_and_bind_errors);
    tcase_add_test(tc, cancel_while_resolving);
    tcase_add_test(tc, bad_arguments);
    tcase_add_test(tc, a_null_host_is_loopback_and_a_null_port_is_zero);
    tcase_add_test(tc, a_port_out_of_range_is_refused);
    tcase_add_test(tc, transport_interface_extra_info);
    tcase_add_test(tc, every_call_accepts_null_objects);
    tcase_add_test(tc, unix_connection);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
