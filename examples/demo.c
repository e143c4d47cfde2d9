/*
 * demo.c - one thread, one event loop, many connections at once.
 *
 * A ROT13 line server listens on 127.0.0.1 (a port the kernel picks), and
 * NCLIENTS clients connect to it.  Server and clients are all in this one
 * thread, on one asyncstreams loop: nothing here ever blocks.  Each client
 * sends NLINES lines, one every few dozen milliseconds (each client at its
 * own pace, driven by a timer), checks that every reply is the ROT13 of what
 * it sent, and hangs up.  The program prints the replies as they arrive, so
 * you can watch the clients take turns, then a summary.  It exits with 0
 * only if every reply was right.
 *
 * It uses only the loop (as_loop_add_reader / add_writer / call_later) and
 * plain non-blocking sockets: the layer the tutorial builds up to in chapter
 * 3.  Later chapters replace the hand-written buffering below with
 * transports and streams.
 *
 * Run it: make demo
 */
#include <asyncstreams.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define NCLIENTS 4
#define NLINES 5
#define BUFSIZE 1024
#define WATCHDOG 10.0 /* seconds: give up if the demo is not done by then */

static const char *const phrases[NLINES] = {
    "Hello, world",
    "Why did the chicken cross the road?",
    "To get to the other side.",
    "The quick brown fox jumps over the lazy dog",
    "Nothing here blocks.",
};

/* Everything the demo counts, shared by the server and the clients. */
static struct {
    as_loop *loop;
    double start;
    int server_conns;       /* server-side connections open */
    int accepted, peak_conns;
    int clients_done;       /* clients that got every reply (or failed) */
    int lines_sent, replies_ok, replies_bad;
    size_t bytes_sent, bytes_received;
    int failed;             /* a system call or the loop failed */
    int timed_out;
} demo;

