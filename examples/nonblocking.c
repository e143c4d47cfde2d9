/*
 * nonblocking.c - chapter 1: what O_NONBLOCK changes.
 *
 * A connected pair of sockets (socketpair) stands in for a network
 * connection; one end writes 1 MiB, the other reads it.  With both ends
 * non-blocking and only one thread, the program shows the three facts the
 * rest of the tutorial is built on:
 *   1. read() on a socket with nothing to read fails with EAGAIN instead of
 *      waiting;
 *   2. write() takes only what fits in the kernel's buffer (a partial
 *      write), then fails with EAGAIN;
 *   3. so the program must remember how far it got and come back later,
 *      and it needs someone to tell it when "later" is (the next chapter).
 *
 * Build and run: make examples/nonblocking && ./examples/nonblocking
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TOTAL (1024 * 1024) /* bytes to send */

/* listing: set_nonblocking */
/* Turn on O_NONBLOCK, keeping the other file status flags. */
static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}
/* end listing */

/* POSIX allows EAGAIN and EWOULDBLOCK to be different values; accept both. */
static int would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

static unsigned char pattern(size_t i)
{
    return (unsigned char)(i * 31 + 7);
}

int main(void)
{
    int sv[2];
    unsigned char *out = NULL, in[65536];
    int status = 1;

    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
        perror("socketpair");
        return 1;
    }
    int rc = set_nonblocking(sv[0]);
    if (rc == 0)
        rc = set_nonblocking(sv[1]);
    if (rc < 0) {
        fprintf(stderr, "set_nonblocking: %s\n", strerror(-rc));
        goto done;
    }
    out = malloc(TOTAL);
    if (out == NULL) {
        perror("malloc");
        goto done;
    }
    for (size_t i = 0; i < TOTAL; i++)
        out[i] = pattern(i);

    /* listing: eagain */
    /* 1. Nothing has been sent yet: a blocking read() would wait here
     *    forever; a non-blocking one returns at once. */
    ssize_t n = read(sv[1], in, sizeof in);
    if (n >= 0 || !would_block(errno)) {
        fprintf(stderr, "read() on an empty socket returned %zd\n", n);
        goto done;
    }
    printf("read() with nothing to read: %s (try again later)\n",
           strerror(errno));
    /* end listing */

    /* listing: pump */
    /* 2 and 3.  `sent` and `received` are the state a non-blocking program
     * must keep: how far it got before the kernel said "not now". */
    size_t sent = 0, received = 0;
    unsigned rounds = 0, partial = 0, full = 0;
    int shut = 0;
    while (received < TOTAL) {
        rounds++;
        /* Write until the kernel's buffer is full. */
        while (sent < TOTAL) {
            n = write(sv[0], out + sent, TOTAL - sent);
            if (n < 0) {
                if (would_block(errno)) {
                    full++; /* buffer full: come back after the reader ran */
                    break;
                }
                perror("write");
                goto done;
            }
            if ((size_t)n < TOTAL - sent && partial++ == 0)
                printf("write(%zu bytes) took only %zd: a partial write\n",
                       (size_t)(TOTAL - sent), n);
            sent += (size_t)n;
        }
        if (sent == TOTAL && !shut) {
            /* No more data: after the last byte the reader sees EOF. */
            if (shutdown(sv[0], SHUT_WR) < 0) {
                perror("shutdown");
                goto done;
            }
            shut = 1;
        }
        /* Read until there is nothing left to read right now. */
        for (;;) {
            n = read(sv[1], in, sizeof in);
            if (n < 0) {
                if (would_block(errno))
                    break;
                perror("read");
                goto done;
            }
            if (n == 0)
                break; /* end of file: the writer shut down its side */
            for (ssize_t k = 0; k < n; k++) {
                if (in[k] != pattern(received + (size_t)k)) {
                    fprintf(stderr, "byte %zu is wrong\n", received + (size_t)k);
                    goto done;
                }
            }
            received += (size_t)n;
        }
    }
    /* end listing */

    printf("sent and checked %d bytes in %u rounds: %u partial writes, "
           "%u writes refused with EAGAIN\n", TOTAL, rounds, partial, full);
    /* One more read after EOF returns 0 again: EOF is not an error. */
    n = read(sv[1], in, sizeof in);
    if (n != 0) {
        fprintf(stderr, "read() after end of file returned %zd\n", n);
        goto done;
    }
    printf("read() after the writer's shutdown: 0 (end of file), not EAGAIN\n");
    status = 0;
done:
    free(out);
    close(sv[0]);
    close(sv[1]);
    printf("%s\n", status == 0 ? "ok" : "FAILED");
    return status;
}
