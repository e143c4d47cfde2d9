/*
 * resolve.c - getaddrinfo() on a worker thread.  Contracts: resolve.h.
 *
 * One detached thread per resolution.  That is the simplest thing that
 * keeps the loop from blocking; a connection-heavy program would want a
 * small pool (CPython uses its default executor), at the price of a queue
 * and a shutdown protocol that would double this file.
 *
 * The job record is the only thing both threads touch:
 *
 *   worker side: host, port, hints (read), res, gai, sys_errno (written
 *                before posting), and under `lock`: refs, abandoned.
 *   loop side:   future (only ever touched on the loop thread).
 *
 * The loop side sets `abandoned` (under the lock) as soon as the future is
 * done, for whatever reason; the worker posts its answer only if it is not
 * abandoned, under the same lock, so it never touches a loop that may have
 * let go of the future (and with it, perhaps, of the loop's memory).
 */
#include "resolve.h"
#include "errors.h"
#include "internal.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct job {
    pthread_mutex_t lock;
    int refs;      /* under lock: the worker's and the loop side's */
    int abandoned; /* under lock: the future is done, do not post */
    as_loop *loop;
    as_future *future; /* loop thread only; NULL once let go */
    char *host, *port;
    struct addrinfo hints;
    struct addrinfo *res;
    int gai, sys_errno;
};

char *as_gai_message(int gai_code, char *buf, size_t size)
{
    if (!buf)
        return NULL;
    snprintf(buf, size, "[Errno %d] %s", gai_code, gai_strerror(gai_code));
    return buf;
}

static void job_unref(struct job *j)
{
    int last;
    pthread_mutex_lock(&j->lock);
    last = --j->refs == 0;
    pthread_mutex_unlock(&j->lock);
    if (!last)
        return;
    /* Either thread may get here; nothing below touches the loop. */
    if (j->res)
        freeaddrinfo(j->res);
    free(j->host);
    free(j->port);
    pthread_mutex_destroy(&j->lock);
    free(j);
}

static void job_unref_cb(void *p)
{
    job_unref(p);
}

static void free_addrinfo(void *p)
{
    freeaddrinfo(p);
}

/* Finish the future with getaddrinfo()'s answer. */
static void complete(as_future *f, int gai, int sys_errno, struct addrinfo **res)
{
    char msg[160];
    if (gai == 0) {
        if (as_future_set_result(f, *res, free_addrinfo) == 0)
            *res = NULL;
    } else if (gai == EAI_SYSTEM && sys_errno != 0) {
        (void)as_future_set_error(f, -sys_errno, NULL);
    } else {
        (void)as_future_set_error(f, AS_ERESOLVE, as_gai_message(gai, msg, sizeof msg));
    }
}

/* On the loop thread: the worker's answer arrived. */
static void on_answer(void *p)
{
    struct job *j = p;
    if (j->future && !as_future_done(j->future))
        complete(j->future, j->gai, j->sys_errno, &j->res);
}

/* On the loop thread: the future is done (answered or cancelled).  The
 * work is in release(), the callback's destroy hook, which also runs if the
 * loop closes before the callback could. */
static void on_done(as_future *f, void *p)
{
    (void)f;
    (void)p;
}

static void release(void *p)
{
    struct job *j = p;
    pthread_mutex_lock(&j->lock);
    j->abandoned = 1;
    pthread_mutex_unlock(&j->lock);
    if (j->future) {
        as_future_unref(j->future);
        j->future = NULL;
    }
    job_unref(j);
}


static void *worker(void *p)
{
    struct job *j = p;
    int posted = 0;

    j->gai = getaddrinfo(j->host, j->port, &j->hints, &j->res);
    j->sys_errno = j->gai == EAI_SYSTEM ? errno : 0;

    pthread_mutex_lock(&j->lock);
    if (!j->abandoned &&
        as_loop_call_soon_threadsafe(j->loop, on_answer, j, job_unref_cb) == 0)
        posted = 1; /* our reference now travels with the callback */
    pthread_mutex_unlock(&j->lock);
    if (!posted)
        job_unref(j);
    return NULL;
}

static int port_is_numeric(const char *port)
{
    if (!port)
        return 1;
    if (!*port)
        return 0;
    for (; *port; port++)
        if (*port < '0' || *port > '9')
            return 0;
    return 1;
}

as_future *as_getaddrinfo(as_loop *loop, const char *host, const char *port,
                          const struct addrinfo *hints)
{
    struct addrinfo h;
    struct job *j;
    as_future *f;
    pthread_t tid;
    pthread_attr_t attr;
    sigset_t all, old;
    int err;

    if (!loop)
        return NULL;
    if (!host && !port)
        return as__future_failed(loop, AS_EINVAL,
                                 "host and port cannot both be NULL");
    if (as_future_new(loop, &f) < 0)
        return NULL;
    memset(&h, 0, sizeof h);
    if (hints) {
        h.ai_flags = hints->ai_flags;
        h.ai_family = hints->ai_family;
        h.ai_socktype = hints->ai_socktype;
        h.ai_protocol = hints->ai_protocol;
    }

    /* Numeric host and port: no name service is consulted, so it cannot
     * block; answer on this thread. */
    if (port_is_numeric(port)) {
        struct addrinfo nh = h, *res = NULL;
        int gai;
        nh.ai_flags |= AI_NUMERICHOST | (port ? AI_NUMERICSERV : 0);
        gai = host ? getaddrinfo(host, port, &nh, &res) : EAI_NONAME;
        if (gai != EAI_NONAME || (h.ai_flags & AI_NUMERICHOST)) {
            int sys = gai == EAI_SYSTEM ? errno : 0;
            complete(f, gai, sys, &res);
            if (res)
                freeaddrinfo(res);
            return f;
        }
    }

    if (!(j = calloc(1, sizeof *j)))
        return as__future_fail(f, -ENOMEM, NULL);
    j->hints = h;
    if ((host && !(j->host = as__strdup(host))) ||
        (port && !(j->port = as__strdup(port)))) {
        free(j->host);
        free(j);
        return as__future_fail(f, -ENOMEM, NULL);
    }
    if ((err = pthread_mutex_init(&j->lock, NULL)) != 0) {
        free(j->host);
        free(j->port);
        free(j);
        return as__future_fail(f, -err, NULL);
    }
    j->loop = loop;
    j->future = as_future_ref(f);
    j->refs = 2; /* the worker's, and the done callback's */
    if ((err = as_future_add_done_callback(f, on_done, j, release)) < 0) {
        as_future_unref(j->future);
        j->future = NULL;
        j->refs = 1;
        job_unref(j);
        return as__future_fail(f, err, NULL);
    }

    /* The worker must not take the program's signals (a SIGINT handler
     * expects to run on the loop thread), so it starts with all blocked. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    err = pthread_attr_init(&attr);
    if (err == 0) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        err = pthread_create(&tid, &attr, worker, j);
        pthread_attr_destroy(&attr);
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (err != 0) {
        /* No worker: drop its reference; failing the future runs on_done,
         * which lets go of the rest. */
        job_unref(j);
        (void)as_future_set_error(f, -err, "could not start a resolver thread");
    }
    return f;
}
