/*
 * chat_server.c - a chat room: each line a client sends goes to every other
 * client as "client N: <line>", with notices when someone joins or leaves.
 *
 *     room = set()
 *
 *     async def handle(reader, writer):
 *         name = f"client {next(ids)}"
 *         writer.write(f"*** welcome, you are {name}; {len(room)} others here\n")
 *         broadcast(f"*** {name} joined\n")
 *         room.add(writer)
 *         try:
 *             while line := await reader.readline():
 *                 broadcast(f"{name}: {line}", skip=writer)
 *         finally:
 *             room.discard(writer)
 *             broadcast(f"*** {name} left\n")
 *             writer.close()
 *             await writer.wait_closed()
 *
 * Usage: chat_server [PORT]
 *   With no argument (as `make check` runs it): a self-check in which three
 *   clients on the same loop chat and check that each hears the others.
 *   With PORT: serve on 127.0.0.1:PORT (0 picks one; "PORT n" is printed)
 *   until SIGINT or SIGTERM.  Chat from two terminals with
 *   `nc 127.0.0.1 PORT`.  (Chapter 10.)
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "serve.h"

#define CLIENTS 3
#define LINES 3
/* A member whose unsent output grows past this is too slow to keep up:
 * it is dropped, rather than letting one stalled reader make the server
 * buffer everything everyone says, forever. */
#define SLOW_LIMIT (1024 * 1024)

struct member {
    struct member *prev, *next;
    char name[24];
    as_writer *writer;
};

struct app {
    as_loop *loop;
    as_server *server;
    struct crew crew;
    struct member *room;   /* everyone who has joined and not left */
    int next_id;
    int quiet;             /* the self-check prints no server log */
};

/* ------------------------------------------------------------ the room */

/* listing: broadcast */
/* Queue one message (pieces in iov) for every member but `skip`.  No
 * drain: the sender must not wait for the slowest reader in the room.
 * Each writer buffers instead, and a member too far behind is aborted;
 * its own handler then sees the connection end and leaves.  A write that
 * fails (the member is already on its way out) is no one else's problem. */
static void broadcast(struct app *app, const struct member *skip,
                      const struct iovec *iov, int iovcnt)
{
    struct member *m;

    for (m = app->room; m; m = m->next) {
        if (m == skip)
            continue;
        if (as_writer_get_write_buffer_size(m->writer) > SLOW_LIMIT) {
            if (!app->quiet)
                printf("%s is too slow: dropped\n", m->name);
            as_writer_abort(m->writer);
            continue;
        }
        (void)as_writer_writelines(m->writer, iov, iovcnt);
    }
}

static void notice(struct app *app, const struct member *skip,
                   const char *name, const char *what)
{
    char text[64];
    struct iovec iov;
    iov.iov_base = text;
    iov.iov_len = (size_t)snprintf(text, sizeof text, "*** %s %s\n", name, what);
    broadcast(app, skip, &iov, 1);
}
/* end listing */

static void room_add(struct app *app, struct member *m)
{
    m->prev = NULL;
    m->next = app->room;
    if (app->room)
        app->room->prev = m;
    app->room = m;
}

static void room_remove(struct app *app, struct member *m)
{
    if (m->prev)
        m->prev->next = m->next;
    else if (app->room == m)
        app->room = m->next;
    else
        return; /* not in the room */
    if (m->next)
        m->next->prev = m->prev;
    m->prev = m->next = NULL;
}

static size_t room_size(const struct app *app)
{
    const struct member *m;
    size_t n = 0;
    for (m = app->room; m; m = m->next)
        n++;
    return n;
}

/* ------------------------------------------------------------ a member */

/* listing: handler */
struct chatter {
    int pc;
    struct app *app;
    as_reader *reader;
    struct member me;      /* me.writer is this client's writer */
    int err;
};

