/*
 * echo_threads.c - examples/echo_server --threads 2 with several
 * connections at once: every echo right, both threads serving, a clean
 * exit on SIGTERM.
 *
 * The server is another process, started here with its stdout and stderr
 * on pipes: it prints "PORT n", and at exit one line per thread, "thread i
 * served k connections".  The clients are plain blocking sockets: CONNS
 * connections opened together, then rounds of one line on each, each echo
 * read back and compared, then a long line (bigger than a socket buffer's
 * first read) on each.  The kernel spreads the connections over the two
 * listeners (SO_REUSEPORT hashes each one's addresses), so with 24 of them
 * both threads get some, except with probability 2^-23.
 *
 * `.ci/run` runs it again on a ThreadSanitizer build (make check-tsan):
 * the server then exits 66 on any data race, and this test prints its
 * report and fails.
 *
 * Usage: echo_threads [SERVER]   (default examples/echo_server, from the
 * build directory, where make check runs it).  Exits 77 (SKIP) if the
 * system has no SO_REUSEPORT.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONNS 24
#define ROUNDS 3
#define LONG_LINE 20000       /* below the reader's 64 KiB limit */
#define THREADS 2

static int failures;

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            printf("echo_threads: FAIL: " __VA_ARGS__);                  \
            printf("\n");                                                \
            failures++;                                                  \
        }                                                                \
    } while (0)

/* Read fd until EOF, keeping the first size-1 bytes in buf (NUL-ended)
 * and dropping the rest, so that the writer never blocks on us. */
static void read_all(int fd, char *buf, size_t size)
{
    char scratch[4096];
    size_t len = 0;
    ssize_t n;

    for (;;) {
        int full = len + 1 >= size;
        n = full ? read(fd, scratch, sizeof scratch) : read(fd, buf + len, size - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        if (!full)
            len += (size_t)n;
    }
    buf[len] = '\0';
}

/* Start the server; its stdout and stderr come back on *out and *err. */
static pid_t start_server(const char *path, int *out, int *err)
{
    int o[2], e[2];
    pid_t pid;

    if (pipe(o) < 0 || pipe(e) < 0) {
        perror("echo_threads: pipe");
        exit(1);
    }
    if ((pid = fork()) < 0) {
        perror("echo_threads: fork");
        exit(1);
    }
    if (pid == 0) {
        dup2(o[1], 1);
        dup2(e[1], 2);
        close(o[0]);
        close(o[1]);
        close(e[0]);
        close(e[1]);
        execl(path, path, "--threads", "2", "127.0.0.1", "0", (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(o[1]);
    close(e[1]);
    *out = o[0];
    *err = e[0];
    return pid;
}

/* The port from the server's "PORT n" line, or -1 (its stdout ended). */
static int read_port(int fd)
{
    char line[256];
    size_t len = 0;
    int port;

    for (;;) {
        ssize_t n = read(fd, line + len, 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        if (line[len] != '\n') {
            if (len + 2 < sizeof line)
                len++;
            continue;
        }
        line[len] = '\0';
        len = 0;
        if (sscanf(line, "PORT %d", &port) == 1)
            return port;
    }
}

static int connect_to(int port)
{
    struct sockaddr_in sin;
    struct timeval tv = {10, 0};   /* a lost echo fails, not hangs */
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    if (fd < 0)
        return -1;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read exactly len bytes; 0, or -1 on EOF, error or timeout. */
static int recv_all(int fd, char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

/* One line on every connection, then every echo, compared. */
static void round_trip(const int *fds, int round, size_t extra)
{
    static char want[LONG_LINE + 64], got[LONG_LINE + 64];
    int i;

    for (i = 0; i < CONNS; i++) {
        int len = snprintf(want, sizeof want, "connection %d round %d ", i, round);
        memset(want + len, 'a' + i % 26, extra);
        want[len + extra] = '\n';
        CHECK(send_all(fds[i], want, (size_t)len + extra + 1) == 0,
              "send on connection %d, round %d: %s", i, round, strerror(errno));
    }
    for (i = 0; i < CONNS; i++) {
        int len = snprintf(want, sizeof want, "connection %d round %d ", i, round);
        size_t total = (size_t)len + extra + 1;
        memset(want + len, 'a' + i % 26, extra);
        want[len + extra] = '\n';
        if (recv_all(fds[i], got, total) < 0) {
            CHECK(0, "no echo on connection %d, round %d", i, round);
            continue;
        }
        CHECK(memcmp(got, want, total) == 0, "wrong echo on connection %d, round %d", i, round);
    }
}

int main(int argc, char **argv)
{
    const char *path = argc > 1 ? argv[1] : "examples/echo_server";
    static char errors[1 << 16];
    int fds[CONNS], out, err, port, status, i, r;
    unsigned long served[THREADS] = {0}, total = 0;
    pid_t pid;
    char *line;

    signal(SIGPIPE, SIG_IGN);
    alarm(120);                 /* ThreadSanitizer makes the server slow */
    pid = start_server(path, &out, &err);
    if ((port = read_port(out)) < 0) {
        read_all(err, errors, sizeof errors);
        waitpid(pid, &status, 0);
        if (strstr(errors, "reuse_port not supported")) {
            printf("echo_threads: SKIP: no SO_REUSEPORT here\n");
            return 77;
        }
        printf("echo_threads: FAIL: the server did not start:\n%s", errors);
        return 1;
    }
    printf("echo_threads: %s --threads 2 on port %d\n", path, port);

    for (i = 0; i < CONNS; i++)
        if ((fds[i] = connect_to(port)) < 0) {
            printf("echo_threads: FAIL: connect %d: %s\n", i, strerror(errno));
            kill(pid, SIGKILL);
            return 1;
        }
    for (r = 0; r < ROUNDS; r++)
        round_trip(fds, r, 0);
    round_trip(fds, ROUNDS, LONG_LINE);
    printf("echo_threads: %d connections, %d rounds of lines and one of %d-byte lines echoed\n",
           CONNS, ROUNDS, LONG_LINE);
    for (i = 0; i < CONNS; i++)
        close(fds[i]);

    /* SIGTERM: a graceful shutdown of both loops, then the counts. */
    kill(pid, SIGTERM);
    read_all(err, errors, sizeof errors);
    CHECK(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the server exited with status %d (signal %d)",
          WIFEXITED(status) ? WEXITSTATUS(status) : -1,
          WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    for (line = errors; (line = strstr(line, "thread ")) != NULL; line++) {
        unsigned long k;
        int t;
        if (sscanf(line, "thread %d served %lu", &t, &k) == 2 && t >= 0 && t < THREADS)
            served[t] = k;
    }
    for (i = 0; i < THREADS; i++) {
        printf("echo_threads: thread %d served %lu connections\n", i, served[i]);
        CHECK(served[i] > 0, "thread %d served no connection", i);
        total += served[i];
    }
    CHECK(total == CONNS, "%lu connections served, %d made", total, CONNS);
    if (failures) {
        printf("echo_threads: the server's stderr:\n%s", errors);
        return 1;
    }
    printf("echo_threads: PASS\n");
    close(out);
    close(err);
    return 0;
}
