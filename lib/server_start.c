/*
 * server_start.c - making a server: resolve the host (on the resolver's
 * thread, resolve.h), bind one listening socket per address (sock.c), then
 * listen and deliver the server through start_server's future.  What the
 * server does once it exists is server.c's.
 */
#include "server_impl.h"
#include "errors.h"
#include "internal.h"
#include "resolve.h"
#include "sock.h"

#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static void unref_future(void *p)
{
    as_future_unref(p);
}

static as_server *server_new(as_loop *loop, as_client_connected_fn cb,
                             void *userdata, as_destroy_fn destroy,
                             const as_server_options *o, as__tls_config *tls)
{
    as_server *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->loop = loop;
    s->refs = 1;
    s->cb = cb;
    s->userdata = userdata;
    s->destroy = destroy;
    s->limit = o && o->limit > 0 ? o->limit : AS_READER_DEFAULT_LIMIT;
    s->backlog = o && o->backlog > 0 ? o->backlog : 100;
    s->tls = tls ? as__tls_config_ref(tls) : NULL;
    as__loop_obj_ref(loop);
    return s;
}

static int add_listener(as_server *s, int fd)
{
    struct listener *ls = realloc(s->listeners, (s->nlisteners + 1) * sizeof *ls);
    size_t i;
    if (!ls)
        return -ENOMEM;
    s->listeners = ls;
    /* realloc may have moved the array: the watchers' userdata (none yet,
     * we are not serving) and the back pointers must follow. */
    for (i = 0; i < s->nlisteners; i++)
        ls[i].server = s;
    ls[s->nlisteners].server = s;
    ls[s->nlisteners].fd = fd;
    ls[s->nlisteners].watching = 0;
    ls[s->nlisteners].backoff = 0;
    ls[s->nlisteners].reported = 0;
    ls[s->nlisteners].resume = NULL;
    s->nlisteners++;
    return 0;
}

/* Fail `result` with err and message ("" for none); returns err. */
static int fail_start(as_future *result, int err, const char *message)
{
    as_future_set_error(result, err, message && *message ? message : NULL);
    return err;
}

/* One listening socket for sa (sock.c); on failure `result` fails.  One
 * too large for the loop's backend is refused by the loop when watching
 * starts (as__server_start_listening): it is the one place that knows the limit. */
static int listener_for(as_server *s, const struct sockaddr *sa, socklen_t len,
                        const as_server_options *o, as_future *result)
{
    as__sock_listen_opts lo;
    char msg[320];
    int fd, err;

    lo.reuse_address = !(o && o->reuse_address < 0);
    lo.reuse_port = o && o->reuse_port > 0;
    if ((fd = as__sock_listener(sa, len, &lo, msg, sizeof msg)) < 0)
        return fail_start(result, fd, msg);
    if ((err = add_listener(s, fd)) < 0) {
        as__sock_close(fd);
        if (sa->sa_family == AF_UNIX) /* bound, so the file is ours */
            unlink(((const struct sockaddr_un *)(const void *)sa)->sun_path);
        return fail_start(result, err, NULL);
    }
    return 0;
}

/* Bind one listening socket per address; on any failure, none. */
static int bind_all(as_server *s, const struct addrinfo *ai,
                    const as_server_options *o, as_future *result)
{
    int err;
    for (; ai; ai = ai->ai_next)
        if ((err = listener_for(s, ai->ai_addr, ai->ai_addrlen, o, result)) < 0)
            return err;
    return 0;
}

/* Bound: listen (unless told not to) and deliver the server. */
static void listen_and_deliver(as_server *s, const as_server_options *o,
                               as_future *result)
{
    /* With no_start, listen() waits for start_serving(), as in CPython. */
    int err = o && o->no_start ? 0 : as__server_start_listening(s);
    if (err < 0) {
        as_future_set_error(result, err, NULL);
        as_server_unref(s);
        return;
    }
    if (as_future_set_result(result, s, as__server_destroy) < 0)
        as_server_unref(s); /* cancelled meanwhile */
}

struct start_job {
    as_future *result;
    as_future *resolving;
    as_server *server;       /* holds the callback and its userdata */
    as_server_options opts;
    int has_opts;
};

static void start_job_free(void *p)
{
    struct start_job *j = p;
    if (j->server)
        as_server_unref(j->server); /* runs destroy(userdata) */
    as_future_unref(j->result);
    as_future_unref(j->resolving);
    free(j);
}

static void resolved(as_future *res, void *p)
{
    struct start_job *j = p;
    const as_server_options *o = j->has_opts ? &j->opts : NULL;
    int err = as_future_error(res);

    if (as_future_done(j->result))
        return; /* the caller cancelled start_server */
    if (err < 0) {
        as_future_set_error(j->result, err, as_future_error_message(res));
        return;
    }
    if (bind_all(j->server, as_future_result(res), o, j->result) < 0)
        return;
    listen_and_deliver(j->server, o, j->result);
    j->server = NULL; /* delivered, or freed on failure */
}