static as_step chatter_step(as_task *t, void *p)
{
    struct chatter *c = p;
    struct app *app = c->app;
    struct iovec iov[4];
    char welcome[96];
    as_bytes *line;
    size_t len;

    AS_TASK_BEGIN(c);
    snprintf(welcome, sizeof welcome, "*** welcome, you are %s; %zu others here\n",
             c->me.name, room_size(app));
    (void)as_writer_write(c->me.writer, welcome, strlen(welcome));
    notice(app, NULL, c->me.name, "joined");
    room_add(app, &c->me);

    for (;;) {
        AS_AWAIT(t, c, as_reader_readline(c->reader));
        c->err = as_task_error(t);
        if (c->err == AS_ELIMIT) {   /* readline dropped the long line */
            (void)as_writer_write(c->me.writer, "*** line too long, dropped\n", 27);
            continue;
        }
        if (c->err != 0)
            break;
        line = as_task_result(t);
        if (line->len == 0)
            break;                               /* EOF */
        len = line->len;          /* drop "\n" or "\r\n" (telnet), add "\n" */
        while (len > 0 && (line->data[len - 1] == '\n' || line->data[len - 1] == '\r'))
            len--;
        iov[0].iov_base = c->me.name;
        iov[0].iov_len = strlen(c->me.name);
        iov[1].iov_base = (void *)": ";
        iov[1].iov_len = 2;
        iov[2].iov_base = line->data;
        iov[2].iov_len = len;
        iov[3].iov_base = (void *)"\n";
        iov[3].iov_len = 1;
        broadcast(app, &c->me, iov, 4);
    }

    /* The `finally`: leave, say so, close. */
    room_remove(app, &c->me);
    notice(app, NULL, c->me.name, "left");
    if (!app->quiet)
        printf("%s left%s%s\n", c->me.name, c->err ? ": " : "",
               c->err ? as_strerror(c->err) : "");
    as_writer_close(c->me.writer);
    AS_AWAIT(t, c, as_writer_wait_closed(c->me.writer));
    if (c->err == AS_ECANCELLED)
        AS_TASK_FAIL(t, AS_ECANCELLED, NULL);
    AS_TASK_END(t);
}
/* end listing */

static void chatter_free(void *p)
{
    struct chatter *c = p;
    room_remove(c->app, &c->me);   /* if the task never got to leave */
    as_reader_unref(c->reader);
    as_writer_unref(c->me.writer);
    crew_leave(&c->app->crew);
    free(c);
}

static as_future *on_client(as_reader *reader, as_writer *writer, void *userdata)
{
    struct app *app = userdata;
    struct chatter *c = calloc(1, sizeof *c);
    struct sockaddr_storage ss;
    socklen_t sslen;
    char peer[SERVE_ADDRLEN];
    as_future *f;
    as_task *t;
    int err = -ENOMEM;

    if (!c || (err = as_task_new(app->loop, chatter_step, c, chatter_free, &t)) < 0) {
        fprintf(stderr, "chat_server: cannot serve a client: %s\n", as_strerror(err));
        free(c);
        as_writer_close(writer);
        as_writer_unref(writer);
        as_reader_unref(reader);
        return NULL;
    }
    c->app = app;
    c->reader = reader;
    c->me.writer = writer;
    snprintf(c->me.name, sizeof c->me.name, "client %d", ++app->next_id);
    if (!app->quiet) {
        if ((err = as_writer_peername(writer, &ss, &sslen)) < 0)
            snprintf(peer, sizeof peer, "(%s)", as_strerror(err));
        else
            serve_format_addr(&ss, sslen, peer, sizeof peer);
        printf("%s joined from %s\n", c->me.name, peer);
        fflush(stdout);
    }
    crew_join(&app->crew);
    f = as_future_ref(as_task_future(t));
    as_task_unref(t);
    return f;
}

/* ------------------------------------------------------------ self-check */

/* What the three test clients share: a barrier, so that nobody speaks
 * before everyone is in the room (a line said earlier would not reach a
 * later member, and the check would be a race). */
struct shared {
    int port;
    int joined;
    as_event *all_in;
    int notices;           /* join notices heard, by everyone */
};