static void fail(const char *what, int code)
{
    fprintf(stderr, "demo: %s: %s\n", what, as_strerror(code));
    demo.failed = 1;
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

/* ================================================================ server */

/* One accepted connection.  Its two watchers (read, write) get the conn as
 * userdata and no destroy hook: conn_close() removes both and frees it. */
struct conn {
    int fd;
    char in[BUFSIZE];     /* bytes of a line not yet complete */
    size_t inlen;
    char out[4 * BUFSIZE]; /* replies the socket has not taken yet */
    size_t outlen;
    int reading, writing; /* which watchers are installed */
    int eof;              /* the client has closed its side */
};

static void conn_readable(void *userdata);
static void conn_writable(void *userdata);

static void conn_close(struct conn *c)
{
    as_loop_remove_reader(demo.loop, c->fd);
    as_loop_remove_writer(demo.loop, c->fd);
    close(c->fd);
    free(c);
    demo.server_conns--;
}

/* listing: conn_update */
/* Make the watchers match the state: read while there is room for a full
 * read's worth of replies (so a client that never reads cannot make us
 * buffer without bound), write while replies are waiting.  Returns 0, or a
 * negative code after closing the connection. */
static int conn_update(struct conn *c)
{
    int want_read = !c->eof && sizeof c->out - c->outlen >= sizeof c->in;
    int want_write = c->outlen > 0;
    int rc = 0;

    if (c->eof && c->outlen == 0) {
        conn_close(c); /* every line answered, and the client is gone */
        return 0;
    }
    if (want_read && !c->reading)
        rc = as_loop_add_reader(demo.loop, c->fd, conn_readable, c, NULL);
    else if (!want_read && c->reading)
        as_loop_remove_reader(demo.loop, c->fd);
    if (rc == 0) {
        c->reading = want_read;
        if (want_write && !c->writing)
            rc = as_loop_add_writer(demo.loop, c->fd, conn_writable, c, NULL);
        else if (!want_write && c->writing)
            as_loop_remove_writer(demo.loop, c->fd);
        if (rc == 0)
            c->writing = want_write;
    }
    if (rc < 0) {
        fail("watching a connection", rc);
        conn_close(c);
    }
    return rc;
}
/* end listing */

/* Write what the socket will take now; keep the rest for conn_writable(). */
static int conn_flush(struct conn *c)
{
    while (c->outlen > 0) {
        ssize_t n = write(c->fd, c->out, c->outlen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (would_block(errno))
                break;
            return -errno;
        }
        memmove(c->out, c->out + n, c->outlen - (size_t)n);
        c->outlen -= (size_t)n;
    }
    return 0;
}

/* listing: conn_readable */
static void conn_readable(void *userdata)
{
    struct conn *c = userdata;
    ssize_t n = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
    if (n < 0) {
        if (errno == EINTR || would_block(errno))
            return;
        fail("server read", -errno);
        conn_close(c);
        return;
    }
    if (n == 0) {
        c->eof = 1;
    } else {
        c->inlen += (size_t)n;
        /* ROT13 each complete line into the output buffer.  conn_update()
         * only reads when out has room for all of `in`, so this fits. */
        char *nl;
        while ((nl = memchr(c->in, '\n', c->inlen)) != NULL) {
            size_t len = (size_t)(nl - c->in) + 1;
            for (size_t i = 0; i < len; i++)
                c->out[c->outlen + i] = rot13_char(c->in[i]);
            c->outlen += len;
            memmove(c->in, c->in + len, c->inlen - len);
            c->inlen -= len;
        }
        if (c->inlen == sizeof c->in) {
            fail("server", AS_ELIMIT); /* a line longer than the buffer */
            conn_close(c);
            return;
        }
    }
    /* Try to send at once: usually the socket takes it all, and we never
     * need to watch for writability. */
    int rc = conn_flush(c);
    if (rc < 0) {
        fail("server write", rc);
        conn_close(c);
        return;
    }
    conn_update(c);
}
/* end listing */

static void conn_writable(void *userdata)
{
    struct conn *c = userdata;
    int rc = conn_flush(c);
    if (rc < 0) {
        fail("server write", rc);
        conn_close(c);
        return;
    }
    conn_update(c);
}

/* listing: on_accept */
/* The listening socket is readable: accept every waiting client. */
static void on_accept(void *userdata)
{
    int lfd = *(int *)userdata;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (!would_block(errno) && errno != ECONNABORTED)
                fail("accept", -errno);
            return;
        }
        struct conn *c = calloc(1, sizeof *c);
        int rc = c == NULL ? -ENOMEM : set_nonblocking(fd);
        if (rc < 0) {
            fail("accepting a client", rc);
            free(c);
            close(fd);
            continue;
        }
        c->fd = fd;
        demo.accepted++;
        if (++demo.server_conns > demo.peak_conns)
            demo.peak_conns = demo.server_conns;
        conn_update(c); /* starts reading; fails cleanly if fd >= FD_SETSIZE */
    }
}
/* end listing */

/* ================================================================ clients */

struct client {
    int id, fd;
    double interval;      /* seconds between two lines */
    int sent, replied;    /* lines sent, replies received */
    char in[BUFSIZE];
    size_t inlen;
    char out[BUFSIZE];
    size_t outlen;
    int writing, finished;
};

static void client_readable(void *userdata);
static void client_writable(void *userdata);
static void client_send_next(void *userdata);

static void make_line(const struct client *cl, int i, char *buf, size_t size)
{
    snprintf(buf, size, "[client %d] %s\n", cl->id, phrases[i]);
}

/* The client is done (all replies in, or an error): stop watching, close. */
static void client_finish(struct client *cl)
{
    as_loop_remove_reader(demo.loop, cl->fd);
    as_loop_remove_writer(demo.loop, cl->fd);
    close(cl->fd);
    cl->fd = -1;
    cl->finished = 1;
    demo.clients_done++;
}

static int client_flush(struct client *cl)
{
    while (cl->outlen > 0) {
        ssize_t n = write(cl->fd, cl->out, cl->outlen);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (would_block(errno))
                break;
            return -errno;
        }
        memmove(cl->out, cl->out + n, cl->outlen - (size_t)n);
        cl->outlen -= (size_t)n;
        demo.bytes_sent += (size_t)n;
    }
    /* Watch for writability only while something is left over. */
    int rc = 0;
    if (cl->outlen > 0 && !cl->writing)
        rc = as_loop_add_writer(demo.loop, cl->fd, client_writable, cl, NULL);
    else if (cl->outlen == 0 && cl->writing)
        as_loop_remove_writer(demo.loop, cl->fd);
    if (rc == 0)
        cl->writing = cl->outlen > 0;
    return rc;
}

