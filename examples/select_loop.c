/*
 * select_loop.c - chapter 2: the ROT13 server of chapter 1 on a select() loop.
 *
 * Same clients as blocking.c (three threads that connect at once and type
 * slowly), but the server is now one thread that never blocks on a single
 * socket.  It keeps every socket non-blocking, asks select() which ones are
 * ready, and does only the work that cannot block.  Every client is answered
 * at once, and the program prints how long each one waited.
 *
 * Build and run: make examples/select_loop && ./examples/select_loop
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NCLIENTS 3
#define NLINES 3
#define PAUSE_MS 100
#define MAXCONN 16

static const char *const lines[NLINES] = {
    "Hello, world\n", "Why did the chicken cross the road?\n", "Gb trg gb gur bgure fvqr.\n",
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char rot13_char(char c)
{
    if (c >= 'a' && c <= 'z')
        return (char)('a' + (c - 'a' + 13) % 26);
    if (c >= 'A' && c <= 'Z')
        return (char)('A' + (c - 'A' + 13) % 26);
    return c;
}

static int set_nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    return 0;
}

static int would_block(int err)
{
    return err == EAGAIN || err == EWOULDBLOCK;
}

/* ---- the server: one thread, many connections ---- */

/* listing: conn */
/* Everything the server must remember about one client between two turns of
 * the loop.  In blocking.c this state lived on serve_client()'s stack; now
 * that no call may wait, it has to live somewhere that outlasts the call. */
struct conn {
    int fd;          /* -1 when the slot is free */
    char in[512];    /* received, not yet a complete line */
    size_t inlen;
    char out[4096];  /* replies select() has not let us write yet */
    size_t outlen;
    int eof;         /* the client closed its side */
};
/* end listing */

static struct conn conns[MAXCONN];

/* listing: interest */
/* What each fd waits for, kept across turns.  select() overwrites the sets
 * it is given with its answer, so each turn works on a copy of these. */
static fd_set watch_read, watch_write;

/* Bring a connection's entries in the two sets up to date with its state. */
static void update_interest(struct conn *c)
{
    /* Read only while a whole buffer of replies would still fit: a client
     * that sends but never reads cannot make us buffer without bound.
     * This is backpressure, in one line. */
    if (!c->eof && sizeof c->out - c->outlen >= sizeof c->in)
        FD_SET(c->fd, &watch_read);
    else
        FD_CLR(c->fd, &watch_read);
    if (c->outlen > 0)
        FD_SET(c->fd, &watch_write);
    else
        FD_CLR(c->fd, &watch_write);
}
/* end listing */

static void conn_close(struct conn *c)
{
    FD_CLR(c->fd, &watch_read);
    FD_CLR(c->fd, &watch_write);
    close(c->fd);
    c->fd = -1;
}

/* listing: on_readable */
/* The socket is readable: one read() will not block.  Turn every complete
 * line into a reply in c->out. */
static void on_readable(struct conn *c)
{
    ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (n < 0) {
        if (errno == EINTR || would_block(errno))
            return; /* a false alarm is allowed; try again next turn */
        perror("read");
        conn_close(c);
        return;
    }
    if (n == 0) {
        c->eof = 1;
        return;
    }
    c->inlen += (size_t)n;

    char *nl;
    while ((nl = memchr(c->in, '\n', c->inlen)) != NULL) {
        size_t linelen = (size_t)(nl - c->in) + 1;
        /* Room was checked before we asked to read (see the loop). */
        for (size_t i = 0; i < linelen; i++)
            c->out[c->outlen + i] = rot13_char(c->in[i]);
        c->outlen += linelen;
        memmove(c->in, c->in + linelen, c->inlen - linelen);
        c->inlen -= linelen;
    }
    if (c->inlen == sizeof c->in) {
        fprintf(stderr, "line too long; closing\n");
        conn_close(c);
    }
}
/* end listing */

