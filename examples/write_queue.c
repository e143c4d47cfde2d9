/*
 * write_queue.c - what a transport does with the bytes it is given
 * (chapter 6): writes made in one loop turn leave together at its end, in
 * one system call; copied bytes and handed-over bytes share one queue, in
 * order; a handed-over buffer is released only once it has been sent.
 *
 * The transport wraps one end of a socketpair; the program itself reads the
 * other end with plain recv(), so you can see exactly what arrived when.
 * It prints each step and exits 0 if every check held.
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failed;

static void check(int ok, const char *what)
{
    printf("  %-58s %s\n", what, ok ? "ok" : "FAILED");
    if (!ok)
        failed = 1;
}

/* How many bytes the peer end holds right now, without waiting. */
static ssize_t peer_recv(int fd, char *buf, size_t size)
{
    ssize_t n = recv(fd, buf, size, MSG_DONTWAIT);
    return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : n;
}

/* listing: owned */
/* A buffer handed over with as_transport_write_owned(): the transport keeps
 * a pointer to it, and calls this once its last byte has been sent. */
struct owned {
    char text[32];
    int released;
};

static void release_owned(void *owner)
{
    struct owned *o = owner;
    o->released = 1;
}
/* end listing */

int main(void)
{
    as_loop *loop;
    as_reader *reader;
    as_transport *t;
    as_future *f;
    struct owned body = {"the body, never copied;", 0};
    char buf[256];
    ssize_t n;
    int sv[2], err;

    if ((err = as_loop_new(&loop)) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0 ||
        (err = as_reader_new(loop, AS_READER_DEFAULT_LIMIT, &reader)) < 0) {
        fprintf(stderr, "write_queue: setup: %s\n", as_strerror(err ? err : -errno));
        return 1;
    }
    if ((err = as_socket_transport_new(loop, sv[0], reader, &t)) < 0) {
        fprintf(stderr, "write_queue: transport: %s\n", as_strerror(err));
        return 1;
    }

    printf("three writes in one turn:\n");
    /* listing: one_turn */
    /* Copied, handed over, copied: nothing is sent yet.  The transport
     * queues them for the end of the turn, to send them together. */
    err = as_transport_write(t, "head; ", 6);
    if (!err)
        err = as_transport_write_owned(t, body.text, strlen(body.text), &body, release_owned);
    if (!err)
        err = as_transport_write(t, " tail\n", 6);
    printf("  queued: %zu bytes, sent: %llu\n", as_transport_get_write_buffer_size(t),
           as_transport_bytes_sent(t));

    /* await transport.flush(): the loop turns once; at the end of that
     * turn one sendmsg() hands all three pieces to the kernel. */
    f = as_transport_flush(t);
    as_loop_run_until_complete(loop, f);
    as_future_unref(f);
    /* end listing */
    check(err == 0, "the three writes were accepted");
    check(as_transport_get_write_buffer_size(t) == 0, "the queue is empty after the flush");
    check(body.released == 1, "the handed-over buffer was released once sent");
    n = peer_recv(sv[1], buf, sizeof buf - 1);
    buf[n > 0 ? n : 0] = '\0';
    printf("  the peer reads %zd bytes at once: %s", n, buf);
    check(n == 35 && strcmp(buf, "head; the body, never copied; tail\n") == 0,
          "all three arrived in order, in one piece");

    printf("a write the kernel cannot take at once:\n");
    {
        static char big[1 << 20];
        int snd = 16384;
        size_t queued;
        memset(big, 'x', sizeof big);
        setsockopt(as_transport_fd(t), SOL_SOCKET, SO_SNDBUF, &snd, sizeof snd);
        /* listing: partial */
        /* 1 MiB: big writes skip coalescing and go to send() at once; the
         * kernel takes what fits and the rest waits in the queue until
         * the socket is writable again. */
        err = as_transport_write(t, big, sizeof big);
        queued = as_transport_get_write_buffer_size(t);
        printf("  the kernel took %llu bytes at once, %zu wait in the queue\n",
               as_transport_bytes_sent(t) - 35, queued);
        /* end listing */
        check(err == 0 && queued > 0 && queued < sizeof big, "part sent, the rest queued");
        /* The peer reads; each time it makes room, the loop (watching the
         * socket for writability now) sends more of the queue. */
        f = as_transport_flush(t);
        {
            size_t got = 0;
            n = 0;
            while (got < sizeof big && n >= 0) {
                while ((n = peer_recv(sv[1], buf, sizeof buf)) > 0)
                    got += (size_t)n;
                if (as_transport_get_write_buffer_size(t) > 0 && as_loop_run_once(loop) < 0)
                    break;
            }
            check(got == sizeof big, "every byte arrived exactly once");
        }
        check(as_future_done(f) && as_future_error(f) == 0, "the flush finished");
        as_future_unref(f);
    }

    as_transport_close(t);
    as_transport_unref(t);
    as_reader_unref(reader);
    close(sv[1]);
    if (as_loop_close(loop) != 0) {
        fprintf(stderr, "write_queue: something was left alive\n");
        failed = 1;
    }
    printf("%s\n", failed ? "FAILED" : "ok");
    return failed;
}
