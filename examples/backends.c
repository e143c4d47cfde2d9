/*
 * backends.c - chapter 15: the same loop on every backend the build has.
 *
 * For each name as_loop_backend_at() lists, then "best", the program makes
 * a loop with as_loop_new_with_backend() and prints which backend it got
 * and how many descriptors it can watch.  On each loop it then shows what
 * "level-triggered" means: ten bytes wait in a pipe, and the reader
 * callback takes at most four per call, so it must be called three times,
 * once per turn, although nothing is written after the first turn.  A name
 * the build does not have is refused (AS_EINVAL), not quietly replaced.
 *
 * Build and run: make examples/backends && ./examples/backends
 */
#include <asyncstreams.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define MESSAGE "0123456789"
#define MESSAGE_LEN 10
#define CHUNK 4

struct drip {
    as_loop *loop;
    int fd;             /* the pipe's read end */
    int calls;          /* how often the loop called on_readable() */
    size_t got;         /* bytes read so far */
    int timed_out;
};

/* listing: level */
/* Read at most CHUNK bytes and leave the rest in the pipe.  A
 * level-triggered backend reports the pipe again on the next turn, for as
 * long as bytes remain; an edge-triggered one would report it once, when
 * the bytes arrived, and the rest would wait for a write that never
 * comes. */
static void on_readable(void *userdata)
{
    struct drip *d = userdata;
    char buf[CHUNK];
    ssize_t n = read(d->fd, buf, sizeof buf);

    d->calls++;
    if (n > 0)
        d->got += (size_t)n;
    if (n <= 0 || d->got == MESSAGE_LEN)
        as_loop_stop(d->loop);
}
/* end listing */

/* A safety net: a backend that lost the rest would hang the program. */
static void on_timeout(void *userdata)
{
    struct drip *d = userdata;

    d->timed_out = 1;
    as_loop_stop(d->loop);
}

/* Watch a pipe holding MESSAGE; 0 if it took exactly three calls. */
static int drip(as_loop *loop)
{
    struct drip d;
    int fds[2], ok, err;
    as_handle *timer = NULL;

    memset(&d, 0, sizeof d);
    d.loop = loop;
    if (pipe(fds) < 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
        perror("backends: pipe");
        return -1;
    }
    d.fd = fds[0];
    if (write(fds[1], MESSAGE, MESSAGE_LEN) != MESSAGE_LEN) {
        perror("backends: write");
        close(fds[0]);
        close(fds[1]);
        return -1;
    }
    if ((err = as_loop_add_reader(loop, fds[0], on_readable, &d, NULL)) < 0 ||
        (err = as_loop_call_later(loop, 2.0, on_timeout, &d, NULL, &timer)) < 0 ||
        (err = as_loop_run_forever(loop)) < 0)
        fprintf(stderr, "backends: %s\n", as_strerror(err));
    as_handle_cancel(timer);
    as_handle_unref(timer);
    as_loop_remove_reader(loop, fds[0]);
    close(fds[0]);
    close(fds[1]);
    ok = err == 0 && !d.timed_out && d.got == MESSAGE_LEN &&
         d.calls == (MESSAGE_LEN + CHUNK - 1) / CHUNK;
    printf("  %d bytes in %d calls, one per turn: %s\n", (int)d.got, d.calls,
           ok ? "level-triggered" : "WRONG");
    return ok ? 0 : -1;
}

/* Make a loop on backend `name`, say what it is, run drip() on it. */
static int try_backend(const char *name)
{
    size_t pending;
    int err, status;

    /* listing: pick */
    as_loop *loop;

    if ((err = as_loop_new_with_backend(name, &loop)) < 0) {
        fprintf(stderr, "backends: %s: %s\n", name, as_strerror(err));
        return -1;
    }
    printf("%-6s -> %s, watches fds below %d\n", name,
           as_loop_backend_name(loop), as_loop_max_fd(loop));
    /* end listing */
    status = drip(loop);
    pending = as_loop_pending(loop);
    if (as_loop_close(loop) != 0 || pending != 0) {
        fprintf(stderr, "backends: %s: something was left alive\n", name);
        status = -1;
    }
    return status;
}

int main(void)
{
    const char *name;
    as_loop *loop = NULL;
    int i, failures = 0, err;

    for (i = 0; (name = as_loop_backend_at(i)) != NULL; i++)
        if (try_backend(name) < 0)
            failures++;
    if (try_backend("best") < 0)
        failures++;
    err = as_loop_new_with_backend("no-such-backend", &loop);
    printf("no-such-backend -> %s\n", as_err_name(err));
    if (err != AS_EINVAL) {
        fprintf(stderr, "backends: an unknown name gave %d, not AS_EINVAL\n", err);
        if (err == 0)
            as_loop_close(loop);
        failures++;
    }
    return failures ? 1 : 0;
}
