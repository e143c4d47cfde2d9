/*
 * many_connections.c - the C echo server with 10,000 connections at once,
 * on every backend the build has.
 *
 * The server is examples/echo_server.c's own handler (the file is included
 * below, its main() renamed), on a loop made with each backend in turn.
 * The clients are another process, tests/many_clients.py: N connections,
 * every line echoed and compared, two rounds, each ending when the
 * server's fd count is back to its start (see that file).  After each
 * round this program checks, in the server's own process, that nothing is
 * left of the connections: as many library objects alive as before
 * (as_loop_objects()), and as many bytes in use in malloc (glibc's
 * mallinfo2()).  Not its resident memory: malloc keeps the pages it got
 * for the peak, and the next round lays its blocks out differently, so
 * resident memory grows from round to round (many_clients.py prints it)
 * while the bytes in use do not.  The loop's fd table and the backend's
 * arrays keep the size of the peak, and the loop's cache keeps a bounded
 * number of small blocks (cache.h): KEPT_MAX bytes in all, whatever N is.
 *
 * It needs N + 100 fds in each process: it raises RLIMIT_NOFILE up to the
 * hard limit, and when that is too low it says so and exits 77 (SKIP).
 * Usage: many_connections [N]   (default 10000; $PYTHON runs the client).
 */
#define _GNU_SOURCE 1
#define main echo_server_main
int echo_server_main(int argc, char **argv);
#include "../examples/echo_server.c"
#undef main

#include <fcntl.h>
#include <stdint.h>
#include <sys/resource.h>
#include <sys/wait.h>
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
#include <malloc.h>
#define HAVE_MALLINFO2 1
#endif
/* AddressSanitizer's malloc does not report through mallinfo2(). */
#if defined(__SANITIZE_ADDRESS__)
#undef HAVE_MALLINFO2
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#undef HAVE_MALLINFO2
#endif
#endif

#define ROUNDS 2
#define KEPT_MAX (2L << 20)   /* fd table, backend arrays, block cache */
/* A later round may keep at most this much more than the first: queues
 * sized by the most callbacks ever ready at once may grow once more (a
 * ring of 16,384 pointers is 128 KiB), while one block kept per connection
 * would be at least 32 bytes x 10,000. */
#define PER_ROUND_MAX (256L << 10)

static int failures;

#define CHECK(cond, ...)                                                 \
    do {                                                                 \
        if (!(cond)) {                                                   \
            printf("many_connections: FAIL: " __VA_ARGS__);              \
            printf("\n");                                                \
            failures++;                                                  \
        }                                                                \
    } while (0)

/* Bytes malloc has handed out and not had back; -1 if unknown. */
static long heap_in_use(void)
{
#ifdef HAVE_MALLINFO2
    struct mallinfo2 m = mallinfo2();
    return (long)(m.uordblks + m.hblkhd);
#else
    return -1;
#endif
}

/* The clients' process and what the server measured after each round. */
struct run {
    as_loop *loop;
    int out, in;                 /* the clients' stdout and stdin */
    char line[512];
    size_t len;
    int rounds;
    double deadline;
    long heap[ROUNDS + 1];       /* [0]: before the first round */
    size_t objects[ROUNDS + 1];
};

/* A round is over for the clients once the server's fds are back; the
 * server's last handlers may still be returning.  Wait (at most 10 s) for
 * the objects to be as many as before, measure, and tell the clients to
 * go on. */
static void measure(void *p)
{
    struct run *r = p;
    size_t objects = as_loop_objects(r->loop);

    if (objects != r->objects[0] && as_loop_time(r->loop) < r->deadline) {
        as_loop_call_later(r->loop, 0.01, measure, r, NULL, NULL);
        return;
    }
    r->heap[r->rounds] = heap_in_use();
    r->objects[r->rounds] = objects;
    if (write(r->in, "\n", 1) != 1)
        printf("many_connections: cannot write to the clients: %s\n", strerror(errno));
}

/* The clients print one line per round, then wait for measure(); at EOF
 * they are done. */
static void clients_said(void *p)
{
    struct run *r = p;
    ssize_t n = read(r->out, r->line + r->len, sizeof r->line - 1 - r->len);
    char *nl;

    if (n <= 0) {
        as_loop_remove_reader(r->loop, r->out);
        as_loop_stop(r->loop);
        return;
    }
    r->len += (size_t)n;
    r->line[r->len] = 0;
    while ((nl = strchr(r->line, '\n')) != NULL) {
        *nl = 0;
        printf("  %s\n", r->line);
        if (strncmp(r->line, "round ", 6) == 0 && r->rounds < ROUNDS) {
            r->rounds++;
            r->deadline = as_loop_time(r->loop) + 10;
            measure(r);
        }
        r->len -= (size_t)(nl + 1 - r->line);
        memmove(r->line, nl + 1, r->len + 1);
    }
    if (r->len == sizeof r->line - 1)
        r->len = 0; /* a line too long to be ours: drop it */
}

/* Start tests/many_clients.py against port, --step: its stdout comes to
 * *out, its stdin from *in. */