/* listing: on_writable */
/* The socket is writable: write() will take some bytes without blocking,
 * maybe not all of them.  Keep the rest for the next turn. */
static void on_writable(struct conn *c)
{
    ssize_t n = write(c->fd, c->out, c->outlen);
    if (n < 0) {
        if (errno == EINTR || would_block(errno))
            return;
        perror("write");
        conn_close(c);
        return;
    }
    memmove(c->out, c->out + n, c->outlen - (size_t)n);
    c->outlen -= (size_t)n;
}
/* end listing */

/* listing: on_acceptable */
/* The listening socket is readable: clients are waiting in accept()'s queue.
 * Take them all; the socket is non-blocking, so EAGAIN says "no more". */
static int on_acceptable(int lfd, int *accepted)
{
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (would_block(errno) || errno == ECONNABORTED)
                return 0;
            return -errno;
        }
        /* FD_SET() on an fd >= FD_SETSIZE writes outside the fd_set: memory
         * corruption, not an error code.  Refuse such a client instead. */
        if (fd >= FD_SETSIZE) {
            fprintf(stderr, "fd %d >= FD_SETSIZE (%d): refusing client\n",
                    fd, FD_SETSIZE);
            close(fd);
            continue;
        }
        struct conn *c = NULL;
        for (int i = 0; i < MAXCONN && c == NULL; i++)
            if (conns[i].fd < 0)
                c = &conns[i];
        int rc = set_nonblocking(fd);
        if (c == NULL || rc < 0) {
            fprintf(stderr, "cannot serve fd %d: %s\n", fd,
                    c == NULL ? "too many clients" : strerror(-rc));
            close(fd);
            continue;
        }
        memset(c, 0, sizeof *c);
        c->fd = fd;
        update_interest(c);
        ++*accepted;
    }
}
/* end listing */

static int run_server(int lfd, int nclients)
{
    int accepted = 0;

    for (int i = 0; i < MAXCONN; i++)
        conns[i].fd = -1;
    FD_ZERO(&watch_read);
    FD_ZERO(&watch_write);
    FD_SET(lfd, &watch_read);

    /* listing: loop */
    for (;;) {
        /* 1. Find the highest fd and see whether we are done.  This scan,
         *    like select() itself, costs O(number of fds) every turn. */
        int maxfd = lfd, open_conns = 0;
        for (int i = 0; i < MAXCONN; i++) {
            if (conns[i].fd < 0)
                continue;
            open_conns++;
            if (conns[i].fd > maxfd)
                maxfd = conns[i].fd;
        }
        if (accepted == nclients && open_conns == 0)
            return 0; /* everyone was served and has gone */

        /* 2. Wait on copies of the sets (fd_set is a struct, so `=` copies
         *    it) until some fd is ready, or 5 s pass: a safety net. */
        fd_set rset = watch_read, wset = watch_write;
        struct timeval timeout = {5, 0};
        int nready = select(maxfd + 1, &rset, &wset, NULL, &timeout);
        if (nready < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (nready == 0)
            return -ETIMEDOUT;

        /* 3. Do the work that is now possible without blocking. */
        if (FD_ISSET(lfd, &rset)) {
            int rc = on_acceptable(lfd, &accepted);
            if (rc < 0)
                return rc;
            if (accepted == nclients)
                FD_CLR(lfd, &watch_read); /* expect nobody else */
        }
        for (int i = 0; i < MAXCONN; i++) {
            struct conn *c = &conns[i];
            if (c->fd >= 0 && FD_ISSET(c->fd, &rset))
                on_readable(c);
            if (c->fd >= 0 && FD_ISSET(c->fd, &wset))
                on_writable(c);
            if (c->fd < 0)
                continue;
            if (c->eof && c->outlen == 0)
                conn_close(c); /* all answered and the client is gone */
            else
                update_interest(c);
        }
    }
    /* end listing */
}

/* ---- the clients: exactly those of blocking.c ---- */

struct client {
    int id;
    in_port_t port;
    double started, waited;
    int correct, error;
};

static int write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static ssize_t read_line(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, 1);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (buf[len++] == '\n')
            break;
    }
    buf[len] = '\0';
    return (ssize_t)len;
}

