/*
 * blocking.c - chapter 1: a ROT13 line server with blocking sockets.
 *
 * The server turns every line it receives into its ROT13 form and sends it
 * back.  It is written the simplest way: accept one client, serve it until it
 * hangs up, then accept the next.  Three clients (threads of this program)
 * connect at the same moment and send their lines slowly, like people
 * typing.  Each client prints how long it waited for its first reply: the
 * first one is answered at once, the others wait for the ones before them.
 *
 * Build and run: make examples/blocking && ./examples/blocking
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define NCLIENTS 3
#define NLINES 3
#define PAUSE_MS 100 /* how long a client "types" between two lines */

static const char *const lines[NLINES] = {
    "Hello, world\n", "Why did the chicken cross the road?\n", "Gb trg gb gur bgure fvqr.\n",
};

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* listing: rot13 */
/* ROT13 moves each letter 13 places along the alphabet; doing it twice gives
 * the original back.  Everything that is not a letter is left alone. */
static char rot13_char(char c)
{
    if (c >= 'a' && c <= 'z')
        return (char)('a' + (c - 'a' + 13) % 26);
    if (c >= 'A' && c <= 'Z')
        return (char)('A' + (c - 'A' + 13) % 26);
    return c;
}
/* end listing */

/* listing: write_all */
/* write() on a blocking socket may still write less than asked (a signal can
 * interrupt it part way), so loop until every byte is out. */
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
/* end listing */

/* listing: serve */
/* Serve one client until it hangs up.  Returns 0 or a negative errno. */
static int serve_client(int fd)
{
    char buf[512];
    size_t len = 0; /* bytes in buf not yet answered */

    for (;;) {
        ssize_t n = read(fd, buf + len, sizeof buf - len); /* blocks */
        if (n == 0)
            return 0; /* end of file: the client closed its side */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        len += (size_t)n;

        /* Answer every complete line; keep a partial one for later. */
        char *nl;
        while ((nl = memchr(buf, '\n', len)) != NULL) {
            size_t linelen = (size_t)(nl - buf) + 1;
            for (size_t i = 0; i < linelen; i++)
                buf[i] = rot13_char(buf[i]);
            int rc = write_all(fd, buf, linelen); /* blocks too */
            if (rc < 0)
                return rc;
            memmove(buf, buf + linelen, len - linelen);
            len -= linelen;
        }
        if (len == sizeof buf)
            return -EMSGSIZE; /* a line longer than the buffer */
    }
}
/* end listing */

/* ---- the clients: one thread each, plain blocking calls ---- */

struct client {
    int id;
    in_port_t port;   /* network byte order */
    double started;   /* when the client connected */
    double waited;    /* seconds until its first reply */
    int correct;      /* replies that matched */
    int error;        /* 0 or a negative errno */
};

/* Read one line (up to and including '\n') into buf.  Returns its length, 0
 * at end of file, or a negative errno (-EAGAIN when SO_RCVTIMEO expires). */
static ssize_t read_line(int fd, char *buf, size_t size)
{
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, 1); /* one byte: simple, slow, fine here */
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
    /* If the server breaks, fail after 5 s instead of waiting forever. */
    struct timeval tv = {5, 0};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) < 0)
        goto fail;

    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = c->port;
    /* connect() succeeds even while the server is busy with someone else:
     * the kernel completes the handshake and queues us (listen's backlog). */
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

/* ---- the server ---- */

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
    sin.sin_port = 0; /* let the kernel pick a free port */
    if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
        listen(fd, NCLIENTS) < 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &slen) < 0) {
        int err = -errno;
        close(fd);
        return err;
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

    /* Writing to a socket the peer has closed raises SIGPIPE, which kills the
     * process by default.  Ignore it so write() returns EPIPE instead. */
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
    printf("blocking ROT13 server on 127.0.0.1:%u, %d clients, one at a time\n",
           (unsigned)ntohs(port), NCLIENTS);

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

    /* listing: accept_loop */
    /* One client at a time: while serve_client() waits in read() for this
     * client's next line, nobody else is served. */
    for (int served = 0; served < nthreads; served++) {
        int cfd = accept(lfd, NULL, NULL); /* blocks until a client comes */
        if (cfd < 0) {
            perror("accept");
            status = 1;
            break;
        }
        int rc = serve_client(cfd);
        if (rc < 0) {
            fprintf(stderr, "serve_client: %s\n", strerror(-rc));
            status = 1;
        }
        close(cfd);
    }
    /* end listing */
    close(lfd); /* a client still queued (after an error) now sees a reset */

    for (int i = 0; i < nthreads; i++) {
        int rc = pthread_join(threads[i], NULL);
        if (rc != 0) {
            fprintf(stderr, "pthread_join: %s\n", strerror(rc));
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
    printf("%s: a blocking server makes each client wait for the ones before it\n",
           status == 0 ? "ok" : "FAILED");
    return status;
}