static pid_t start_clients(int port, int n, int *out, int *in)
{
    const char *python = getenv("PYTHON"), *srcdir = getenv("srcdir");
    char script[4096], sport[16], sn[16], spid[16];
    int p[2], q[2];
    pid_t pid;

    if (!python || !*python)
        python = "python3";
    snprintf(script, sizeof script, "%s/tests/many_clients.py", srcdir ? srcdir : ".");
    snprintf(sport, sizeof sport, "%d", port);
    snprintf(sn, sizeof sn, "%d", n);
    snprintf(spid, sizeof spid, "%ld", (long)getpid());
    if (pipe(p) < 0)
        return -1;
    if (pipe(q) < 0) {
        close(p[0]);
        close(p[1]);
        return -1;
    }
    fflush(stdout);
    if ((pid = fork()) == 0) {
        dup2(p[1], 1);
        dup2(q[0], 0);
        close(p[0]);
        close(p[1]);
        close(q[0]);
        close(q[1]);
        execlp(python, python, script, sport, sn, spid, "2", "--step", (char *)NULL);
        fprintf(stderr, "many_connections: cannot run %s: %s\n", python, strerror(errno));
        _exit(127);
    }
    close(p[1]);
    close(q[0]);
    if (pid < 0) {
        close(p[0]);
        close(q[1]);
        return -1;
    }
    fcntl(p[0], F_SETFD, FD_CLOEXEC);
    fcntl(q[1], F_SETFD, FD_CLOEXEC);
    *out = p[0];
    *in = q[1];
    return pid;
}

static void on_backend(const char *backend, int n)
{
    struct app app;
    struct run r;
    as_future *f;
    pid_t pid;
    int status, err, i;
    double t0;

    printf("backend %s: %d connections, %d rounds\n", backend, n, ROUNDS);
    memset(&app, 0, sizeof app);
    memset(&r, 0, sizeof r);
    if ((err = as_loop_new_with_backend(backend, &app.loop)) < 0 ||
        (err = crew_init(&app.crew, app.loop)) < 0) {
        CHECK(0, "%s: loop: %s", backend, as_strerror(err));
        return;
    }
    r.loop = app.loop;
    t0 = as_loop_time(app.loop);
    f = as_start_server(app.loop, on_client, &app, NULL, "127.0.0.1", "0", NULL);
    CHECK(as_loop_run_until_complete(app.loop, f) == 0, "%s: start_server", backend);
    app.server = as_future_take_result(f);
    as_future_unref(f);
    if (!app.server)
        return;

    r.heap[0] = heap_in_use();
    r.objects[0] = as_loop_objects(app.loop);
    pid = start_clients(as_server_port(app.server, 0), n, &r.out, &r.in);
    CHECK(pid > 0, "%s: cannot start the clients", backend);
    if (pid > 0) {
        CHECK(as_loop_add_reader(app.loop, r.out, clients_said, &r, NULL) == 0,
              "%s: add_reader", backend);
        CHECK(as_loop_run_forever(app.loop) == 0, "%s: run_forever", backend);
        close(r.out);
        close(r.in);
        CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) &&
              WEXITSTATUS(status) == 0, "%s: the clients failed (status %d)", backend, status);
    }
    CHECK(r.rounds == ROUNDS, "%s: %d rounds of %d", backend, r.rounds, ROUNDS);
    for (i = 1; i <= r.rounds; i++) {
        CHECK(r.objects[i] == r.objects[0], "%s: round %d: %zu library objects alive, "
              "%zu before", backend, i, r.objects[i], r.objects[0]);
        if (r.heap[0] < 0)
            continue;
        printf("  round %d: malloc in use %+ld bytes\n", i, r.heap[i] - r.heap[0]);
        CHECK(r.heap[i] - r.heap[0] <= KEPT_MAX, "%s: round %d kept %ld bytes",
              backend, i, r.heap[i] - r.heap[0]);
        if (i > 1)
            CHECK(r.heap[i] - r.heap[1] <= PER_ROUND_MAX,
                  "%s: round %d kept %ld bytes more than round 1", backend, i,
                  r.heap[i] - r.heap[1]);
    }
    if (r.heap[0] < 0)
        printf("  malloc's bytes in use: not measured (no mallinfo2() here)\n");

    printf("  %.1f s\n", as_loop_time(app.loop) - t0);

    /* The example's own ending, without the signals. */
    f = as_server_shutdown(app.server, 0);
    CHECK(f && as_loop_run_until_complete(app.loop, f) == 0, "%s: shutdown", backend);
    as_future_unref(f);
    f = as_event_wait(app.crew.idle);
    CHECK(f && as_loop_run_until_complete(app.loop, f) == 0, "%s: handlers", backend);
    as_future_unref(f);
    as_server_unref(app.server);
    as_event_free(app.crew.idle);
    CHECK(as_loop_pending(app.loop) == 0 && as_loop_close(app.loop) == 0,
          "%s: something was left alive", backend);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 10000, i;
    rlim_t need = (rlim_t)n + 100;
    struct rlimit rl;
    const char *backend;

    setvbuf(stdout, NULL, _IOLBF, 0);
    if (n <= 0 || getrlimit(RLIMIT_NOFILE, &rl) < 0) {
        fprintf(stderr, "usage: many_connections [N]\n");
        return 2;
    }
    if (rl.rlim_cur < need) {
        if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
            printf("many_connections: SKIP: %d connections need %ld fds per process, "
                   "and the hard limit (ulimit -Hn) is %ld\n", n, (long)need, (long)rl.rlim_max);
            return 77;
        }
        rl.rlim_cur = need;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
            printf("many_connections: SKIP: cannot raise RLIMIT_NOFILE to %ld: %s\n",
                   (long)need, strerror(errno));
            return 77;
        }
    }
    if (access("/proc/self/fd", F_OK) != 0) {
        printf("many_connections: SKIP: no /proc/self/fd to count the server's fds\n");
        return 77;
    }
    for (i = 0; (backend = as_loop_backend_at(i)) != NULL; i++)
        on_backend(backend, n);
    if (failures == 0)
        printf("many_connections: all passed\n");
    return failures == 0 ? 0 : 1;
}