/* A whole line ("\n" included) as a C string in buf; 0 if it is not one
 * or does not fit.  (as_bytes are not NUL-terminated.) */
static int line_text(const as_bytes *line, char *buf, size_t size)
{
    if (line->len == 0 || line->len >= size || line->data[line->len - 1] != '\n')
        return 0;
    memcpy(buf, line->data, line->len);
    buf[line->len] = '\0';
    return 1;
}

/* listing: client */
struct client {
    int pc;
    struct shared *sh;
    as_connection *conn;
    int id;                /* the N of "client N", from the welcome */
    int i;
    int heard;             /* lines heard from the others */
    char text[64];
};

static as_step client_step(as_task *t, void *p)
{
    struct client *c = p;
    as_bytes *line;
    int from, n, from2;
    char port[16];

    AS_TASK_BEGIN(c);
    snprintf(port, sizeof port, "%d", c->sh->port);
    AS_AWAIT(t, c, as_open_connection(as_task_loop(t), "127.0.0.1", port, NULL));
    AS_TASK_CHECK(t);
    c->conn = as_task_take_result(t);

    /* The welcome says who we are; then wait until all are in. */
    AS_AWAIT(t, c, as_reader_readline(c->conn->reader));
    AS_TASK_CHECK(t);
    line = as_task_result(t);
    if (!line_text(line, c->text, sizeof c->text) ||
        sscanf(c->text, "*** welcome, you are client %d;", &c->id) != 1)
        AS_TASK_FAIL(t, -EPROTO, "no welcome line");
    if (++c->sh->joined == CLIENTS)
        as_event_set(c->sh->all_in);
    AS_AWAIT(t, c, as_event_wait(c->sh->all_in));
    AS_TASK_CHECK(t);

    for (c->i = 0; c->i < LINES; c->i++) {
        n = snprintf(c->text, sizeof c->text, "hello %d from client %d\n", c->i, c->id);
        if ((n = as_writer_write(c->conn->writer, c->text, (size_t)n)) < 0)
            AS_TASK_FAIL(t, n, "write");
    }
    AS_AWAIT(t, c, as_writer_drain(c->conn->writer));
    AS_TASK_CHECK(t);

    /* Hear every line of the others; every line must name its sender. */
    while (c->heard < (CLIENTS - 1) * LINES) {
        AS_AWAIT(t, c, as_reader_readline(c->conn->reader));
        AS_TASK_CHECK(t);
        line = as_task_result(t);
        if (line->len == 0)
            AS_TASK_FAIL(t, -EPROTO, "EOF before hearing everyone");
        printf("client %d hears: %.*s", c->id, (int)line->len, (const char *)line->data);
        if (line->len > 4 && memcmp(line->data, "*** ", 4) == 0) {
            c->sh->notices += strstr((const char *)line->data, " joined\n") != NULL;
            continue;
        }
        /* "client 2: hello 0 from client 2\n" */
        if (!line_text(line, c->text, sizeof c->text) ||
            sscanf(c->text, "client %d: hello %d from client %d", &from, &n, &from2) != 3 ||
            from != from2 || from == c->id)
            AS_TASK_FAIL(t, -EPROTO, "a line with the wrong sender");
        c->heard++;
    }
    as_writer_close(c->conn->writer);
    AS_AWAIT(t, c, as_writer_wait_closed(c->conn->writer));
    AS_TASK_CHECK(t);
    AS_TASK_END(t);
}
/* end listing */

static void client_free(void *p)
{
    struct client *c = p;
    if (c->conn) {
        as_writer_close(c->conn->writer);
        as_connection_free(c->conn);
    }
    free(c);
}

static as_future *client_spawn(as_loop *loop, struct shared *sh)
{
    struct client *c = calloc(1, sizeof *c);
    as_future *f;
    as_task *t;

    if (!c)
        return NULL;
    c->sh = sh;
    if (as_task_new(loop, client_step, c, client_free, &t) < 0) {
        free(c);
        return NULL;
    }
    f = as_future_ref(as_task_future(t));
    as_task_unref(t);
    return f;
}