static void client_writable(void *userdata)
{
    struct client *cl = userdata;
    int rc = client_flush(cl);
    if (rc < 0) {
        fail("client write", rc);
        client_finish(cl);
    }
}

/* A timer: send the next line, and schedule the one after. */
static void client_send_next(void *userdata)
{
    struct client *cl = userdata;
    char line[128];
    if (cl->finished)
        return;
    make_line(cl, cl->sent, line, sizeof line);
    size_t len = strlen(line);
    if (len > sizeof cl->out - cl->outlen) {
        fail("client", AS_ELIMIT);
        client_finish(cl);
        return;
    }
    memcpy(cl->out + cl->outlen, line, len);
    cl->outlen += len;
    cl->sent++;
    demo.lines_sent++;
    int rc = client_flush(cl);
    if (rc == 0 && cl->sent < NLINES)
        rc = as_loop_call_later(demo.loop, cl->interval, client_send_next, cl, NULL, NULL);
    if (rc < 0) {
        fail("client send", rc);
        client_finish(cl);
    }
}

/* Check each complete reply against the ROT13 of the line we sent. */
static void client_readable(void *userdata)
{
    struct client *cl = userdata;
    ssize_t n = read(cl->fd, cl->in + cl->inlen, sizeof cl->in - cl->inlen);
    if (n < 0 && (errno == EINTR || would_block(errno)))
        return;
    if (n <= 0) {
        fail("client read", n < 0 ? -errno : AS_ECONNLOST);
        client_finish(cl);
        return;
    }
    demo.bytes_received += (size_t)n;
    cl->inlen += (size_t)n;

    char *nl;
    while ((nl = memchr(cl->in, '\n', cl->inlen)) != NULL) {
        size_t len = (size_t)(nl - cl->in) + 1;
        char want[128];
        make_line(cl, cl->replied, want, sizeof want);
        int ok = strlen(want) == len;
        for (size_t i = 0; ok && i < len; i++)
            ok = cl->in[i] == rot13_char(want[i]);
        printf("%7.3f s  client %d  reply %d  %s  %.*s\n",
               as_loop_time(demo.loop) - demo.start, cl->id, cl->replied + 1,
               ok ? "ok " : "BAD", (int)len - 1, cl->in);
        if (ok)
            demo.replies_ok++;
        else
            demo.replies_bad++;
        cl->replied++;
        memmove(cl->in, cl->in + len, cl->inlen - len);
        cl->inlen -= len;
    }
    if (cl->replied >= NLINES || cl->inlen == sizeof cl->in)
        client_finish(cl); /* all answered (or garbage): hang up */
}

