/*
 * select_echo.c - the smallest honest select() echo server: the floor that
 * any select()-based loop (ours included) can be compared with.
 *
 * usage: select_echo PORT [MAX_SECONDS]
 *   PORT 0 picks a free port; the server prints "PORT n" on stdout once it
 *   listens on 127.0.0.1.  It exits cleanly on SIGTERM/SIGINT, and by itself
 *   after MAX_SECONDS if given (a safety net for benchmark scripts).
 *
 * One recv() of up to 256 KiB into a buffer shared by all connections, then
 * one send() of what came in.  Only if the send is partial is the rest copied
 * to the connection's own buffer; the connection then stops reading until it
 * is flushed (backpressure), so memory per connection stays bounded.  No
 * allocation or copy happens per round trip otherwise.  Descriptors at or
 * above FD_SETSIZE cannot be watched by select() and are refused.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE (256 * 1024)

struct pending {
    char *buf;
    size_t off, len;
};

static char rbuf[READ_SIZE];
static struct pending pend[FD_SETSIZE];
static fd_set rmaster, wmaster;
static int maxfd;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void drop(int fd)
{
    FD_CLR(fd, &rmaster);
    FD_CLR(fd, &wmaster);
    free(pend[fd].buf);
    pend[fd].buf = NULL;
    close(fd);
}

/* Send what is pending on fd; 0 when flushed, 1 when more is left, -1 on error. */
static int flush_pending(int fd)
{
    struct pending *p = &pend[fd];
    while (p->off < p->len) {
        ssize_t n = send(fd, p->buf + p->off, p->len - p->off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
        }
        p->off += (size_t)n;
    }
    free(p->buf);
    p->buf = NULL;
    return 0;
}

static void on_readable(int fd)
{
    ssize_t n, w;
    do
        n = recv(fd, rbuf, sizeof rbuf, 0);
    while (n < 0 && errno == EINTR);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return;
    if (n <= 0) {
        drop(fd);
        return;
    }
    do
        w = send(fd, rbuf, (size_t)n, MSG_NOSIGNAL);
    while (w < 0 && errno == EINTR);
    if (w < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            drop(fd);
            return;
        }
        w = 0;
    }
    if (w < n) {
        struct pending *p = &pend[fd];
        p->len = (size_t)(n - w);
        p->off = 0;
        p->buf = malloc(p->len);
        if (!p->buf) {
            drop(fd);
            return;
        }
        memcpy(p->buf, rbuf + w, p->len);
        FD_CLR(fd, &rmaster);
        FD_SET(fd, &wmaster);
    }
}

static void on_acceptable(int lfd)
{
    for (;;) {
        int one = 1;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("select_echo: accept");
            return;
        }
        if (fd >= FD_SETSIZE) {
            fprintf(stderr, "select_echo: fd %d >= FD_SETSIZE (%d), refused\n", fd, FD_SETSIZE);
            close(fd);
            continue;
        }
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        FD_SET(fd, &rmaster);
        if (fd > maxfd)
            maxfd = fd;
    }
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    struct sigaction act;
    int lfd, one = 1, fd;
    long port;

    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: select_echo PORT [MAX_SECONDS]\n");
        return 2;
    }
    port = strtol(argv[1], NULL, 10);
    if (port < 0 || port > 65535) {
        fprintf(stderr, "select_echo: bad port\n");
        return 2;
    }
    if (argc == 3)
        alarm((unsigned)strtoul(argv[2], NULL, 10));
    signal(SIGPIPE, SIG_IGN); /* a peer that closes first must not kill us */
    memset(&act, 0, sizeof act);
    act.sa_handler = on_signal; /* no SA_RESTART: select() returns EINTR */
    sigaction(SIGTERM, &act, NULL);
    sigaction(SIGINT, &act, NULL);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(lfd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(lfd, 1024) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &salen) != 0 || lfd >= FD_SETSIZE) {
        perror("select_echo: listen");
        return 1;
    }
    printf("PORT %d\n", ntohs(sa.sin_port));
    fflush(stdout);

    FD_ZERO(&rmaster);
    FD_ZERO(&wmaster);
    FD_SET(lfd, &rmaster);
    maxfd = lfd;
    while (!stop) {
        fd_set r = rmaster, w = wmaster;
        /* A signal that lands between the test of `stop` and select() is
         * not an EINTR: wake up once a second to look again (only an idle
         * server notices). */
        struct timeval tv = {1, 0};
        int n = select(maxfd + 1, &r, &w, NULL, &tv);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("select_echo: select");
            return 1;
        }
        for (fd = 0; fd <= maxfd && n > 0; fd++) {
            if (FD_ISSET(fd, &w)) {
                int rc = flush_pending(fd);
                n--;
                if (rc < 0) {
                    drop(fd);
                } else if (rc == 0) {
                    FD_CLR(fd, &wmaster);
                    FD_SET(fd, &rmaster);
                }
            }
            if (FD_ISSET(fd, &r)) {
                n--;
                if (fd == lfd)
                    on_acceptable(lfd);
                else if (FD_ISSET(fd, &rmaster))
                    on_readable(fd);
            }
        }
    }
    for (fd = 0; fd <= maxfd; fd++)
        if (fd != lfd && (FD_ISSET(fd, &rmaster) || FD_ISSET(fd, &wmaster)))
            drop(fd);
    close(lfd);
    return 0;
}
