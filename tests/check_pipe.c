/* check_pipe.c - the pipe transports (pipe.h): streams over pipe() ends,
 * a FIFO, a pty and /dev/null; what they refuse; SIGPIPE; O_NONBLOCK. */
#define _XOPEN_SOURCE 700 /* posix_openpt() and friends, for the tty case */
#include "testutil.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ helpers */

/* Open descriptors below 1024: every test ends with as many as it began. */
static int fd_count(void)
{
    int fd, n = 0;
    for (fd = 0; fd < 1024; fd++)
        if (fcntl(fd, F_GETFD) != -1)
            n++;
    return n;
}

/* A loop (whose wake-up pipe is two fds), and the count after it. */
static as_loop *counted_loop(int *fds)
{
    as_loop *loop = tu_loop();
    *fds = fd_count();
    return loop;
}

static int wait_for(as_loop *loop, as_future *f)
{
    int rc;
    ck_assert_ptr_nonnull(f);
    rc = as_future_done(f) ? as_future_error(f) : as_loop_run_until_complete(loop, f);
    ck_assert(as_future_done(f));
    return rc;
}

/* Wait for f, expect code, drop it. */
static void expect(as_loop *loop, as_future *f, int code)
{
    ck_assert_int_eq(wait_for(loop, f), code);
    as_future_unref(f);
}

/* readline() that must give exactly `want` ("" at EOF). */
static void expect_line(as_loop *loop, as_reader *r, const char *want)
{
    as_future *f = as_reader_readline(r);
    as_bytes *b;
    ck_assert_int_eq(wait_for(loop, f), 0);
    b = as_future_take_result(f);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->len, strlen(want));
    ck_assert(memcmp(b->data, want, b->len) == 0);
    free(b);
    as_future_unref(f);
}

static int is_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    ck_assert_int_ge(flags, 0);
    return (flags & O_NONBLOCK) != 0;
}

static void pattern(unsigned char *buf, size_t n, size_t offset)
{
    size_t i;
    for (i = 0; i < n; i++)
        buf[i] = (unsigned char)((offset + i) * 7 + 3);
}

/* Read what a non-blocking fd holds now, checking it follows pattern()
 * from *offset; returns the count. */
static size_t drain_fd(int fd, size_t *offset)
{
    unsigned char buf[8192], want[8192];
    size_t total = 0;
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0) {
        pattern(want, (size_t)n, *offset);
        ck_assert(memcmp(buf, want, (size_t)n) == 0);
        *offset += (size_t)n;
        total += (size_t)n;
    }
    ck_assert(n == 0 || errno == EAGAIN || errno == EWOULDBLOCK);
    return total;
}

/* ------------------------------------------------------------ tests */

START_TEST(lines_through_a_pipe_then_eof)
{
    int fds0;
    as_loop *loop = counted_loop(&fds0);
    as_reader *r;
    as_transport *t;
    as_writer *w;
    as_extra_info info;
    int rfd;

    ck_assert_int_eq(as_open_pipe(loop, NULL, &r, &t, &w), 0);
    ck_assert_int_eq(fd_count(), fds0 + 2);
    ck_assert(as_is_pipe_transport(t));
    ck_assert(as_is_pipe_transport(as_writer_transport(w)));
    ck_assert_str_eq(as_transport_kind(t), "pipe");
    rfd = as_transport_fd(t);
    ck_assert_int_ge(rfd, 0);
    ck_assert_int_eq(as_transport_get_extra_info(t, "pipe", &info), 0);
    ck_assert_int_eq(info.kind, AS_EXTRA_INT);
    ck_assert_int_eq(info.u.integer, rfd);
    ck_assert_int_eq(as_transport_get_extra_info(t, "peername", &info), AS_ENOKEY);
    ck_assert_int_ge(as_writer_fd(w), 0);

    ck_assert_int_eq(as_writer_write(w, "one\ntwo\n", 8), 0);
    ck_assert_int_eq(as_writer_write(w, "three", 5), 0);
    expect_line(loop, r, "one\n");
    expect_line(loop, r, "two\n");
    ck_assert_uint_eq(as_writer_bytes_sent(w), 13);
    ck_assert_int_eq(as_writer_can_write_eof(w), 1);
    ck_assert_int_eq(as_writer_write_eof(w), 0);
    ck_assert_int_eq(as_writer_write_eof(w), 0); /* idempotent */
    ck_assert_int_eq(as_writer_write(w, "x", 1), AS_ESTATE);
    expect_line(loop, r, "three"); /* the partial line at EOF */
    expect_line(loop, r, "");
    ck_assert(as_reader_at_eof(r));
    /* EOF is the read end's end too: closed, the fd released. */
    expect(loop, as_transport_closed(t), 0);
    ck_assert(as_transport_is_closing(t));
    ck_assert_int_eq(as_transport_fd(t), -1);
    expect(loop, as_writer_wait_closed(w), 0);
    ck_assert_int_eq(as_writer_fd(w), -1);
    ck_assert_int_eq(fd_count(), fds0);

    as_writer_close(w);
    as_writer_unref(w);
    as_transport_unref(t);
    as_reader_unref(r);
    tu_close(loop);
}
END_TEST

