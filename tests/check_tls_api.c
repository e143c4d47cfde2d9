/*
 * check_tls_api.c - the TLS calls (tls.h) as any build has them: every
 * call given NULL, the constructors taking over what they are given, a
 * build without OpenSSL answering AS_ENOTSUP everywhere and leaving a
 * connection alone, and the transport's state machine driven by an engine
 * of the test's own, which needs no OpenSSL.  check_tls.c tests TLS
 * itself, against OpenSSL's own programs.
 */
#include "config.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int wait_for(as_loop *loop, as_future *f)
{
    ck_assert_ptr_nonnull(f);
    if (!as_future_done(f))
        (void)as_loop_run_until_complete(loop, f);
    ck_assert(as_future_done(f));
    return as_future_error(f);
}

static as_bytes *read_ok(as_loop *loop, as_future *f)
{
    as_bytes *b;
    ck_assert_int_eq(wait_for(loop, f), 0);
    b = as_future_take_result(f);
    as_future_unref(f);
    return b;
}

static void expect_line(as_loop *loop, as_reader *r, const char *want)
{
    as_bytes *b = read_ok(loop, as_reader_readline(r));
    ck_assert_msg(b->len == strlen(want) && memcmp(b->data, want, b->len) == 0,
                  "got %.*s, wanted %s", (int)b->len, b->data, want);
    free(b);
}

static void count_destroy(void *p)
{
    ++*(int *)p;
}

static as_future *never_called(as_reader *r, as_writer *w, void *p)
{
    (void)r;
    (void)w;
    (void)p;
    ck_abort_msg("no connection was expected");
    return NULL;
}

/* A socket transport over one end of a fresh socketpair; *peer is the
 * other end, a plain fd. */
static as_transport *socket_end(as_loop *loop, int *peer)
{
    int sv[2];
    as_reader *r;
    as_transport *t;
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    ck_assert_int_eq(as_reader_new(loop, 65536, &r), 0);
    ck_assert_int_eq(as_socket_transport_new(loop, sv[0], r, &t), 0);
    as_reader_unref(r);
    *peer = sv[1];
    return t;
}

/* ------------------------------------------------ an engine of our own
 * The state machine knows engines only through their table: a "null"
 * engine that passes bytes through unchanged (after a one-byte "hello"
 * each way) runs the same transport code, as a binding's engine would. */

typedef struct null_engine {
    as_buffer in, out;
    int said_hello, heard_hello, sent_bye, closed;
    int *destroyed;
} null_engine;

static int ne_feed(void *p, const void *data, size_t len)
{
    return as_buffer_append(&((null_engine *)p)->in, data, len);
}

static size_t ne_output(void *p, const void **data)
{
    null_engine *e = p;
    *data = as_buffer_data(&e->out);
    return as_buffer_len(&e->out);
}

static void ne_output_done(void *p)
{
    as_buffer_clear(&((null_engine *)p)->out);
}

static int ne_handshake(void *p)
{
    null_engine *e = p;
    if (!e->said_hello) {
        e->said_hello = 1;
        ck_assert_int_eq(as_buffer_append(&e->out, "H", 1), 0);
    }
    if (!e->heard_hello) {
        if (as_buffer_len(&e->in) == 0)
            return AS_TLS_WANT;
        ck_assert_int_eq(as_buffer_data(&e->in)[0], 'H');
        as_buffer_consume(&e->in, 1);
        e->heard_hello = 1;
    }
    return AS_TLS_OK;
}

/* Data is "D" + byte; "B" is close_notify. */
static int ne_read(void *p, void *buf, size_t cap, size_t *got)
{
    null_engine *e = p;
    unsigned char *b = buf;
    *got = 0;
    while (*got < cap && as_buffer_len(&e->in) >= 1) {
        const unsigned char *d = as_buffer_data(&e->in);
        if (d[0] == 'B') {
            as_buffer_consume(&e->in, 1);
            e->closed = 1;
            break;
        }
        if (as_buffer_len(&e->in) < 2)
            break;
        b[(*got)++] = d[1];
        as_buffer_consume(&e->in, 2);
    }
    if (*got > 0)
        return AS_TLS_OK;
    return e->closed ? AS_TLS_CLOSED : AS_TLS_WANT;
}