/* The non-blocking connect() has finished, one way or the other. */
static void client_connected(void *userdata)
{
    struct client *cl = userdata;
    int err = 0;
    socklen_t len = sizeof err;
    as_loop_remove_writer(demo.loop, cl->fd);
    if (getsockopt(cl->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    int rc = -err;
    if (rc == 0)
        rc = as_loop_add_reader(demo.loop, cl->fd, client_readable, cl, NULL);
    if (rc == 0)
        rc = as_loop_call_later(demo.loop, cl->interval, client_send_next, cl, NULL, NULL);
    if (rc < 0) {
        fail("client connect", rc);
        client_finish(cl);
    }
}

static int client_start(struct client *cl, const struct sockaddr_in *addr)
{
    cl->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (cl->fd < 0)
        return -errno;
    int rc = set_nonblocking(cl->fd);
    /* A non-blocking connect() returns at once, usually with EINPROGRESS;
     * the socket becomes writable when the handshake is over. */
    if (rc == 0 && connect(cl->fd, (const struct sockaddr *)addr, sizeof *addr) < 0 &&
        errno != EINPROGRESS)
        rc = -errno;
    if (rc == 0)
        rc = as_loop_add_writer(demo.loop, cl->fd, client_connected, cl, NULL);
    if (rc < 0) {
        close(cl->fd);
        cl->fd = -1;
    }
    return rc;
}

/* ================================================================ main */

static void watchdog(void *userdata)
{
    (void)userdata;
    demo.timed_out = 1;
}

static int listen_loopback(struct sockaddr_in *addr)
{
    socklen_t len = sizeof *addr;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -errno;
    memset(addr, 0, sizeof *addr);
    addr->sin_family = AF_INET;
    addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr->sin_port = 0; /* any free port; getsockname() says which */
    if (bind(fd, (struct sockaddr *)addr, sizeof *addr) < 0 ||
        listen(fd, NCLIENTS) < 0 ||
        getsockname(fd, (struct sockaddr *)addr, &len) < 0) {
        int err = -errno;
        close(fd);
        return err;
    }
    int rc = set_nonblocking(fd);
    if (rc < 0) {
        close(fd);
        return rc;
    }
    return fd;
}

int main(void)
{
    struct client clients[NCLIENTS];
    struct sockaddr_in addr;
    as_handle *dog = NULL;
    unsigned long turns = 0;
    double elapsed = 0;
    int lfd = -1, started = 0, rc;

    /* A write to a connection the peer closed must return EPIPE, not kill
     * the process with SIGPIPE. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = SIG_IGN;
    if (sigaction(SIGPIPE, &sa, NULL) < 0) {
        perror("sigaction");
        return 1;
    }
    rc = as_loop_new(&demo.loop);
    if (rc < 0) {
        fail("as_loop_new", rc);
        return 1;
    }
    demo.start = as_loop_time(demo.loop);

    lfd = listen_loopback(&addr);
    rc = lfd < 0 ? lfd : as_loop_add_reader(demo.loop, lfd, on_accept, &lfd, NULL);
    if (rc == 0)
        rc = as_loop_call_later(demo.loop, WATCHDOG, watchdog, NULL, NULL, &dog);
    if (rc < 0) {
        fail("starting the server", rc);
        goto out;
    }
    printf("ROT13 server on 127.0.0.1:%u; %d clients, %d lines each, "
           "all on one thread (loop backend: %s)\n"
           "Each client checks every reply is the ROT13 of the line it sent.\n\n",
           (unsigned)ntohs(addr.sin_port), NCLIENTS, NLINES,
           as_loop_backend_name(demo.loop));

    for (int i = 0; i < NCLIENTS; i++) {
        memset(&clients[i], 0, sizeof clients[i]);
        clients[i].id = i + 1;
        clients[i].fd = -1;
        clients[i].interval = 0.030 + 0.020 * i; /* each at its own pace */
        rc = client_start(&clients[i], &addr);
        if (rc < 0) {
            fail("starting a client", rc);
            break;
        }
        started++;
    }

    /* listing: run */
    /* Turn the loop until every client has finished and the server has
     * closed its side of every connection.  Counting turns by hand is why
     * this uses as_loop_run_once() rather than as_loop_run_forever(). */
    while (!demo.timed_out && (demo.clients_done < started || demo.server_conns > 0)) {
        rc = as_loop_run_once(demo.loop);
        turns++;
        if (rc < 0) {
            fail("as_loop_run_once", rc);
            break;
        }
    }
    /* end listing */
    elapsed = as_loop_time(demo.loop) - demo.start;

    if (demo.timed_out)
        fprintf(stderr, "demo: not finished after %.0f s; giving up\n", WATCHDOG);
    /* Clean up whatever is left (nothing, when all went well). */
    for (int i = 0; i < started; i++)
        if (!clients[i].finished)
            client_finish(&clients[i]);
out:
    if (dog != NULL) {
        as_handle_cancel(dog);
        as_handle_unref(dog);
    }
    if (lfd >= 0) {
        as_loop_remove_reader(demo.loop, lfd);
        close(lfd);
    }
    size_t pending = as_loop_pending(demo.loop);
    rc = as_loop_close(demo.loop);
    if (pending != 0 || rc != 0) {
        fprintf(stderr, "demo: left behind %zu callbacks, %d objects\n", pending, rc);
        demo.failed = 1;
    }

    int all_ok = !demo.failed && !demo.timed_out && demo.replies_bad == 0 &&
                 demo.replies_ok == NCLIENTS * NLINES;
    printf("\n%d clients sent %d lines (%zu bytes) and got %d correct replies "
           "(%zu bytes);\nthe server accepted %d connections, up to %d open at once\n",
           started, demo.lines_sent, demo.bytes_sent, demo.replies_ok,
           demo.bytes_received, demo.accepted, demo.peak_conns);
    printf("%.2f s, %lu loop turns, one thread, no blocking call: %s\n",
           elapsed, turns, all_ok ? "ok" : "FAILED");
    return all_ok ? 0 : 1;
}