struct selfcheck {
    int pc;
    struct app *app;
    struct shared sh;
    int failed;
};

static as_step selfcheck_step(as_task *t, void *p)
{
    struct selfcheck *s = p;
    struct app *app = s->app;
    as_future *clients[CLIENTS];
    as_gather_result *r;
    size_t i;

    AS_TASK_BEGIN(s);
    AS_AWAIT(t, s, as_start_server(app->loop, on_client, app, NULL, "127.0.0.1", "0", NULL));
    AS_TASK_CHECK(t);
    app->server = as_task_take_result(t);
    s->sh.port = as_server_port(app->server, 0);
    printf("chat room on port %d\n", s->sh.port);

    for (i = 0; i < CLIENTS; i++)
        clients[i] = client_spawn(app->loop, &s->sh);
    AS_AWAIT(t, s, as_gather(app->loop, clients, CLIENTS, 1));
    AS_TASK_CHECK(t);
    r = as_task_result(t);
    for (i = 0; i < r->count; i++) {
        if (as_future_error(r->futures[i]) != 0) {
            fprintf(stderr, "chat_server: a client: %s\n",
                    as_future_error_message(r->futures[i]));
            s->failed++;
        }
    }
    /* Client k hears the k - 1 who joined after it: 2 + 1 + 0. */
    if (s->sh.notices != CLIENTS * (CLIENTS - 1) / 2) {
        fprintf(stderr, "chat_server: %d join notices heard, expected %d\n",
                s->sh.notices, CLIENTS * (CLIENTS - 1) / 2);
        s->failed++;
    }

    /* Shut down as on a signal: nothing should be left to abort. */
    AS_AWAIT(t, s, as_server_shutdown(app->server, 1.0));
    AS_TASK_CHECK(t);
    AS_AWAIT(t, s, as_event_wait(app->crew.idle));
    AS_TASK_CHECK(t);
    AS_TASK_END(t);
}

static int selfcheck(struct app *app)
{
    struct selfcheck s;
    as_task *t;
    int err;

    memset(&s, 0, sizeof s);
    s.app = app;
    app->quiet = 1;
    if ((err = as_event_new(app->loop, &s.sh.all_in)) < 0 ||
        (err = as_task_new(app->loop, selfcheck_step, &s, NULL, &t)) < 0) {
        fprintf(stderr, "chat_server: %s\n", as_strerror(err));
        as_event_free(s.sh.all_in); /* NULL if it was not made: nothing */
        return 1;
    }
    err = as_loop_run_until_complete(app->loop, as_task_future(t));
    if (err != 0)
        fprintf(stderr, "chat_server: %s\n", as_future_error_message(as_task_future(t)));
    as_task_unref(t);
    as_event_free(s.sh.all_in);
    if (err == 0 && s.failed == 0)
        printf("all %d clients heard every line of the others\n", CLIENTS);
    return err != 0 || s.failed != 0;
}

int main(int argc, char **argv)
{
    struct app app;
    size_t pending;
    int err, status;

    memset(&app, 0, sizeof app);
    if (argc > 2) {
        fprintf(stderr, "usage: chat_server [PORT]\n");
        return 2;
    }
    if ((err = as_loop_new(&app.loop)) < 0) {
        fprintf(stderr, "chat_server: loop: %s\n", as_strerror(err));
        return 1;
    }
    if ((err = crew_init(&app.crew, app.loop)) < 0) {
        fprintf(stderr, "chat_server: %s\n", as_strerror(err));
        as_loop_close(app.loop);
        return 1;
    }
    status = argc == 2 ? serve_until_signal("chat_server", app.loop, on_client, &app, argv[1],
                                            NULL, &app.crew, &app.server)
                       : selfcheck(&app);
    as_server_unref(app.server);
    as_event_free(app.crew.idle);
    pending = as_loop_pending(app.loop);   /* close() would drop them silently */
    if (as_loop_close(app.loop) != 0 || pending != 0) {
        fprintf(stderr, "chat_server: something was left alive\n");
        status = 1;
    }
    return status;
}