static int ne_write(void *p, const void *buf, size_t len, size_t *done)
{
    null_engine *e = p;
    size_t i;
    for (i = 0; i < len; i++) {
        unsigned char rec[2] = {'D', ((const unsigned char *)buf)[i]};
        ck_assert_int_eq(as_buffer_append(&e->out, rec, 2), 0);
    }
    *done = len;
    return AS_TLS_OK;
}

static int ne_shutdown(void *p)
{
    null_engine *e = p;
    size_t got;
    unsigned char sink[64];
    if (!e->sent_bye) {
        e->sent_bye = 1;
        ck_assert_int_eq(as_buffer_append(&e->out, "B", 1), 0);
    }
    while (!e->closed && ne_read(p, sink, sizeof sink, &got) == AS_TLS_OK)
        ;
    return e->closed ? AS_TLS_OK : AS_TLS_WANT;
}

static const char *ne_message(void *p)
{
    (void)p;
    return "null engine";
}

static int ne_extra(void *p, const char *key, as_extra_info *out)
{
    (void)p;
    if (strcmp(key, "version") != 0)
        return AS_ENOKEY;
    out->kind = AS_EXTRA_STRING;
    out->u.string = "NULL/1";
    return 0;
}

static void ne_destroy(void *p)
{
    null_engine *e = p;
    ++*e->destroyed;
    as_buffer_destroy(&e->in);
    as_buffer_destroy(&e->out);
    free(e);
}

static const as_tls_engine_ops null_ops = {
    "null", ne_feed, ne_output, ne_output_done, ne_handshake, ne_read, ne_write,
    ne_shutdown, ne_message, ne_extra, ne_destroy,
};

static null_engine *null_engine_new(int *destroyed)
{
    null_engine *e = calloc(1, sizeof *e);
    ck_assert_ptr_nonnull(e);
    as_buffer_init(&e->in);
    as_buffer_init(&e->out);
    e->destroyed = destroyed;
    return e;
}

static as_writer *null_end(as_loop *loop, int fd, int *destroyed, as_reader **rp)
{
    as_reader *cipher, *r;
    as_transport *lower, *t;
    as_writer *w;
    null_engine *e = null_engine_new(destroyed);
    ck_assert_int_eq(as_reader_new(loop, 65536, &cipher), 0);
    ck_assert_int_eq(as_socket_transport_new(loop, fd, cipher, &lower), 0);
    as_reader_unref(cipher);
    ck_assert_int_eq(as_reader_new(loop, 65536, &r), 0);
    ck_assert_int_eq(as_tls_transport_new_engine(lower, r, &null_ops, e, NULL, &t), 0);
    ck_assert_int_eq(as_writer_new(t, r, &w), 0);
    as_transport_unref(t);
    *rp = r;
    return w;
}

START_TEST(the_state_machine_runs_any_engine)
{
    as_loop *loop = tu_loop();
    int sv[2], destroyed = 0;
    as_reader *ra, *rb;
    as_writer *wa, *wb;
    as_future *f;
    as_extra_info info;
    as_bytes *b;

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    wa = null_end(loop, sv[0], &destroyed, &ra);
    wb = null_end(loop, sv[1], &destroyed, &rb);
    ck_assert_int_eq(as_writer_write(wa, "through\n", 8), 0); /* kept until the hello */
    f = as_tls_handshake(as_writer_transport(wa));
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    expect_line(loop, rb, "through\n");
    ck_assert_int_eq(as_transport_get_extra_info(as_writer_transport(wb), "version", &info), 0);
    ck_assert_str_eq(info.u.string, "NULL/1");
    as_writer_close(wa); /* "B" goes over; b answers with its own and closes */
    b = read_ok(loop, as_reader_read(rb, -1));
    ck_assert_uint_eq(b->len, 0);
    free(b);
    f = as_writer_wait_closed(wa);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    f = as_writer_wait_closed(wb);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    as_writer_unref(wa);
    as_writer_unref(wb);
    as_reader_unref(ra);
    as_reader_unref(rb);
    ck_assert_int_eq(destroyed, 2);
    tu_close(loop);
}
END_TEST

