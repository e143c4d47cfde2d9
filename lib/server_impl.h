/*
 * server_impl.h - the server's insides, shared by its two files (internal,
 * not installed): server.c (accepting, the clients, the lifecycle) and
 * server_start.c (resolving, binding and delivering a new server).
 */
#ifndef AS_SERVER_IMPL_H
#define AS_SERVER_IMPL_H

#include "server.h"
#include "tls_internal.h"
#include "waiters.h"

#include <sys/types.h>

struct listener {
    as_server *server;
    int fd;
    int watching;
    double backoff;       /* delay before the next retry, 0 if none */
    int reported;         /* this error episode was reported */
    as_handle *resume;    /* the backoff timer */
};

/* One connection the server made, while the server lists it.  Two
 * references: the server's list, and the transport's closed callback.
 * Leaving the list (client_unlink) drops what the record holds; it happens
 * when the transport closes, when the loop closes with that callback never
 * run, or when the server is freed, whichever comes first (server.h, rule 7).
 * The handler's done callback holds a transport reference of its own, not
 * the record, so a handler that outlives the list needs nothing from it. */
struct client {
    as_server *server;    /* NULL once unlinked */
    as_transport *transport;
    as_reader *reader;
    as_future *handler;
    struct client *prev, *next;
    int refs;
};

struct as_server {
    as_loop *loop;
    unsigned refs;
    as_client_connected_fn cb;
    void *userdata;
    as_destroy_fn destroy;

    struct listener *listeners;
    size_t nlisteners;
    ssize_t limit;
    int backlog;
    int listening;        /* listen() was called */
    int serving;
    int closed;

    char *unix_path;      /* Unix servers: the file to remove on close */
    dev_t unix_dev;
    ino_t unix_ino;

    struct client *clients;
    size_t nclients;
    int fd_report_done;   /* an fd >= FD_SETSIZE was reported this episode */

    as_future *serve_forever;
    as__waiters waiters;       /* wait_closed() and shutdown() futures */
    as__tls_config *tls;       /* TLS servers: every connection's configuration */
    as_handle *shutdown_timer;
};

/* listen() on every listener and start watching them (server.c). */
int as__server_start_listening(as_server *s);

/* The destroy hook of a start future's result: drops its server. */
void as__server_destroy(void *server);

#endif