static void start_cancelled(as_future *result, void *p)
{
    as_future *resolving = p;
    if (as_future_cancelled(result))
        as_future_cancel(resolving, NULL);
}

/* A start call refused before the server exists: its future fails, and
 * the callback's userdata, which no server will hold, is let go at once
 * (server.h rule 3: destroy runs before the failure is delivered).  A
 * NULL loop makes no future: the call failed and takes nothing. */
static as_future *refuse_start(as_loop *loop, int code, const char *message,
                               void *userdata, as_destroy_fn destroy)
{
    as_future *f = as__future_failed(loop, code, message);
    if (f && destroy)
        destroy(userdata);
    return f;
}

as_future *as_start_server(as_loop *loop, as_client_connected_fn cb,
                           void *userdata, as_destroy_fn destroy,
                           const char *host, const char *port,
                           const as_server_options *o)
{
    return as__start_server_cfg(loop, cb, userdata, destroy, host, port, o, NULL);
}

as_future *as__start_server_cfg(as_loop *loop, as_client_connected_fn cb,
                                void *userdata, as_destroy_fn destroy,
                                const char *host, const char *port,
                                const as_server_options *o, as__tls_config *tls)
{
    struct addrinfo hints;
    struct start_job *j;
    as_future *result;

    if (!loop || !cb || !port)
        return refuse_start(loop, AS_EINVAL,
                            "start_server needs a loop, a callback and a port",
                            userdata, destroy);
    if (o && (o->family != 0 && o->family != AF_INET && o->family != AF_INET6))
        return refuse_start(loop, AS_EINVAL, "family must be AF_INET, AF_INET6 or 0",
                            userdata, destroy);
    /* getaddrinfo() would wrap it; CPython's socket.bind() words it so. */
    if (as__sock_check_port(port) < 0)
        return refuse_start(loop, AS_EPORT, "bind(): port must be 0-65535.",
                            userdata, destroy);
    if (as_future_new(loop, &result) < 0)
        return NULL;
    if (!(j = calloc(1, sizeof *j))) {
        as_future_unref(result);
        return NULL;
    }
    if (!(j->server = server_new(loop, cb, userdata, destroy, o, tls))) {
        free(j);
        if (destroy)
            destroy(userdata);
        as_future_set_error(result, -ENOMEM, NULL);
        return result;
    }
    if (o) {
        j->opts = *o;
        j->has_opts = 1;
    }
    memset(&hints, 0, sizeof hints);
    hints.ai_family = o ? o->family : 0;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    j->resolving = as_getaddrinfo(loop, host && *host ? host : NULL, port, &hints);
    j->result = as_future_ref(result);
    if (!j->resolving ||
        as_future_add_done_callback(j->resolving, resolved, j, start_job_free) < 0) {
        start_job_free(j);
        as_future_set_error(result, -ENOMEM, NULL);
        return result;
    }
    /* Cancelling the start also cancels a resolution still under way. */
    if (as_future_add_done_callback(result, start_cancelled,
                                    as_future_ref(j->resolving), unref_future) < 0)
        as_future_unref(j->resolving);
    return result;
}

as_future *as_start_unix_server(as_loop *loop, as_client_connected_fn cb,
                                void *userdata, as_destroy_fn destroy,
                                const char *path, const as_server_options *o)
{
    return as__start_unix_server_cfg(loop, cb, userdata, destroy, path, o, NULL);
}

as_future *as__start_unix_server_cfg(as_loop *loop, as_client_connected_fn cb,
                                     void *userdata, as_destroy_fn destroy,
                                     const char *path, const as_server_options *o,
                                     as__tls_config *tls)
{
    struct sockaddr_un sun;
    struct stat st;
    as_future *result;
    as_server *s;
    const char *msg;
    int err;

    if (!loop || !cb || !path || !*path)
        return refuse_start(loop, AS_EINVAL,
                            "start_unix_server needs a loop, a callback and a path",
                            userdata, destroy);
    if ((err = as__sock_unix_addr(path, &sun, &msg)) < 0)
        return refuse_start(loop, err, msg, userdata, destroy);
    if (as_future_new(loop, &result) < 0)
        return NULL;

    /* A socket file nobody accepts on is left over from an earlier run:
     * remove it.  One in use, or any other kind of file, stays. */
    as__sock_unix_remove_stale(&sun);

    if (!(s = server_new(loop, cb, userdata, destroy, o, tls))) {
        if (destroy)
            destroy(userdata);
        as_future_set_error(result, -ENOMEM, NULL);
        return result;
    }
    if (listener_for(s, (const struct sockaddr *)&sun, sizeof sun, o, result) < 0) {
        as_server_unref(s);
        return result;
    }
    if (!(o && o->keep_socket_file) && stat(path, &st) == 0) {
        s->unix_path = as__strdup(path);
        s->unix_dev = st.st_dev;
        s->unix_ino = st.st_ino;
    }
    listen_and_deliver(s, o, result);
    return result;
}