/* Flushes asked for while the handshake keeps the plaintext back wait for
 * the records that carry it, not just for the handshake. */
START_TEST(flushes_during_the_handshake_wait_for_its_records)
{
    as_loop *loop = tu_loop();
    int sv[2], destroyed = 0, i;
    as_reader *r;
    as_writer *w;
    as_future *fl, *closed;
    char buf[16];

    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    w = null_end(loop, sv[0], &destroyed, &r);
    ck_assert_int_eq(as_writer_write(w, "abc", 3), 0);
    fl = as_writer_flush(w);
    for (i = 0; i < 5; i++)
        tu_turn(loop);
    ck_assert(!as_future_done(fl)); /* the peer has not said hello */
    ck_assert_int_eq(read(sv[1], buf, sizeof buf), 1); /* our "H" */
    ck_assert_int_eq(buf[0], 'H');
    ck_assert_int_eq(write(sv[1], "H", 1), 1);
    ck_assert_int_eq(wait_for(loop, fl), 0);
    as_future_unref(fl);
    ck_assert_uint_eq(as_writer_bytes_sent(w), 3);
    ck_assert_int_eq(read(sv[1], buf, sizeof buf), 6);
    ck_assert(memcmp(buf, "DaDbDc", 6) == 0);

    as_writer_close(w); /* our "B"; the peer answers with its own */
    closed = as_writer_wait_closed(w);
    tu_turn(loop);
    ck_assert_int_eq(read(sv[1], buf, sizeof buf), 1);
    ck_assert_int_eq(buf[0], 'B');
    ck_assert_int_eq(write(sv[1], "B", 1), 1);
    ck_assert_int_eq(wait_for(loop, closed), 0);
    as_future_unref(closed);
    as_writer_unref(w);
    as_reader_unref(r);
    close(sv[1]);
    ck_assert_int_eq(destroyed, 1);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ NULL */

START_TEST(every_tls_call_accepts_null)
{
    as_tls_options o;
    as_transport *t = tu_poison(), *t2 = tu_poison();
    int destroyed = 0;
    memset(&o, 0, sizeof o);
    {
        tu_null_call calls[] = {
            TU_NULL_PTR(as_open_connection_tls(NULL, "localhost", "443", NULL, &o)),
            TU_NULL_PTR(as_open_unix_connection_tls(NULL, "/nonexistent", NULL, &o)),
            TU_NULL_PTR(as_start_server_tls(NULL, never_called, &destroyed, count_destroy,
                                            "127.0.0.1", "0", NULL, &o)),
            TU_NULL_PTR(as_start_unix_server_tls(NULL, never_called, &destroyed,
                                                 count_destroy, "/nonexistent", NULL, &o)),
            TU_NULL_PTR(as_writer_start_tls(NULL, &o)),
            TU_NULL_INT(as_tls_transport_new(NULL, NULL, &o, &t), AS_EINVAL),
            TU_NULL_INT(as_tls_transport_new_engine(NULL, NULL, NULL, NULL, &o, &t2),
                        AS_EINVAL),
            TU_NULL_INT(as_is_tls_transport(NULL), 0),
            TU_NULL_PTR(as_tls_handshake(NULL)),
        };
        tu_check_null(calls);
    }
    ck_assert_ptr_null(t);
    ck_assert_ptr_null(t2);
    ck_assert_int_eq(destroyed, 0);
}
END_TEST

/* What the constructors take over is gone when they refuse, whatever the
 * reason: the lower transport (and its fd), the engine. */
START_TEST(the_constructors_take_over_what_they_are_given_even_when_they_fail)
{
    as_loop *loop = tu_loop();
    as_transport *lower, *t = tu_poison();
    as_reader *r;
    as_future *f;
    int peer, destroyed = 0;
    char c;

    lower = socket_end(loop, &peer);
    ck_assert_int_eq(as_tls_transport_new(lower, NULL, NULL, &t), AS_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_le(read(peer, &c, 1), 0); /* reset or closed: gone */
    close(peer);

    ck_assert_int_eq(as_reader_new(loop, 1024, &r), 0);
    lower = socket_end(loop, &peer);
    t = tu_poison();
    ck_assert_int_eq(as_tls_transport_new_engine(lower, r, NULL, NULL, NULL, &t), AS_EINVAL);
    ck_assert_ptr_null(t);
    close(peer);
    t = tu_poison();
    ck_assert_int_eq(as_tls_transport_new_engine(NULL, r, &null_ops, null_engine_new(&destroyed),
                                                 NULL, &t),
                     AS_EINVAL);
    ck_assert_ptr_null(t);
    ck_assert_int_eq(destroyed, 1);

    /* Not a TLS transport: asked for its handshake, a failed future. */
    lower = socket_end(loop, &peer);
    ck_assert(!as_is_tls_transport(lower));
    f = as_tls_handshake(lower);
    ck_assert_int_eq(wait_for(loop, f), AS_EINVAL);
    as_future_unref(f);
    as_transport_abort(lower);
    as_transport_unref(lower);
    close(peer);
    as_reader_unref(r);
    tu_close(loop);
}
END_TEST

/* ------------------------------------------------------------ no OpenSSL */

/* configure --without-openssl: every call that needs OpenSSL fails with
 * AS_ENOTSUP and takes nothing it should not.  With OpenSSL, the build
 * says it has TLS. */
START_TEST(without_openssl_every_tls_call_says_not_supported)
{
    as_loop *loop;
    as_tls_options o;
    as_transport *lower, *t = tu_poison();
    as_reader *r, *plain;
    as_writer *w;
    as_future *f;
    int peer, destroyed = 0;
    char buf[32];

#ifdef HAVE_OPENSSL
    ck_assert_int_eq(as_tls_available(), 1);
    return;
#endif
    ck_assert_int_eq(as_tls_available(), 0);
    loop = tu_loop();
    memset(&o, 0, sizeof o);
    o.server_hostname = "localhost";

    f = as_open_connection_tls(loop, "127.0.0.1", "9", NULL, &o);
    ck_assert_int_eq(wait_for(loop, f), AS_ENOTSUP);
    ck_assert_str_eq(as_future_error_message(f), "TLS is not supported in this build");
    as_future_unref(f);
    f = as_open_unix_connection_tls(loop, "/nonexistent", NULL, &o);
    ck_assert_int_eq(wait_for(loop, f), AS_ENOTSUP);
    as_future_unref(f);

    o.server_side = 1;
    o.cert_file = "server.pem";
    f = as_start_server_tls(loop, never_called, &destroyed, count_destroy, "127.0.0.1", "0",
                            NULL, &o);
    ck_assert_int_eq(wait_for(loop, f), AS_ENOTSUP);
    as_future_unref(f);
    f = as_start_unix_server_tls(loop, never_called, &destroyed, count_destroy,
                                 "/tmp/as-never", NULL, &o);
    ck_assert_int_eq(wait_for(loop, f), AS_ENOTSUP);
    as_future_unref(f);
    ck_assert_int_eq(destroyed, 2); /* a start that fails runs destroy */
    o.server_side = 0;
    o.cert_file = NULL;

    ck_assert_int_eq(as_reader_new(loop, 1024, &r), 0);
    lower = socket_end(loop, &peer);
    ck_assert_int_eq(as_tls_transport_new(lower, r, &o, &t), AS_ENOTSUP);
    ck_assert_ptr_null(t);
    close(peer);
    as_reader_unref(r);

    /* start_tls refuses and the connection goes on in plaintext. */
    lower = socket_end(loop, &peer);
    plain = as_transport_reader(lower);
    ck_assert_int_eq(as_writer_new(lower, plain, &w), 0);
    as_transport_unref(lower); /* the writer's */
    f = as_writer_start_tls(w, &o);
    ck_assert_int_eq(wait_for(loop, f), AS_ENOTSUP);
    as_future_unref(f);
    ck_assert(!as_is_tls_transport(as_writer_transport(w)));
    ck_assert_int_eq(as_writer_write(w, "still plain\n", 12), 0);
    f = as_writer_flush(w);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    ck_assert_int_eq(read(peer, buf, sizeof buf), 12);
    ck_assert(memcmp(buf, "still plain\n", 12) == 0);
    ck_assert_int_eq(write(peer, "reply\n", 6), 6);
    expect_line(loop, plain, "reply\n");
    as_writer_close(w);
    f = as_writer_wait_closed(w);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    as_writer_unref(w);
    close(peer);
    tu_close(loop);
}
END_TEST

/* start_tls with an engine of one's own: a plaintext line first, then the
 * peer's hello, sent with the line's answer, goes to the engine, not to
 * the application. */
START_TEST(start_tls_takes_an_engine)
{
    as_loop *loop = tu_loop();
    int peer, destroyed = 0;
    as_transport *lower;
    as_reader *plain;
    as_writer *w;
    as_future *f;
    const unsigned char *held;
    char buf[16];

    lower = socket_end(loop, &peer);
    plain = as_transport_reader(lower);
    ck_assert_int_eq(as_writer_new(lower, plain, &w), 0);
    as_transport_unref(lower); /* the writer's */
    ck_assert_int_eq(write(peer, "STARTTLS\nHDx", 12), 12);
    expect_line(loop, plain, "STARTTLS\n");
    while (as_reader_peek(plain, &held) < 3)
        tu_turn(loop);
    f = as_writer_start_tls_engine(w, &null_ops, null_engine_new(&destroyed), NULL);
    ck_assert_int_eq(wait_for(loop, f), 0);
    as_future_unref(f);
    ck_assert(as_is_tls_transport(as_writer_transport(w)));
    ck_assert_int_eq(write(peer, "D\n", 2), 2);
    expect_line(loop, plain, "x\n");
    ck_assert_int_eq(read(peer, buf, sizeof buf), 1); /* our hello */
    ck_assert_int_eq(buf[0], 'H');

    /* Once TLS, a second start_tls is refused, and the engine destroyed. */
    f = as_writer_start_tls_engine(w, &null_ops, null_engine_new(&destroyed), NULL);
    ck_assert_int_eq(wait_for(loop, f), AS_ESTATE);
    as_future_unref(f);
    ck_assert_int_eq(destroyed, 1);
    ck_assert_ptr_null(as_writer_start_tls_engine(NULL, &null_ops,
                                                  null_engine_new(&destroyed), NULL));
    ck_assert_int_eq(destroyed, 2);

    as_writer_abort(w);
    f = as_writer_wait_closed(w);
    (void)wait_for(loop, f); /* aborted: its error does not matter here */
    as_future_unref(f);
    as_writer_unref(w);
    close(peer);
    tu_close(loop);
    ck_assert_int_eq(destroyed, 3);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tls_api");
    TCase *tc = tcase_create("api");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, every_tls_call_accepts_null);
    tcase_add_test(tc, the_constructors_take_over_what_they_are_given_even_when_they_fail);
    tcase_add_test(tc, without_openssl_every_tls_call_says_not_supported);
    tcase_add_test(tc, the_state_machine_runs_any_engine);
    tcase_add_test(tc, start_tls_takes_an_engine);
    tcase_add_test(tc, flushes_during_the_handshake_wait_for_its_records);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