static void *client_main(void *arg)
{
    struct client *c = arg;
    struct sockaddr_in sin;
    char want[128], got[128];

    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) {
        c->error = -errno;
        return NULL;
    }
    struct timeval tv = {5, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
        goto fail;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = c->port;
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
        goto fail;
    c->started = now();

    for (int i = 0; i < NLINES; i++) {
        if (i > 0) {
            struct timespec pause = {0, PAUSE_MS * 1000000L};
            nanosleep(&pause, NULL);
        }
        int rc = write_all(fd, lines[i], strlen(lines[i]));
        if (rc < 0) {
            c->error = rc;
            break;
        }
        ssize_t n = read_line(fd, got, sizeof got);
        if (n <= 0) {
            c->error = n < 0 ? (int)n : -ECONNRESET;
            break;
        }
        if (i == 0)
            c->waited = now() - c->started;
        size_t len = strlen(lines[i]);
        for (size_t k = 0; k <= len; k++)
            want[k] = rot13_char(lines[i][k]);
        if (strcmp(want, got) == 0)
            c->correct++;
    }
    close(fd);
    return NULL;
fail:
    c->error = -errno;
    close(fd);
    return NULL;
}

static int listen_loopback(in_port_t *port)
{
    struct sockaddr_in sin;
    socklen_t slen = sizeof sin;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(fd, NCLIENTS) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &slen) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    int rc = set_nonblocking(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    if (fd >= FD_SETSIZE) {
        close(fd);
        return -EMFILE;
    }
    *port = sin.sin_port;
    return fd;
}

int main(void)
{
    struct client clients[NCLIENTS];
    pthread_t threads[NCLIENTS];
    in_port_t port;
    int status = 0, nthreads = 0;

    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        perror("sigaction");
        return 1;
    }
    int lfd = listen_loopback(&port);
    if (lfd < 0) {
        fprintf(stderr, "listen: %s\n", strerror(-lfd));
        return 1;
    }
    printf("select() ROT13 server on 127.0.0.1:%u, %d clients at once "
           "(FD_SETSIZE is %d)\n", (unsigned)ntohs(port), NCLIENTS, FD_SETSIZE);

    for (int i = 0; i < NCLIENTS; i++) {
        memset(&clients[i], 0, sizeof clients[i]);
        clients[i].id = i + 1;
        clients[i].port = port;
        int rc = pthread_create(&threads[i], NULL, client_main, &clients[i]);
        if (rc != 0) {
            fprintf(stderr, "pthread_create: %s\n", strerror(rc));
            status = 1;
            break;
        }
        nthreads++;
    }

    int rc = run_server(lfd, nthreads);
    if (rc < 0) {
        fprintf(stderr, "server: %s\n", strerror(-rc));
        status = 1;
    }
    for (int i = 0; i < MAXCONN; i++)
        if (conns[i].fd >= 0)
            conn_close(&conns[i]);
    close(lfd);

    for (int i = 0; i < nthreads; i++) {
        int jrc = pthread_join(threads[i], NULL);
        if (jrc != 0) {
            fprintf(stderr, "pthread_join: %s\n", strerror(jrc));
            status = 1;
            continue;
        }
        struct client *c = &clients[i];
        if (c->error < 0) {
            printf("client %d failed: %s\n", c->id, strerror(-c->error));
            status = 1;
        } else {
            printf("client %d: first reply after %.2f s, %d/%d replies correct\n",
                   c->id, c->waited, c->correct, NLINES);
            if (c->correct != NLINES)
                status = 1;
        }
    }
    printf("%s: one thread served every client at once\n",
           status == 0 ? "ok" : "FAILED");
    return status;
}