START_TEST(write_eof_closes_the_write_end)
{
    int fds0, p[2];
    as_loop *loop = counted_loop(&fds0);
    as_writer *w;
    char buf[16];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(as_open_write_pipe(loop, p[1], NULL, &w), 0);
    ck_assert(is_nonblocking(p[1]));
    ck_assert_int_eq(as_writer_write(w, "abc", 3), 0);
    ck_assert_int_eq(as_writer_write_eof(w), 0);
    ck_assert(as_transport_eof_written(as_writer_transport(w)));
    expect(loop, as_writer_wait_closed(w), 0);
    /* The read end sees the bytes and then EOF: nobody holds the write
     * end any more.  (p[0] is blocking: a bug would hang, not pass.) */
    ck_assert_int_eq(read(p[0], buf, sizeof buf), 3);
    ck_assert(memcmp(buf, "abc", 3) == 0);
    ck_assert_int_eq(read(p[0], buf, sizeof buf), 0);
    ck_assert_int_eq(fcntl(p[1], F_GETFD), -1); /* the transport closed it */
    ck_assert_int_eq(as_writer_write(w, "x", 1), AS_ESTATE);
    close(p[0]);
    as_writer_unref(w);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

/* A reader that does not read: the writer's queue stops growing once
 * drain() waits, and drain() finishes once the queue is down to low
 * water.  Every byte arrives, in order. */
START_TEST(drain_waits_while_the_reader_does_not_read)
{
    int fds0, p[2];
    as_loop *loop = counted_loop(&fds0);
    as_writer *w;
    as_future *d = NULL;
    unsigned char chunk[4096];
    size_t written = 0, got = 0, offset = 0, high, low;
    int i;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    ck_assert_int_eq(as_open_write_pipe(loop, p[1], NULL, &w), 0);
    ck_assert_int_eq(as_writer_set_write_buffer_limits(w, 32768, -1), 0);
    as_writer_get_write_buffer_limits(w, &high, &low);
    ck_assert_uint_eq(high, 32768);
    ck_assert_uint_eq(low, 8192);

    /* A producer that writes and drains, as it should. */
    for (i = 0; i < 1000 && !d; i++) {
        pattern(chunk, sizeof chunk, written);
        ck_assert_int_eq(as_writer_write(w, chunk, sizeof chunk), 0);
        written += sizeof chunk;
        d = as_writer_drain(w);
        if (as_future_done(d)) {
            ck_assert_int_eq(as_future_error(d), 0);
            as_future_unref(d);
            d = NULL;
        }
        tu_turn(loop);
    }
    ck_assert_ptr_nonnull(d); /* it had to wait: the pipe filled */
    ck_assert_uint_gt(as_writer_get_write_buffer_size(w), high);
    ck_assert_uint_le(as_writer_get_write_buffer_size(w), high + sizeof chunk);
    /* Bounded: the kernel's pipe plus one high-water mark and a chunk. */
    ck_assert_uint_le(written, 1024 * 1024 + high + sizeof chunk);
    for (i = 0; i < 10; i++)
        tu_turn(loop);
    ck_assert(!as_future_done(d));

    /* The reader reads: the queue goes out and drain() finishes. */
    while (!as_future_done(d)) {
        got += drain_fd(p[0], &offset);
        tu_turn(loop);
    }
    ck_assert_int_eq(as_future_error(d), 0);
    ck_assert_uint_le(as_writer_get_write_buffer_size(w), low);
    as_future_unref(d);
    as_writer_close(w);
    d = as_writer_wait_closed(w);
    while (!as_future_done(d)) {
        got += drain_fd(p[0], &offset);
        tu_turn(loop);
    }
    as_future_unref(d);
    got += drain_fd(p[0], &offset);
    ck_assert_uint_eq(got, written);
    ck_assert_uint_eq(as_writer_bytes_sent(w), written);
    close(p[0]);
    as_writer_unref(w);
    ck_assert_int_eq(fd_count(), fds0);
    tu_turn(loop); /* the woken waiters' own callbacks run */
    tu_close(loop);
}
END_TEST

static void assert_no_sigpipe_left(void)
{
    sigset_t pending, mask;
    ck_assert_int_eq(sigpending(&pending), 0);
    ck_assert(!sigismember(&pending, SIGPIPE));
    ck_assert_int_eq(pthread_sigmask(SIG_BLOCK, NULL, &mask), 0);
    ck_assert(!sigismember(&mask, SIGPIPE)); /* the mask is given back */
}

/* The read end closes before we write: the write fails with -EPIPE and
 * the process gets no SIGPIPE (its default action would end the test). */
START_TEST(a_write_to_a_closed_pipe_is_epipe_not_sigpipe)
{
    int fds0, p[2];
    as_loop *loop = counted_loop(&fds0);
    as_writer *w;
    const char *msg;

    signal(SIGPIPE, SIG_DFL);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(as_open_write_pipe(loop, p[1], NULL, &w), 0);
    close(p[0]);
    ck_assert_int_eq(as_writer_write(w, "lost", 4), -EPIPE);
    assert_no_sigpipe_left();
    ck_assert_int_eq(as_transport_error(as_writer_transport(w), &msg), -EPIPE);
    ck_assert_ptr_nonnull(msg);
    ck_assert_int_eq(as_writer_write(w, "again", 5), -EPIPE);
    expect(loop, as_writer_drain(w), -EPIPE);
    expect(loop, as_writer_wait_closed(w), -EPIPE);
    ck_assert_int_eq(as_writer_fd(w), -1);
    as_writer_unref(w);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

/* The read end closes while we are not writing: the write end, watched
 * for readability, notices by itself (CPython's trick). */
START_TEST(the_write_end_notices_the_reader_closing)
{
    int fds0, p[2];
    as_loop *loop = counted_loop(&fds0);
    as_writer *w;

    signal(SIGPIPE, SIG_DFL);
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(as_open_write_pipe(loop, p[1], NULL, &w), 0);
    close(p[0]);
    expect(loop, as_writer_wait_closed(w), -EPIPE);
    ck_assert(as_writer_is_closing(w));
    ck_assert_int_eq(as_writer_write(w, "x", 1), -EPIPE);
    ck_assert_int_eq(as_reader_exception(as_writer_reader(w), NULL), -EPIPE);
    assert_no_sigpipe_left();
    as_writer_unref(w);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

START_TEST(a_fifo_carries_lines)
{
    int fds0, rfd, wfd;
    char dir[] = "/tmp/check_pipe.XXXXXX", path[64];
    as_loop *loop = counted_loop(&fds0);
    as_reader *r;
    as_transport *t;
    as_writer *w;

    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(path, 0600), 0);
    /* A non-blocking open of the read end does not wait for a writer. */
    rfd = open(path, O_RDONLY | O_NONBLOCK);
    ck_assert_int_ge(rfd, 0);
    wfd = open(path, O_WRONLY);
    ck_assert_int_ge(wfd, 0);
    ck_assert_int_eq(as_open_read_pipe(loop, rfd, NULL, &r, &t), 0);
    ck_assert_int_eq(as_open_write_pipe(loop, wfd, NULL, &w), 0);

    ck_assert_int_eq(as_writer_write(w, "through\nthe fifo\n", 17), 0);
    expect_line(loop, r, "through\n");
    expect_line(loop, r, "the fifo\n");
    as_writer_close(w);
    expect(loop, as_writer_wait_closed(w), 0);
    expect_line(loop, r, "");
    expect(loop, as_transport_closed(t), 0);

    as_writer_unref(w);
    as_transport_unref(t);
    as_reader_unref(r);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

/* A terminal, as stdin often is: a pty's slave in canonical mode gives
 * one line per read(), and ^D at the start of a line is EOF. */
START_TEST(a_tty_reads_lines_until_eof)
{
    int fds0, master, slave;
    as_loop *loop = counted_loop(&fds0);
    as_reader *r;
    as_transport *t;
    char *name;

    master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0) {
        tu_close(loop);
        return; /* no ptys here: nothing to test */
    }
    ck_assert_int_eq(grantpt(master), 0);
    ck_assert_int_eq(unlockpt(master), 0);
    ck_assert_ptr_nonnull(name = ptsname(master));
    slave = open(name, O_RDWR | O_NOCTTY);
    ck_assert_int_ge(slave, 0);
    ck_assert_int_eq(as_open_read_pipe(loop, slave, NULL, &r, &t), 0);
    ck_assert_int_eq(write(master, "typed\n\004", 7), 7);
    expect_line(loop, r, "typed\n");
    expect_line(loop, r, "");
    expect(loop, as_transport_closed(t), 0);
    as_transport_unref(t);
    as_reader_unref(r);
    close(master);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

START_TEST(dev_null_is_a_character_device_at_eof)
{
    int fds0, fd;
    as_loop *loop = counted_loop(&fds0);
    as_reader *r;
    as_transport *t;

    fd = open("/dev/null", O_RDONLY);

    ck_assert_int_ge(fd, 0);
    if (strcmp(as_loop_backend_name(loop), "epoll") == 0) {
        /* epoll cannot watch a device without a poll method (pipe.h):
         * refused, the fd left as it was. */
        ck_assert_int_eq(as_open_read_pipe(loop, fd, NULL, &r, &t), -EPERM);
        ck_assert(!is_nonblocking(fd));
        close(fd);
        ck_assert_int_eq(fd_count(), fds0);
        tu_close(loop);
        return;
    }
    ck_assert_int_eq(as_open_read_pipe(loop, fd, NULL, &r, &t), 0);
    expect_line(loop, r, "");
    as_transport_unref(t);
    as_reader_unref(r);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

/* Refused: a regular file, a socket, a closed fd, an end open the wrong
 * way.  The fd stays open and as it was (pipe.h, lifetime rule 1). */
START_TEST(what_is_not_a_pipe_is_refused_and_left_alone)
{
    int fds0, file, sv[2], p[2];
    char path[] = "/tmp/check_pipe_file.XXXXXX";
    as_loop *loop = counted_loop(&fds0);
    as_reader *r = tu_poison();
    as_transport *t = tu_poison();
    as_writer *w = tu_poison();

    file = mkstemp(path);
    ck_assert_int_ge(file, 0);
    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(as_open_read_pipe(loop, file, NULL, &r, &t), AS_ENOTPIPE);
    ck_assert_ptr_null(r);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(as_open_write_pipe(loop, file, NULL, &w), AS_ENOTPIPE);
    ck_assert_ptr_null(w);
    ck_assert_int_ne(fcntl(file, F_GETFD), -1);
    ck_assert(!is_nonblocking(file));
    ck_assert_str_eq(as_strerror(AS_ENOTPIPE),
                     "pipe transports are for pipes, FIFOs and character devices only");

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(as_open_read_pipe(loop, sv[0], NULL, &r, &t), AS_ENOTPIPE);
    ck_assert_int_eq(as_open_write_pipe(loop, sv[1], NULL, &w), AS_ENOTPIPE);
    ck_assert(!is_nonblocking(sv[0]));

    ck_assert_int_eq(pipe(p), 0);
    /* The wrong direction is what read() or write() would say. */
    ck_assert_int_eq(as_open_read_pipe(loop, p[1], NULL, &r, &t), -EBADF);
    ck_assert_int_eq(as_open_write_pipe(loop, p[0], NULL, &w), -EBADF);
    ck_assert(!is_nonblocking(p[0]));
    ck_assert(!is_nonblocking(p[1]));
    close(p[0]);
    close(p[1]);
    /* p[0] is closed now. */
    ck_assert_int_eq(as_open_read_pipe(loop, p[0], NULL, &r, &t), -EBADF);
    ck_assert_int_eq(as_open_read_pipe(loop, -1, NULL, &r, &t), AS_EINVAL);

    close(file);
    close(sv[0]);
    close(sv[1]);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

/* We set O_NONBLOCK, so we clear it on close: a dup() of the fd (which
 * shares the flag, as a shell's tty does) finds it as it was.  A flag we
 * found set stays set. */
START_TEST(o_nonblock_is_given_back)
{
    int fds0, p[2], rdup, wdup;
    as_loop *loop = counted_loop(&fds0);
    as_reader *r;
    as_transport *t;
    as_writer *w;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_ge(rdup = dup(p[0]), 0);
    ck_assert_int_ge(wdup = dup(p[1]), 0);
    ck_assert_int_eq(fcntl(p[1], F_SETFL, O_NONBLOCK), 0); /* already set */
    ck_assert_int_eq(as_open_read_pipe(loop, p[0], NULL, &r, &t), 0);
    ck_assert_int_eq(as_open_write_pipe(loop, p[1], NULL, &w), 0);
    ck_assert(is_nonblocking(rdup));
    as_transport_close(t);
    as_writer_close(w);
    expect(loop, as_transport_closed(t), 0);
    expect(loop, as_writer_wait_closed(w), 0);
    ck_assert(!is_nonblocking(rdup));
    ck_assert(is_nonblocking(wdup));
    as_writer_unref(w);
    as_transport_unref(t);
    as_reader_unref(r);
    close(rdup);
    close(wdup);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

/* A read end cannot write, and its close() closes the fd and gives the
 * reader EOF. */
START_TEST(a_read_end_refuses_writes)
{
    int fds0, p[2];
    as_loop *loop = counted_loop(&fds0);
    as_reader *r;
    as_transport *t;

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(as_open_read_pipe(loop, p[0], NULL, &r, &t), 0);
    ck_assert_int_eq(as_transport_write(t, "x", 1), AS_ESTATE);
    ck_assert_int_eq(as_transport_write_eof(t), AS_ESTATE);
    ck_assert_int_eq(as_transport_write_bytes(t, tu_bytes("x", 1)), AS_ESTATE);
    ck_assert_int_eq(as_transport_can_write_eof(t), 0);
    ck_assert_uint_eq(as_transport_get_write_buffer_size(t), 0);
    expect(loop, as_transport_flush(t), 0);
    expect(loop, as_transport_wait_writable(t), 0);
    as_transport_close(t);
    ck_assert(as_transport_is_closing(t));
    ck_assert_int_eq(as_transport_fd(t), -1);
    ck_assert(as_reader_at_eof(r));
    ck_assert_int_eq(as_transport_write(t, "x", 1), AS_ESTATE);
    close(p[1]);
    as_transport_unref(t);
    as_reader_unref(r);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

/* Flow control: a reader that is not read pauses the read end above
 * twice its limit and resumes it as it is read; nothing is lost. */
START_TEST(reading_pauses_and_resumes)
{
    as_pipe_options o;
    as_loop *loop = tu_loop();
    as_reader *r;
    as_transport *t;
    as_writer *w;
    unsigned char buf[65536], want[65536];
    size_t offset = 0, total = 3 * 65536;
    int i;

    memset(&o, 0, sizeof o);
    o.limit = 4096;
    ck_assert_int_eq(as_open_pipe(loop, &o, &r, &t, &w), 0);
    for (i = 0; i < 3; i++) {
        pattern(buf, sizeof buf, (size_t)i * sizeof buf);
        ck_assert_int_eq(as_writer_write(w, buf, sizeof buf), 0);
    }
    for (i = 0; i < 20 && !as_transport_is_reading_paused(t); i++)
        tu_turn(loop);
    ck_assert(as_transport_is_reading_paused(t));
    while (offset < total) {
        as_future *f = as_reader_read(r, 4096);
        as_bytes *b;
        ck_assert_int_eq(wait_for(loop, f), 0);
        b = as_future_take_result(f);
        ck_assert_uint_gt(b->len, 0);
        pattern(want, b->len, offset);
        ck_assert(memcmp(b->data, want, b->len) == 0);
        offset += b->len;
        free(b);
        as_future_unref(f);
    }
    ck_assert_uint_eq(offset, total);
    as_writer_close(w);
    expect_line(loop, r, "");
    as_writer_unref(w);
    as_transport_unref(t);
    as_reader_unref(r);
    tu_close(loop);
}
END_TEST

/* Dropping a transport while open closes it at once (transport.h rule 4);
 * abort() drops what is queued and flush() says so. */
START_TEST(dropping_and_aborting)
{
    int fds0, p[2];
    as_loop *loop = counted_loop(&fds0);
    as_reader *r;
    as_transport *t;
    as_writer *w;
    as_future *flush;
    static unsigned char big[256 * 1024];

    ck_assert_int_eq(as_open_pipe(loop, NULL, &r, &t, &w), 0);
    as_transport_unref(t); /* open: closed now, the reader at EOF */
    ck_assert(as_reader_at_eof(r));
    as_reader_unref(r);
    /* The write end's reader is gone: with nothing queued, a write fails
     * with EPIPE at once. */
    ck_assert_int_eq(as_writer_write(w, "x", 1), -EPIPE);
    as_writer_unref(w);
    ck_assert_int_eq(fd_count(), fds0);

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(as_open_write_pipe(loop, p[1], NULL, &w), 0);
    ck_assert_int_eq(as_writer_write(w, big, sizeof big), 0);
    ck_assert_uint_gt(as_writer_get_write_buffer_size(w), 0);
    flush = as_writer_flush(w);
    as_writer_abort(w);
    expect(loop, flush, AS_ECONNLOST);
    expect(loop, as_writer_wait_closed(w), 0);
    as_writer_unref(w);
    close(p[0]);
    ck_assert_int_eq(fd_count(), fds0);
    tu_turn(loop); /* the woken waiters' own callbacks run */
    tu_close(loop);
}
END_TEST

/* close() waits for a reader that does not read; close_within() does not
 * wait past its deadline: the queue is dropped and the fd closed. */
START_TEST(close_within_gives_up_on_a_reader_that_does_not_read)
{
    int fds0, p[2];
    as_loop *loop = counted_loop(&fds0);
    as_writer *w;
    as_future *flush, *closed;
    static unsigned char big[256 * 1024];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(as_open_write_pipe(loop, p[1], NULL, &w), 0);
    ck_assert_int_eq(as_writer_write(w, big, sizeof big), 0);
    flush = as_writer_flush(w);
    as_writer_close_within(w, 0.05);
    ck_assert(as_writer_is_closing(w));
    ck_assert_int_ne(fcntl(p[1], F_GETFD), -1); /* still flushing */
    closed = as_writer_wait_closed(w);
    expect(loop, closed, 0);
    expect(loop, flush, AS_ECONNLOST);
    ck_assert_uint_lt(as_writer_bytes_sent(w), sizeof big);
    ck_assert_int_eq(as_writer_fd(w), -1);
    as_writer_unref(w);
    close(p[0]);
    tu_turn(loop);
    ck_assert_int_eq(fd_count(), fds0);
    tu_close(loop);
}
END_TEST

START_TEST(every_call_accepts_null)
{
    as_loop *loop = tu_loop();
    as_reader *r = tu_poison();
    as_transport *t = tu_poison();
    as_writer *w = tu_poison();
    int p[2];
    tu_null_call calls[] = {
        TU_NULL_INT(as_read_pipe_transport_new(NULL, 0, NULL, NULL), AS_EINVAL),
        TU_NULL_INT(as_write_pipe_transport_new(NULL, 1, NULL, NULL), AS_EINVAL),
        TU_NULL_INT(as_is_pipe_transport(NULL), 0),
        TU_NULL_INT(as_open_read_pipe(NULL, 0, NULL, &r, &t), AS_EINVAL),
        TU_NULL_INT(as_open_read_pipe(loop, 0, NULL, NULL, &t), AS_EINVAL),
        TU_NULL_INT(as_open_read_pipe(loop, 0, NULL, &r, NULL), AS_EINVAL),
        TU_NULL_INT(as_open_write_pipe(NULL, 1, NULL, &w), AS_EINVAL),
        TU_NULL_INT(as_open_write_pipe(loop, 1, NULL, NULL), AS_EINVAL),
        TU_NULL_INT(as_open_pipe(NULL, NULL, &r, &t, &w), AS_EINVAL),
        TU_NULL_INT(as_open_pipe(loop, NULL, NULL, &t, &w), AS_EINVAL),
        TU_NULL_INT(as_open_pipe(loop, NULL, &r, NULL, &w), AS_EINVAL),
        TU_NULL_INT(as_open_pipe(loop, NULL, &r, &t, NULL), AS_EINVAL),
    };
    as_pipe_options o;

    tu_check_null(calls);
    ck_assert_ptr_null(r);
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(w);
    /* A reader is required by the transports. */
    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(as_read_pipe_transport_new(loop, p[0], NULL, &t), AS_EINVAL);
    memset(&o, 0, sizeof o);
    o.limit = -1;
    ck_assert_int_eq(as_open_read_pipe(loop, p[0], &o, &r, &t), AS_EINVAL);
    ck_assert_int_eq(as_open_pipe(loop, &o, &r, &t, &w), AS_EINVAL);
    ck_assert(!is_nonblocking(p[0]));
    close(p[0]);
    close(p[1]);
    tu_close(loop);
}
END_TEST

START_TEST(a_closed_loop_is_refused)
{
    as_loop *loop = tu_loop();
    as_reader *r;
    as_transport *t;
    int p[2];

    ck_assert_int_eq(pipe(p), 0);
    ck_assert_int_eq(as_reader_new(loop, AS_READER_DEFAULT_LIMIT, &r), 0);
    ck_assert_int_eq(as_loop_close(loop), 1); /* the reader lives */
    ck_assert_int_eq(as_read_pipe_transport_new(loop, p[0], r, &t), AS_ECLOSED);
    ck_assert_ptr_null(t);
    ck_assert_int_ne(fcntl(p[0], F_GETFD), -1);
    as_reader_unref(r); /* the loop's memory goes with it */
    close(p[0]);
    close(p[1]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("pipe");
    TCase *tc = tcase_create("pipe");
    /* Ignore nothing: a SIGPIPE the library let through would kill the
     * test and fail it. */
    signal(SIGPIPE, SIG_DFL);
    tcase_add_test(tc, lines_through_a_pipe_then_eof);
    tcase_add_test(tc, write_eof_closes_the_write_end);
    tcase_add_test(tc, drain_waits_while_the_reader_does_not_read);
    tcase_add_test(tc, a_write_to_a_closed_pipe_is_epipe_not_sigpipe);
    tcase_add_test(tc, the_write_end_notices_the_reader_closing);
    tcase_add_test(tc, a_fifo_carries_lines);
    tcase_add_test(tc, a_tty_reads_lines_until_eof);
    tcase_add_test(tc, dev_null_is_a_character_device_at_eof);
    tcase_add_test(tc, what_is_not_a_pipe_is_refused_and_left_alone);
    tcase_add_test(tc, o_nonblock_is_given_back);
    tcase_add_test(tc, a_read_end_refuses_writes);
    tcase_add_test(tc, reading_pauses_and_resumes);
    tcase_add_test(tc, dropping_and_aborting);
    tcase_add_test(tc, close_within_gives_up_on_a_reader_that_does_not_read);
    tcase_add_test(tc, every_call_accepts_null);
    tcase_add_test(tc, a_closed_loop_is_refused);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
