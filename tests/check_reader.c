/*
 * check_reader.c - StreamReader against CPython 3.13's test_streams.py.
 *
 * The first cases follow test_streams.py one by one (same names, inputs and
 * expected outputs; `stream._buffer` becomes as_reader_peek()).  Then come
 * the rules of the reference that the CPython suite does not spell out
 * (flow control, busy reads, cancellation), the extra calls, and a
 * chunking property test.
 */
#include "testutil.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static const char DATA[] = "line1\nline2\nline3\n";

/* ---------------------------------------------------------------- helpers */

static as_reader *new_reader(as_loop *loop, ssize_t limit)
{
    as_reader *r = NULL;
    ck_assert_int_eq(as_reader_new(loop, limit, &r), 0);
    ck_assert_ptr_nonnull(r);
    return r;
}

static void feed(as_reader *r, const char *s)
{
    ck_assert_int_eq(as_reader_feed_data(r, s, strlen(s)), 0);
}

static void assert_buffer_mem(as_reader *r, const void *s, size_t n)
{
    const unsigned char *p = NULL;
    size_t len = as_reader_peek(r, &p);
    ck_assert_uint_eq(len, n);
    if (n)
        ck_assert_int_eq(memcmp(p, s, n), 0);
}

static void assert_buffer(as_reader *r, const char *s)
{
    assert_buffer_mem(r, s, strlen(s));
}

/* Run the loop until f is done (a read that waits finishes on a later turn). */
static void settle(as_loop *loop, as_future *f)
{
    ck_assert_ptr_nonnull(f);
    if (!as_future_done(f))
        as_loop_run_until_complete(loop, f);
    ck_assert(as_future_done(f));
}

/* f finished with exactly the n bytes s; drops the caller's reference. */
static void expect_mem(as_loop *loop, as_future *f, const void *s, size_t n)
{
    as_bytes *b;
    settle(loop, f);
    ck_assert_msg(as_future_error(f) == 0, "read failed: %s",
                  as_future_error_message(f));
    b = as_future_result(f);
    ck_assert_ptr_nonnull(b);
    ck_assert_uint_eq(b->len, n);
    if (n)
        ck_assert_int_eq(memcmp(b->data, s, n), 0);
    as_future_unref(f);
}

static void expect(as_loop *loop, as_future *f, const char *s)
{
    expect_mem(loop, f, s, strlen(s));
}

/* f failed with code and exactly message msg (NULL: do not check);
 * returns the detail, valid until the caller unrefs f. */
static void *expect_error_keep(as_loop *loop, as_future *f, int code,
                               const char *msg)
{
    settle(loop, f);
    ck_assert_int_eq(as_future_error(f), code);
    if (msg)
        ck_assert_str_eq(as_future_error_message(f), msg);
    return as_future_error_detail(f);
}

static void expect_error(as_loop *loop, as_future *f, int code, const char *msg)
{
    expect_error_keep(loop, f, code, msg);
    as_future_unref(f);
}

static as_future *until(as_reader *r, const char *sep)
{
    return as_reader_readuntil(r, sep, strlen(sep));
}

/* A read that has to wait is not done yet. */
static as_future *pending(as_future *f)
{
    ck_assert_ptr_nonnull(f);
    ck_assert(!as_future_done(f));
    return f;
}

static void finish(as_loop *loop, as_reader *r)
{
    as_reader_unref(r);
    tu_close(loop);
}

static const char MSG_NOT_FOUND[] = "Separator is not found, and chunk exceed the limit";
static const char MSG_FOUND[] = "Separator is found, but chunk is longer than limit";

/* ------------------------------------------------------ feed / read */

START_TEST(test_feed_empty_data)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    ck_assert_int_eq(as_reader_feed_data(r, "", 0), 0);
    ck_assert_int_eq(as_reader_feed_data(r, NULL, 0), 0);
    assert_buffer(r, "");
    ck_assert(!as_reader_at_eof(r));
    finish(loop, r);
}
END_TEST

START_TEST(test_feed_nonempty_data)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, DATA);
    assert_buffer(r, DATA);
    finish(loop, r);
}
END_TEST

START_TEST(test_read)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_read(r, 30));
    feed(r, DATA);
    /* Woken on the next turn, not inside feed_data. */
    ck_assert(!as_future_done(f));
    expect(loop, f, DATA);
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

START_TEST(test_read_line_breaks)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "line1");
    feed(r, "line2");
    expect(loop, as_reader_read(r, 5), "line1");
    assert_buffer(r, "line2");
    finish(loop, r);
}
END_TEST

/* Two feeds in one turn: the woken read(30) sees both, as in CPython. */
START_TEST(read_after_wait_returns_everything_fed_that_turn)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_read(r, 30));
    feed(r, "line1\n");
    feed(r, "line2\n");
    expect(loop, f, "line1\nline2\n");
    finish(loop, r);
}
END_TEST

START_TEST(test_read_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_read(r, 1024));
    as_reader_feed_eof(r);
    expect(loop, f, "");
    assert_buffer(r, "");
    /* After EOF, read(), read(k) and readline() keep returning b"". */
    expect(loop, as_reader_read(r, -1), "");
    expect(loop, as_reader_read(r, 7), "");
    expect(loop, as_reader_readline(r), "");
    finish(loop, r);
}
END_TEST

START_TEST(test_read_until_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_read(r, -1));
    feed(r, "chunk1\n");
    feed(r, "chunk2");
    as_reader_feed_eof(r);
    expect(loop, f, "chunk1\nchunk2");
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

/* read(-1) across many turns, longer than the limit. */
START_TEST(read_all_across_turns_and_limit)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 4);
    as_future *f = pending(as_reader_read(r, -1));
    feed(r, "0123456789");
    tu_turn(loop);
    ck_assert(!as_future_done(f));
    feed(r, "abcdefghij");
    tu_turn(loop);
    as_reader_feed_eof(r);
    expect(loop, f, "0123456789abcdefghij");
    finish(loop, r);
}
END_TEST

START_TEST(test_read_exception)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "line\n");
    expect(loop, as_reader_read(r, 2), "li");
    ck_assert_int_eq(as_reader_set_exception(r, AS_EINVAL, "boom"), 0);
    expect_error(loop, as_reader_read(r, 2), AS_EINVAL, "boom");
    /* Sticky, and before the n == 0 check. */
    expect_error(loop, as_reader_read(r, 0), AS_EINVAL, "boom");
    expect_error(loop, as_reader_read(r, -1), AS_EINVAL, "boom");
    assert_buffer(r, "ne\n");
    finish(loop, r);
}
END_TEST

START_TEST(test_read_zero)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, DATA);
    expect(loop, as_reader_read(r, 0), "");
    assert_buffer(r, DATA);
    finish(loop, r);
}
END_TEST

START_TEST(test_invalid_limit)
{
    as_loop *loop = tu_loop();
    as_reader *r = tu_poison();
    ck_assert_int_eq(as_reader_new(loop, 0, &r), AS_EINVAL);
    ck_assert_int_eq(as_reader_new(loop, -1, &r), AS_EINVAL);
    ck_assert_ptr_null(r);
    ck_assert_int_eq(as_reader_new(NULL, 1, &r), AS_EINVAL);
    tu_close(loop);
}
END_TEST

START_TEST(test_read_limit)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 3);
    feed(r, "chunk");
    expect(loop, as_reader_read(r, 5), "chunk");
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

/* --------------------------------------------------------- readline */

START_TEST(test_readline)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f;
    feed(r, "chunk1 ");
    f = pending(as_reader_readline(r));
    feed(r, "chunk2 ");
    feed(r, "chunk3 ");
    feed(r, "\n chunk4");
    expect(loop, f, "chunk1 chunk2 chunk3 \n");
    assert_buffer(r, " chunk4");
    finish(loop, r);
}
END_TEST

START_TEST(test_readline_limit_with_existing_data)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 3);
    feed(r, "li");
    feed(r, "ne1\nline2\n");
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_FOUND);
    /* The remaining data stays after the error. */
    assert_buffer(r, "line2\n");
    as_reader_unref(r);

    r = new_reader(loop, 3);
    feed(r, "li");
    feed(r, "ne1");
    feed(r, "li");
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_NOT_FOUND);
    /* No "\n": readline consumed the whole buffer. */
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

START_TEST(test_at_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    ck_assert(!as_reader_at_eof(r));
    feed(r, "some data\n");
    ck_assert(!as_reader_at_eof(r));
    expect(loop, as_reader_readline(r), "some data\n");
    ck_assert(!as_reader_at_eof(r));
    feed(r, "some data\n");
    as_reader_feed_eof(r);
    ck_assert(!as_reader_at_eof(r)); /* EOF, but bytes left */
    expect(loop, as_reader_readline(r), "some data\n");
    ck_assert(as_reader_at_eof(r));
    finish(loop, r);
}
END_TEST

struct feeds {
    as_reader *r;
    const char *chunks[4];
    int eof;
};

static void feed_cb(void *p)
{
    struct feeds *fd = p;
    for (int i = 0; i < 4 && fd->chunks[i]; i++)
        feed(fd->r, fd->chunks[i]);
    if (fd->eof)
        as_reader_feed_eof(fd->r);
}

START_TEST(test_readline_limit)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 7);
    struct feeds fd1 = { r, { "chunk1", "chunk2", "chunk3\n", NULL }, 1 };
    struct feeds fd2;
    as_limit_overrun *lo;
    as_future *f;

    /* The data arrives (call_soon'd first) before readline runs. */
    ck_assert_int_eq(as_loop_call_soon(loop, feed_cb, &fd1, NULL, NULL), 0);
    tu_turn(loop);
    f = as_reader_readline(r);
    lo = expect_error_keep(loop, f, AS_ELIMIT, MSG_FOUND);
    ck_assert_ptr_nonnull(lo);
    ck_assert_uint_eq(lo->consumed, 18);
    as_future_unref(f);
    /* One line of data: after the error the buffer is empty. */
    assert_buffer(r, "");
    as_reader_unref(r);

    r = new_reader(loop, 7);
    fd2 = (struct feeds){ r, { "chunk1", "chunk2\n", "chunk3\n", NULL }, 1 };
    ck_assert_int_eq(as_loop_call_soon(loop, feed_cb, &fd2, NULL, NULL), 0);
    tu_turn(loop);
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_FOUND);
    assert_buffer(r, "chunk3\n");
    as_reader_unref(r);

    /* The limit is strict: 7 bytes + "\n" is fine, 8 is not. */
    r = new_reader(loop, 7);
    feed(r, "1234567\n");
    expect(loop, as_reader_readline(r), "1234567\n");
    assert_buffer(r, "");
    feed(r, "12345678\n");
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_FOUND);
    assert_buffer(r, "");
    feed(r, "12345678");
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_NOT_FOUND);
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

/* The reference's [V] example: limit 7, 1234567\n12345678\nX. */
START_TEST(readline_overrun_keeps_what_follows)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 7);
    feed(r, "1234567\n12345678\nX");
    expect(loop, as_reader_readline(r), "1234567\n");
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_FOUND);
    assert_buffer(r, "X");
    finish(loop, r);
}
END_TEST

/* CPython's pitfall, kept: after a not-found overrun the rest of the long
 * line comes back as a "line". */
START_TEST(readline_overrun_tail_is_returned_as_a_line)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 4);
    feed(r, "abcdef");
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_NOT_FOUND);
    feed(r, "gh\nok\n");
    expect(loop, as_reader_readline(r), "gh\n");
    expect(loop, as_reader_readline(r), "ok\n");
    finish(loop, r);
}
END_TEST

START_TEST(test_readline_nolimit_nowait)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    ck_assert_int_eq(as_reader_feed_data(r, DATA, 6), 0);
    ck_assert_int_eq(as_reader_feed_data(r, DATA + 6, strlen(DATA) - 6), 0);
    /* Buffered: the future is finished before any loop turn. */
    as_future *f = as_reader_readline(r);
    ck_assert(as_future_done(f));
    expect(loop, f, "line1\n");
    assert_buffer(r, "line2\nline3\n");
    finish(loop, r);
}
END_TEST

START_TEST(test_readline_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "some data");
    as_reader_feed_eof(r);
    expect(loop, as_reader_readline(r), "some data");
    finish(loop, r);
}
END_TEST

START_TEST(test_readline_empty_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_reader_feed_eof(r);
    expect(loop, as_reader_readline(r), "");
    finish(loop, r);
}
END_TEST

START_TEST(readline_partial_line_with_cr_at_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_readline(r));
    feed(r, "ab\r");
    tu_turn(loop);
    ck_assert(!as_future_done(f));
    as_reader_feed_eof(r);
    expect(loop, f, "ab\r");
    finish(loop, r);
}
END_TEST

START_TEST(test_readline_read_byte_count)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, DATA);
    expect(loop, as_reader_readline(r), "line1\n");
    expect(loop, as_reader_read(r, 7), "line2\nl");
    assert_buffer(r, "ine3\n");
    finish(loop, r);
}
END_TEST

START_TEST(test_readline_exception)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "line\n");
    expect(loop, as_reader_readline(r), "line\n");
    as_reader_set_exception(r, AS_EINVAL, "ValueError()");
    expect_error(loop, as_reader_readline(r), AS_EINVAL, "ValueError()");
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

/* -------------------------------------------------------- readuntil */

START_TEST(test_readuntil_separator)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_separator empty = { "", 0 };
    const char *one = "Separator should be at least one-byte string";
    expect_error(loop, as_reader_readuntil(r, "", 0), AS_EINVAL, one);
    expect_error(loop, as_reader_readuntil_any(r, &empty, 1), AS_EINVAL, one);
    expect_error(loop, as_reader_readuntil_any(r, &empty, 0), AS_EINVAL,
                 "Separator should contain at least one element");
    /* Validation comes before the stored exception. */
    as_reader_set_exception(r, AS_ECONNLOST, "gone");
    expect_error(loop, as_reader_readuntil(r, "", 0), AS_EINVAL, one);
    expect_error(loop, until(r, "\n"), AS_ECONNLOST, "gone");
    finish(loop, r);
}
END_TEST

START_TEST(test_readuntil_multi_chunks)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "lineAAA");
    expect(loop, until(r, "AAA"), "lineAAA");
    assert_buffer(r, "");
    feed(r, "lineAAA");
    expect(loop, until(r, "AAA"), "lineAAA");
    assert_buffer(r, "");
    feed(r, "lineAAAxxx");
    expect(loop, until(r, "AAA"), "lineAAA");
    assert_buffer(r, "xxx");
    finish(loop, r);
}
END_TEST

START_TEST(test_readuntil_multi_chunks_1)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "QWEaa");
    feed(r, "XYaa");
    feed(r, "a");
    expect(loop, until(r, "aaa"), "QWEaaXYaaa");
    assert_buffer(r, "");
    feed(r, "QWEaa");
    feed(r, "XYa");
    feed(r, "aa");
    expect(loop, until(r, "aaa"), "QWEaaXYaaa");
    assert_buffer(r, "");
    feed(r, "aaa");
    expect(loop, until(r, "aaa"), "aaa");
    assert_buffer(r, "");
    feed(r, "Xaaa");
    expect(loop, until(r, "aaa"), "Xaaa");
    assert_buffer(r, "");
    feed(r, "XXX");
    feed(r, "a");
    feed(r, "a");
    feed(r, "a");
    expect(loop, until(r, "aaa"), "XXXaaa");
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

/* The same chunks, but arriving while the read waits: the separator is
 * split across wake-ups and the resumed search must still find it. */
START_TEST(readuntil_separator_split_across_wakeups)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    const char *chunks[] = { "QWEaa", "XYa", "a", "a" };
    as_future *f = pending(until(r, "aaa"));
    for (int i = 0; i < 4; i++) {
        ck_assert(!as_future_done(f));
        feed(r, chunks[i]);
        tu_turn(loop);
    }
    expect(loop, f, "QWEaaXYaaa");
    finish(loop, r);
}
END_TEST

START_TEST(test_readuntil_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_incomplete_read *ir;
    as_future *f;
    feed(r, "some dataAA");
    as_reader_feed_eof(r);
    f = until(r, "AAA");
    ir = expect_error_keep(loop, f, AS_EINCOMPLETE,
                           "11 bytes read on a total of undefined expected bytes");
    ck_assert_ptr_nonnull(ir);
    ck_assert_uint_eq(ir->partial->len, 11);
    ck_assert_int_eq(memcmp(ir->partial->data, "some dataAA", 11), 0);
    ck_assert_int_eq(ir->expected, -1);
    as_future_unref(f);
    assert_buffer(r, "");
    ck_assert(as_reader_at_eof(r));
    finish(loop, r);
}
END_TEST

/* A separator already buffered is returned even after EOF. */
START_TEST(readuntil_buffered_separator_wins_over_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "a\nb");
    as_reader_feed_eof(r);
    expect(loop, until(r, "\n"), "a\n");
    expect_error(loop, until(r, "\n"), AS_EINCOMPLETE,
                 "1 bytes read on a total of undefined expected bytes");
    finish(loop, r);
}
END_TEST

START_TEST(test_readuntil_limit_found_sep)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 3);
    as_limit_overrun *lo;
    as_future *f;
    feed(r, "some dataAA");
    f = until(r, "AAA");
    lo = expect_error_keep(loop, f, AS_ELIMIT, MSG_NOT_FOUND);
    ck_assert_uint_eq(lo->consumed, 9);
    as_future_unref(f);
    assert_buffer(r, "some dataAA");
    feed(r, "A");
    f = until(r, "AAA");
    lo = expect_error_keep(loop, f, AS_ELIMIT, MSG_FOUND);
    ck_assert_uint_eq(lo->consumed, 9);
    as_future_unref(f);
    assert_buffer(r, "some dataAAA");
    finish(loop, r);
}
END_TEST

/* [V] limit 3, "\n": "abc" waits, "abcd" raises with consumed 4. */
START_TEST(readuntil_limit_one_byte_separator)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 3);
    as_limit_overrun *lo;
    as_future *f = pending(until(r, "\n"));
    feed(r, "abc");
    tu_turn(loop);
    ck_assert(!as_future_done(f));
    feed(r, "d");
    lo = expect_error_keep(loop, f, AS_ELIMIT, MSG_NOT_FOUND);
    ck_assert_uint_eq(lo->consumed, 4);
    as_future_unref(f);
    assert_buffer(r, "abcd");
    finish(loop, r);
}
END_TEST

START_TEST(test_readuntil_multi_separator)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_separator crlf[] = { { "\r", 1 }, { "\n", 1 } };
    as_separator two[] = { { "DEF", 3 }, { "BCDE", 4 } };
    as_separator tie[] = { { "ab", 2 }, { "b", 1 } };
    feed(r, "line 1\nline 2\r");
    expect(loop, as_reader_readuntil_any(r, crlf, 2), "line 1\n");
    expect(loop, as_reader_readuntil_any(r, crlf, 2), "line 2\r");
    assert_buffer(r, "");
    /* The first end position wins, even for a longer match. */
    feed(r, "ABCDEFG");
    expect(loop, as_reader_readuntil_any(r, two, 2), "ABCDE");
    assert_buffer(r, "FG");
    /* [V] equal ends: the shorter separator wins (same bytes here). */
    as_reader_unref(r);
    r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "xxab");
    expect(loop, as_reader_readuntil_any(r, tie, 2), "xxab");
    finish(loop, r);
}
END_TEST

START_TEST(test_readuntil_multi_separator_limit)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 3);
    as_separator seps[] = { { "A", 1 }, { "ome dataA", 9 } };
    as_limit_overrun *lo;
    as_future *f;
    feed(r, "some dataA");
    f = as_reader_readuntil_any(r, seps, 2);
    lo = expect_error_keep(loop, f, AS_ELIMIT, MSG_FOUND);
    ck_assert_uint_eq(lo->consumed, 9); /* the shorter separator's start */
    as_future_unref(f);
    assert_buffer(r, "some dataA");
    finish(loop, r);
}
END_TEST

START_TEST(test_readuntil_multi_separator_negative_offset)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_separator seps[] = { { "A", 1 }, { "long sep", 8 } };
    as_future *f;
    feed(r, "data");
    f = pending(as_reader_readuntil_any(r, seps, 2));
    feed(r, "Z");
    tu_turn(loop);
    feed(r, "Aaaa");
    expect(loop, f, "dataZA");
    assert_buffer(r, "aaa");
    finish(loop, r);
}
END_TEST

/* CPython: a bytearray separator is one separator.  In C: the separator
 * bytes are copied when the read waits, so the caller may reuse them. */
START_TEST(test_readuntil_bytearray)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    char sep[3] = "\r\n";
    as_future *f;
    feed(r, "some data\r\n");
    expect(loop, as_reader_readuntil(r, sep, 2), "some data\r\n");
    assert_buffer(r, "");
    f = pending(as_reader_readuntil(r, sep, 2));
    memcpy(sep, "XX", 2); /* the waiting read must not see this */
    feed(r, "XX then\r\n");
    expect(loop, f, "XX then\r\n");
    finish(loop, r);
}
END_TEST

/* ------------------------------------------------------ readexactly */

START_TEST(test_readexactly_zero_or_less)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, DATA);
    expect(loop, as_reader_readexactly(r, 0), "");
    assert_buffer(r, DATA);
    expect_error(loop, as_reader_readexactly(r, -1), AS_EINVAL,
                 "readexactly size can not be less than zero");
    assert_buffer(r, DATA);
    /* The argument check comes before the stored exception. */
    as_reader_set_exception(r, AS_ECONNLOST, NULL);
    expect_error(loop, as_reader_readexactly(r, -1), AS_EINVAL,
                 "readexactly size can not be less than zero");
    expect_error(loop, as_reader_readexactly(r, 0), AS_ECONNLOST,
                 as_strerror(AS_ECONNLOST));
    finish(loop, r);
}
END_TEST

static void feed_data_cb(void *p)
{
    feed(p, DATA);
}

START_TEST(test_readexactly)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    size_t n = 2 * strlen(DATA);
    char want[64];
    as_future *f = pending(as_reader_readexactly(r, (ssize_t)n));
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(as_loop_call_soon(loop, feed_data_cb, r, NULL, NULL), 0);
    snprintf(want, sizeof want, "%s%s", DATA, DATA);
    expect(loop, f, want);
    assert_buffer(r, DATA);
    finish(loop, r);
}
END_TEST

START_TEST(test_readexactly_limit)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 3);
    feed(r, "chunk");
    expect(loop, as_reader_readexactly(r, 5), "chunk");
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

START_TEST(test_readexactly_eof)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_incomplete_read *ir;
    as_future *f = pending(as_reader_readexactly(r, 36));
    feed(r, DATA);
    as_reader_feed_eof(r);
    ir = expect_error_keep(loop, f, AS_EINCOMPLETE,
                           "18 bytes read on a total of 36 expected bytes");
    ck_assert_uint_eq(ir->partial->len, 18);
    ck_assert_int_eq(memcmp(ir->partial->data, DATA, 18), 0);
    ck_assert_int_eq(ir->expected, 36);
    as_future_unref(f);
    assert_buffer(r, "");
    /* The reference's example: 5 of "abc". */
    as_reader_unref(r);
    r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "abc");
    as_reader_feed_eof(r);
    expect_error(loop, as_reader_readexactly(r, 5), AS_EINCOMPLETE,
                 "3 bytes read on a total of 5 expected bytes");
    finish(loop, r);
}
END_TEST

START_TEST(test_readexactly_exception)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    feed(r, "line\n");
    expect(loop, as_reader_readexactly(r, 2), "li");
    as_reader_set_exception(r, AS_EINVAL, "ValueError()");
    expect_error(loop, as_reader_readexactly(r, 2), AS_EINVAL, "ValueError()");
    finish(loop, r);
}
END_TEST

/* -------------------------------------------------------- exception */

START_TEST(test_exception)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    const char *msg = "x";
    ck_assert_int_eq(as_reader_exception(r, &msg), 0);
    ck_assert_ptr_null(msg);
    ck_assert_int_eq(as_reader_set_exception(r, AS_EINVAL, "ValueError()"), 0);
    ck_assert_int_eq(as_reader_exception(r, &msg), AS_EINVAL);
    ck_assert_str_eq(msg, "ValueError()");
    ck_assert_int_eq(as_reader_set_exception(r, 0, NULL), AS_EINVAL);
    ck_assert_int_eq(as_reader_set_exception(r, -ECONNRESET, NULL), 0);
    ck_assert_int_eq(as_reader_exception(r, &msg), -ECONNRESET);
    ck_assert_str_eq(msg, as_strerror(-ECONNRESET));
    finish(loop, r);
}
END_TEST

START_TEST(test_exception_waiter)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_readline(r));
    ck_assert_int_eq(as_reader_set_exception(r, AS_EINVAL, "ValueError()"), 0);
    expect_error(loop, f, AS_EINVAL, "ValueError()");
    ck_assert_int_eq(as_reader_exception(r, NULL), AS_EINVAL);
    finish(loop, r);
}
END_TEST

START_TEST(test_exception_cancel)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_readline(r));
    ck_assert_int_eq(as_future_cancel(f, NULL), 1);
    tu_turn(loop);
    /* Safe after the waiter was cancelled; the future keeps its state. */
    ck_assert_int_eq(as_reader_set_exception(r, AS_EINVAL, "ValueError()"), 0);
    ck_assert_int_eq(as_future_error(f), AS_ECANCELLED);
    as_future_unref(f);
    /* The waiter is gone: a new read fails with the exception, not busy. */
    expect_error(loop, as_reader_readline(r), AS_EINVAL, "ValueError()");
    finish(loop, r);
}
END_TEST

/* --------------------------------------------- beyond the CPython suite */

START_TEST(feed_after_eof_is_refused_and_loses_nothing)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    size_t avail;
    feed(r, "abc");
    as_reader_feed_eof(r);
    as_reader_feed_eof(r); /* idempotent */
    ck_assert_int_eq(as_reader_feed_data(r, "x", 1), AS_ESTATE);
    ck_assert_int_eq(as_reader_feed_data(r, "", 0), AS_ESTATE);
    ck_assert_ptr_null(as_reader_feed_reserve(r, 16, &avail));
    ck_assert_int_eq(as_reader_feed_commit(r, 0), AS_ESTATE);
    assert_buffer(r, "abc");
    expect(loop, as_reader_read(r, -1), "abc");
    finish(loop, r);
}
END_TEST

START_TEST(feed_rejects_null_data)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    ck_assert_int_eq(as_reader_feed_data(r, NULL, 3), AS_EINVAL);
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

START_TEST(zero_copy_feed)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    size_t avail = 0;
    as_future *f = pending(as_reader_readline(r));
    unsigned char *p = as_reader_feed_reserve(r, 8, &avail);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_ge(avail, 8);
    memcpy(p, "hi\nthere", 8);
    ck_assert_int_eq(as_reader_feed_commit(r, 8), 0);
    expect(loop, f, "hi\n");
    assert_buffer(r, "there");
    finish(loop, r);
}
END_TEST

/* Only a second read that has to wait is refused. */
START_TEST(second_waiting_read_is_busy)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_readexactly(r, 10));
    expect_error(loop, as_reader_readline(r), AS_EBUSY,
                 "readuntil() called while another coroutine is already "
                 "waiting for incoming data");
    expect_error(loop, as_reader_read(r, 5), AS_EBUSY,
                 "read() called while another coroutine is already "
                 "waiting for incoming data");
    expect_error(loop, as_reader_readexactly(r, 3), AS_EBUSY,
                 "readexactly() called while another coroutine is already "
                 "waiting for incoming data");
    feed(r, "abcd");
    /* Data is there: a read that need not wait works. */
    expect(loop, as_reader_read(r, 2), "ab");
    feed(r, "efghijkl");
    expect(loop, f, "cdefghijkl");
    finish(loop, r);
}
END_TEST

/* A cancelled read (as a timeout cancels it) consumed nothing, and the next read needs
 * no loop turn in between: a retry after a timeout loses no bytes and does
 * not find the reader still busy. */
START_TEST(cancel_consumes_nothing_and_frees_the_waiter_at_once)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f;

    feed(r, "ab");
    f = pending(as_reader_readline(r));
    as_future_cancel(f, NULL);
    feed(r, "c\n");
    expect(loop, as_reader_readline(r), "abc\n");
    ck_assert_int_eq(as_future_error(f), AS_ECANCELLED);
    as_future_unref(f);

    feed(r, "xy");
    f = pending(as_reader_readexactly(r, 4));
    as_future_cancel(f, NULL);
    feed(r, "zw");
    expect(loop, as_reader_readexactly(r, 4), "xyzw");
    as_future_unref(f);

    feed(r, "12");
    f = pending(until(r, "END"));
    as_future_cancel(f, NULL);
    feed(r, "3END");
    expect(loop, until(r, "END"), "123END");
    as_future_unref(f);

    /* Cancelled after it was woken but before its retry ran. */
    f = pending(as_reader_readexactly(r, 3));
    feed(r, "pqr");
    as_future_cancel(f, NULL);
    expect(loop, as_reader_readexactly(r, 2), "pq");
    tu_turn(loop);
    assert_buffer(r, "r");
    as_future_unref(f);

    f = pending(as_reader_read(r, -1));
    feed(r, "st");
    tu_turn(loop);
    as_future_cancel(f, NULL);
    as_reader_feed_eof(r);
    expect(loop, as_reader_read(r, -1), "rst");
    as_future_unref(f);
    finish(loop, r);
}
END_TEST

START_TEST(freeing_the_reader_cancels_its_waiting_read)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_readline(r));
    as_reader_unref(r);
    ck_assert_int_eq(as_future_error(f), AS_ECANCELLED);
    ck_assert_str_eq(as_future_error_message(f), "reader freed");
    as_future_unref(f);
    tu_close(loop);
}
END_TEST

/* A read woken by feed_data holds the reader until its retry runs. */
START_TEST(woken_read_keeps_the_reader_alive)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_readline(r));
    feed(r, "x\n");
    as_reader_unref(r);
    expect(loop, f, "x\n");
    tu_close(loop);
}
END_TEST

/* ... and if the loop closes before the retry can run, that reference is
 * dropped: the reader is freed and its read cancelled, nothing leaks. */
START_TEST(woken_read_when_the_loop_closes_first)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_future *f = pending(as_reader_readline(r));
    feed(r, "x\n");
    as_reader_unref(r);
    ck_assert(!as_future_done(f));
    ck_assert_int_eq(as_loop_close(loop), 1); /* only f is still alive */
    ck_assert_int_eq(as_future_error(f), AS_ECANCELLED);
    ck_assert_str_eq(as_future_error_message(f), "reader freed");
    as_future_unref(f); /* the loop's memory goes with it */
}
END_TEST

/* ------------------------------------------------------- flow control */

struct flow {
    int pauses, resumes, destroyed, refuse;
};

static int on_pause(as_reader *r, void *p)
{
    struct flow *fl = p;
    (void)r;
    fl->pauses++;
    return fl->refuse;
}

static int on_resume(as_reader *r, void *p)
{
    struct flow *fl = p;
    (void)r;
    fl->resumes++;
    return 0;
}

static void on_flow_destroy(void *p)
{
    ((struct flow *)p)->destroyed++;
}

/* [V] limit 4: 8 bytes do not pause, 9 do; reading down to 5 does not
 * resume, reaching 4 does. */
START_TEST(flow_control_thresholds)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 4);
    struct flow fl = { 0, 0, 0, 0 };
    ck_assert_int_eq(as_reader_set_flow_control(r, on_pause, on_resume, &fl,
                                                on_flow_destroy), 0);
    feed(r, "12345678");
    ck_assert_int_eq(fl.pauses, 0);
    ck_assert(!as_reader_paused(r));
    feed(r, "9");
    ck_assert_int_eq(fl.pauses, 1);
    ck_assert(as_reader_paused(r));
    feed(r, "0"); /* already paused: no second pause */
    ck_assert_int_eq(fl.pauses, 1);
    expect(loop, as_reader_read(r, 5), "12345"); /* 5 left */
    ck_assert_int_eq(fl.resumes, 0);
    expect(loop, as_reader_readexactly(r, 1), "6"); /* 4 left */
    ck_assert_int_eq(fl.resumes, 1);
    ck_assert(!as_reader_paused(r));
    ck_assert_int_eq(fl.destroyed, 0);
    as_reader_unref(r);
    ck_assert_int_eq(fl.destroyed, 1);
    tu_close(loop);
}
END_TEST

/* A read of more than 2 x limit resumes the transport whenever it waits. */
START_TEST(flow_control_big_read_cannot_deadlock)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 4);
    struct flow fl = { 0, 0, 0, 0 };
    as_future *f;
    char want[41];
    as_reader_set_flow_control(r, on_pause, on_resume, &fl, NULL);
    f = pending(as_reader_readexactly(r, 40));
    for (int i = 0; i < 4; i++) {
        feed(r, "0123456789");
        memcpy(want + 10 * i, "0123456789", 10);
        ck_assert(as_reader_paused(r));
        tu_turn(loop); /* the read wakes, must wait again: resume */
        if (i < 3)
            ck_assert(!as_reader_paused(r));
    }
    want[40] = '\0';
    expect(loop, f, want);
    ck_assert_int_eq(fl.pauses, 4);
    ck_assert_int_eq(fl.resumes, 4);
    finish(loop, r);
}
END_TEST

START_TEST(flow_control_readline_overrun_resumes)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 2);
    struct flow fl = { 0, 0, 0, 0 };
    as_reader_set_flow_control(r, on_pause, on_resume, &fl, NULL);
    feed(r, "abcdef\nx");
    ck_assert_int_eq(fl.pauses, 1);
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_FOUND);
    ck_assert_int_eq(fl.resumes, 1);
    assert_buffer(r, "x");
    finish(loop, r);
}
END_TEST

/* A transport that cannot pause: the hooks are dropped, all is buffered. */
START_TEST(flow_control_transport_that_cannot_pause)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 1);
    struct flow fl = { 0, 0, 0, 1 };
    as_reader_set_flow_control(r, on_pause, on_resume, &fl, on_flow_destroy);
    feed(r, "abc");
    ck_assert_int_eq(fl.pauses, 1);
    ck_assert_int_eq(fl.destroyed, 1);
    ck_assert(!as_reader_paused(r));
    feed(r, "def");
    ck_assert_int_eq(fl.pauses, 1);
    assert_buffer(r, "abcdef");
    finish(loop, r);
}
END_TEST

START_TEST(flow_control_replace_and_remove)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 1);
    struct flow a = { 0, 0, 0, 0 }, b = { 0, 0, 0, 0 };
    as_reader_set_flow_control(r, on_pause, on_resume, &a, on_flow_destroy);
    feed(r, "abc");
    ck_assert(as_reader_paused(r));
    as_reader_set_flow_control(r, on_pause, on_resume, &b, on_flow_destroy);
    ck_assert_int_eq(a.destroyed, 1);
    ck_assert(!as_reader_paused(r)); /* a new transport starts unpaused */
    as_reader_set_flow_control(r, NULL, NULL, NULL, NULL);
    ck_assert_int_eq(b.destroyed, 1);
    feed(r, "def");
    ck_assert_int_eq(b.pauses, 0);
    finish(loop, r);
}
END_TEST

/* ---------------------------------------------------------- extra calls */

/* Recovering from an overrun: 200 KiB without a newline, then "\n", then
 * "ok\n".  The overrun consumes nothing, discard_until() drops up to the
 * next newline, and the stream is back in step. */
static void discard_scenario(size_t chunk)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    size_t junk = 200 * 1024, total = junk + 4, at = 0;
    unsigned char *data = malloc(total);
    as_separator nl = { "\n", 1 };
    as_future *f, *d;
    as_discarded *res;

    memset(data, 'j', junk);
    memcpy(data + junk, "\nok\n", 4);
    f = as_reader_readuntil_ex(r, &nl, 1, 0);
    while (!as_future_done(f) && at < total) {
        size_t n = total - at < chunk ? total - at : chunk;
        ck_assert_int_eq(as_reader_feed_data(r, data + at, n), 0);
        at += n;
        tu_turn(loop);
    }
    expect_error(loop, f, AS_ELIMIT, NULL);
    /* Nothing was consumed by the overrun. */
    ck_assert_uint_eq(as_reader_buffered(r), at);
    d = as_reader_discard_until(r, &nl, 1);
    while (!as_future_done(d) && at < total) {
        size_t n = total - at < chunk ? total - at : chunk;
        ck_assert_int_eq(as_reader_feed_data(r, data + at, n), 0);
        at += n;
        tu_turn(loop);
    }
    settle(loop, d);
    ck_assert_int_eq(as_future_error(d), 0);
    res = as_future_result(d);
    ck_assert_uint_eq(res->count, junk + 1);
    ck_assert_uint_eq(res->separator, 0);
    as_future_unref(d);
    if (at < total)
        ck_assert_int_eq(as_reader_feed_data(r, data + at, total - at), 0);
    expect(loop, as_reader_readline(r), "ok\n");
    free(data);
    finish(loop, r);
}

START_TEST(discard_until_resynchronises_bulk)
{
    discard_scenario(1 << 20);
}
END_TEST

START_TEST(discard_until_resynchronises_chunked)
{
    discard_scenario(1000);
}
END_TEST

/* discard_until drops junk as it arrives: memory stays bounded. */
START_TEST(discard_until_keeps_memory_bounded)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 16);
    as_separator sep = { "END", 3 };
    as_future *d = pending(as_reader_discard_until(r, &sep, 1));
    for (int i = 0; i < 1000; i++) {
        feed(r, "junkjunkjunkjunkjunkjunkjunkjunkE");
        tu_turn(loop);
        ck_assert_uint_le(as_reader_buffered(r), 2);
    }
    feed(r, "ND and then");
    settle(loop, d);
    ck_assert_int_eq(as_future_error(d), 0);
    ck_assert_uint_eq(((as_discarded *)as_future_result(d))->count, 33000 + 2);
    as_future_unref(d);
    assert_buffer(r, " and then");
    as_reader_feed_eof(r);
    d = as_reader_discard_until(r, &sep, 1);
    expect_error(loop, d, AS_EINCOMPLETE,
                 "9 bytes discarded, separator not found before EOF");
    ck_assert(as_reader_at_eof(r));
    finish(loop, r);
}
END_TEST

START_TEST(per_call_limit)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 5);
    as_separator nl = { "\n", 1 };
    feed(r, "a long header line\nshort\n");
    expect_error(loop, as_reader_readline(r), AS_ELIMIT, MSG_FOUND);
    assert_buffer(r, "short\n");
    feed(r, "another long line\n");
    expect(loop, as_reader_readline(r), "short\n");
    expect_error(loop, as_reader_readuntil_ex(r, &nl, 1, 5), AS_ELIMIT, MSG_FOUND);
    assert_buffer(r, "another long line\n"); /* readuntil consumes nothing */
    expect(loop, as_reader_readuntil_ex(r, &nl, 1, 100), "another long line\n");
    feed(r, "0123456789\n");
    expect(loop, as_reader_readline_limit(r, 10), "0123456789\n");
    feed(r, "0123456789\n");
    expect_error(loop, as_reader_readline_limit(r, 9), AS_ELIMIT, MSG_FOUND);
    assert_buffer(r, "");
    finish(loop, r);
}
END_TEST

/* A result that fills the buffer's whole storage is that storage (no
 * copy); one byte short of it is copied, and what is left is intact. */
START_TEST(a_result_filling_the_buffer_takes_its_storage)
{
    enum { N = 65536 };
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    unsigned char *data = malloc(N);
    const unsigned char *where;
    as_future *f;
    as_bytes *b;
    size_t i;

    for (i = 0; i < N; i++)
        data[i] = (unsigned char)(i * 7);
    ck_assert_int_eq(as_reader_feed_data(r, data, N), 0); /* storage: exactly 64 KiB */
    ck_assert_uint_eq(as_reader_peek(r, &where), N);
    f = as_reader_read(r, N);
    settle(loop, f);
    b = as_future_take_result(f);
    ck_assert_ptr_eq(b->data, where);
    ck_assert_uint_eq(b->len, N);
    ck_assert_int_eq(memcmp(b->data, data, N), 0);
    as_future_unref(f);
    free(b);
    ck_assert_uint_eq(as_reader_buffered(r), 0);

    ck_assert_int_eq(as_reader_feed_data(r, data, N), 0);
    ck_assert_uint_eq(as_reader_peek(r, &where), N);
    f = as_reader_read(r, N - 1);
    settle(loop, f);
    b = as_future_take_result(f);
    ck_assert_ptr_ne(b->data, where);
    ck_assert_int_eq(memcmp(b->data, data, N - 1), 0);
    as_future_unref(f);
    free(b);
    expect_mem(loop, as_reader_read(r, 10), data + N - 1, 1);
    free(data);
    finish(loop, r);
}
END_TEST

START_TEST(peek_does_not_consume)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    const unsigned char *p;
    ck_assert_uint_eq(as_reader_peek(r, &p), 0);
    feed(r, "-ERR max clients\n");
    as_reader_set_exception(r, -ECONNRESET, NULL);
    /* The bytes that came before the error are still visible. */
    ck_assert_uint_eq(as_reader_peek(r, &p), 17);
    ck_assert_int_eq(memcmp(p, "-ERR", 4), 0);
    ck_assert_uint_eq(as_reader_buffered(r), 17);
    expect_error(loop, as_reader_readline(r), -ECONNRESET, NULL);
    finish(loop, r);
}
END_TEST

/* ---------------------------------------------------------- iteration */

struct lines {
    char got[8][16];
    int n;
    int stop_after;
    int destroyed;
    as_reader *feed_more;
};

static int on_line(as_reader *r, const as_bytes *line, void *p)
{
    struct lines *l = p;
    (void)r;
    ck_assert_uint_lt(line->len, 16);
    memcpy(l->got[l->n], line->data, line->len);
    l->got[l->n][line->len] = '\0';
    l->n++;
    return l->stop_after && l->n >= l->stop_after;
}

static void on_lines_destroy(void *p)
{
    ((struct lines *)p)->destroyed++;
}

/* [V] a\nb\nc + EOF -> [b'a\n', b'b\n', b'c']. */
START_TEST(iterate_lines)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    struct lines l;
    as_future *f;
    memset(&l, 0, sizeof l);
    feed(r, "a\nb");
    f = as_reader_iter_lines(r, on_line, &l, on_lines_destroy);
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(l.n, 0); /* never inside the call */
    tu_turn(loop);
    ck_assert_int_eq(l.n, 1);
    ck_assert(!as_future_done(f));
    feed(r, "\nc");
    as_reader_feed_eof(r);
    settle(loop, f);
    ck_assert_int_eq(as_future_error(f), 0);
    ck_assert_int_eq(l.n, 3);
    ck_assert_str_eq(l.got[0], "a\n");
    ck_assert_str_eq(l.got[1], "b\n");
    ck_assert_str_eq(l.got[2], "c");
    ck_assert_int_eq(l.destroyed, 1);
    as_future_unref(f);
    finish(loop, r);
}
END_TEST

START_TEST(iterate_lines_stop_cancel_and_error)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, 3);
    struct lines l;
    as_future *f;

    /* Stop from the callback: the rest stays buffered. */
    memset(&l, 0, sizeof l);
    l.stop_after = 1;
    feed(r, "a\nb\n");
    f = as_reader_iter_lines(r, on_line, &l, on_lines_destroy);
    settle(loop, f);
    ck_assert_int_eq(as_future_error(f), 0);
    ck_assert_int_eq(l.n, 1);
    ck_assert_int_eq(l.destroyed, 1);
    assert_buffer(r, "b\n");
    as_future_unref(f);

    /* Cancel while waiting: nothing more consumed, reader free at once. */
    memset(&l, 0, sizeof l);
    f = as_reader_iter_lines(r, on_line, &l, on_lines_destroy);
    tu_turn(loop);
    ck_assert_int_eq(l.n, 1);
    feed(r, "par");
    tu_turn(loop);
    as_future_cancel(f, NULL);
    feed(r, "\n");
    expect(loop, as_reader_readline(r), "par\n");
    ck_assert_int_eq(l.n, 1);
    ck_assert_int_eq(l.destroyed, 1);
    as_future_unref(f);

    /* A readline error ends the iteration with that error. */
    memset(&l, 0, sizeof l);
    feed(r, "toolong\nok\n");
    f = as_reader_iter_lines(r, on_line, &l, on_lines_destroy);
    expect_error(loop, f, AS_ELIMIT, MSG_FOUND);
    ck_assert_int_eq(l.n, 0);
    ck_assert_int_eq(l.destroyed, 1);
    assert_buffer(r, "ok\n");

    /* Cancelled before it ever ran. */
    memset(&l, 0, sizeof l);
    f = as_reader_iter_lines(r, on_line, &l, on_lines_destroy);
    as_future_cancel(f, NULL);
    tu_turn(loop);
    ck_assert_int_eq(l.n, 0);
    ck_assert_int_eq(l.destroyed, 1);
    assert_buffer(r, "ok\n");
    as_future_unref(f);
    finish(loop, r);
}
END_TEST

/* The loop closes before the iteration's first step: userdata comes back. */
START_TEST(iterate_lines_loop_closed_first)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    struct lines l;
    as_future *f;
    memset(&l, 0, sizeof l);
    f = as_reader_iter_lines(r, on_line, &l, on_lines_destroy);
    as_reader_unref(r);
    as_future_cancel(f, NULL);
    as_future_unref(f);
    ck_assert_int_eq(as_loop_close(loop), 0);
    ck_assert_int_eq(l.destroyed, 1);
    ck_assert_int_eq(l.n, 0);
}
END_TEST

/* -------------------------------------------------- chunking property */

/*
 * For random data, separators and limits, a script of reads gives the same
 * sequence of results and errors whether the data arrives all at once,
 * byte by byte, or in random chunks.  The script uses the calls whose
 * outcome CPython makes independent of chunking: readuntil (one or several
 * separators, with a per-call limit; on overrun, discard_until resyncs),
 * readexactly and a final read(-1).  (read(n) returns "what is there" and
 * readline's overrun handling depends on chunking by design, so they are
 * not part of the property.)
 */
static unsigned long long rng_state;
static unsigned rnd(unsigned n)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (unsigned)((rng_state >> 33) % n);
}

enum { P_UNTIL, P_UNTIL_ANY, P_EXACTLY, P_DISCARD, P_ALL };

struct pop {
    int kind;
    as_separator seps[3];
    char sepbuf[3][4];
    size_t nseps;
    size_t n;     /* exactly: count; until: limit */
};

struct trace {
    char text[1 << 16];
    size_t len;
};

static void trace_add(struct trace *t, const char *fmt, const void *data,
                      size_t n, long long v)
{
    int w = snprintf(t->text + t->len, sizeof t->text - t->len, fmt, v);
    ck_assert(w >= 0 && (size_t)w < sizeof t->text - t->len);
    t->len += (size_t)w;
    if (data) {
        ck_assert_uint_lt(t->len + n + 2, sizeof t->text);
        memcpy(t->text + t->len, data, n);
        t->len += n;
        t->text[t->len++] = '|';
    }
}

static void run_script(const unsigned char *data, size_t len, size_t limit,
                       struct pop *ops, int nops, int mode, unsigned seed,
                       struct trace *t)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, (ssize_t)limit);
    size_t at = 0;
    unsigned long long saved = rng_state;

    rng_state = seed;
    t->len = 0;
    for (int i = 0; i < nops; i++) {
        struct pop *op = &ops[i];
        as_future *f;
        switch (op->kind) {
        case P_UNTIL: f = as_reader_readuntil_ex(r, op->seps, 1, op->n); break;
        case P_UNTIL_ANY: f = as_reader_readuntil_ex(r, op->seps, op->nseps, op->n); break;
        case P_EXACTLY: f = as_reader_readexactly(r, (ssize_t)op->n); break;
        case P_DISCARD: f = as_reader_discard_until(r, op->seps, op->nseps); break;
        default: f = as_reader_read(r, -1); break;
        }
        ck_assert_ptr_nonnull(f);
        while (!as_future_done(f)) {
            if (at < len) {
                size_t n = mode == 0 ? len - at : mode == 1 ? 1 : 1 + rnd(9);
                if (n > len - at)
                    n = len - at;
                ck_assert_int_eq(as_reader_feed_data(r, data + at, n), 0);
                at += n;
            } else if (!as_reader_at_eof(r) || 1) {
                as_reader_feed_eof(r);
            }
            tu_turn(loop);
        }
        int err = as_future_error(f);
        if (err == 0 && op->kind == P_DISCARD) {
            as_discarded *d = as_future_result(f);
            trace_add(t, "D%lld|", NULL, 0, (long long)d->count);
        } else if (err == 0) {
            as_bytes *b = as_future_result(f);
            trace_add(t, "R%lld:", b->data, b->len, (long long)b->len);
        } else if (err == AS_EINCOMPLETE) {
            as_incomplete_read *ir = as_future_error_detail(f);
            trace_add(t, "I%lld:", ir->partial->data, ir->partial->len,
                      ir->expected);
        } else {
            trace_add(t, "E%lld|", NULL, 0, err);
            if (err == AS_ELIMIT) {
                /* Resync with the robust call, as the tutorial teaches. */
                as_future_unref(f);
                f = as_reader_discard_until(r, op->seps, op->nseps ? op->nseps : 1);
                while (!as_future_done(f)) {
                    if (at < len) {
                        size_t n = mode == 0 ? len - at : mode == 1 ? 1 : 1 + rnd(9);
                        if (n > len - at)
                            n = len - at;
                        as_reader_feed_data(r, data + at, n);
                        at += n;
                    } else {
                        as_reader_feed_eof(r);
                    }
                    tu_turn(loop);
                }
                err = as_future_error(f);
                if (err == 0)
                    trace_add(t, "d%lld|", NULL, 0,
                              (long long)((as_discarded *)as_future_result(f))->count);
                else
                    trace_add(t, "e%lld|", NULL, 0, err);
            }
        }
        as_future_unref(f);
    }
    as_reader_unref(r);
    tu_close(loop);
    rng_state = saved;
}

START_TEST(chunking_does_not_change_results)
{
    static struct trace t0, t1, t2;
    rng_state = 12345 + (unsigned long long)_i;
    for (int round = 0; round < 40; round++) {
        unsigned char data[400];
        size_t len = 1 + rnd(sizeof data);
        const char alphabet[] = "ab\nXY";
        struct pop ops[24];
        int nops = 1 + rnd(20);
        size_t limit = 1 + rnd(12);

        for (size_t i = 0; i < len; i++)
            data[i] = (unsigned char)alphabet[rnd(sizeof alphabet - 1)];
        for (int i = 0; i < nops; i++) {
            struct pop *op = &ops[i];
            memset(op, 0, sizeof *op);
            op->kind = i == nops - 1 ? P_ALL : (int)rnd(4);
            op->nseps = op->kind == P_UNTIL ? 1 : 1 + rnd(3);
            for (size_t s = 0; s < op->nseps; s++) {
                size_t sl = 1 + rnd(3);
                for (size_t k = 0; k < sl; k++)
                    op->sepbuf[s][k] = alphabet[rnd(sizeof alphabet - 1)];
                op->seps[s].data = op->sepbuf[s];
                op->seps[s].len = sl;
            }
            op->n = op->kind == P_EXACTLY ? rnd(30) : rnd(3) ? rnd(16) : 0;
        }
        unsigned seed = rnd(1u << 30);
        run_script(data, len, limit, ops, nops, 0, seed, &t0);
        run_script(data, len, limit, ops, nops, 1, seed, &t1);
        run_script(data, len, limit, ops, nops, 2, seed, &t2);
        ck_assert_uint_eq(t0.len, t1.len);
        ck_assert_msg(memcmp(t0.text, t1.text, t0.len) == 0,
                      "byte by byte differs (round %d):\n%.*s\n--\n%.*s", round,
                      (int)t0.len, t0.text, (int)t1.len, t1.text);
        ck_assert_uint_eq(t0.len, t2.len);
        ck_assert_msg(memcmp(t0.text, t2.text, t0.len) == 0,
                      "random chunks differ (round %d)", round);
    }
}
END_TEST

/* A lost or finished connection keeps only its unread bytes: no room to receive more (a reference cycle through an error's
 * traceback in a binding then costs what asyncio's costs). */
START_TEST(eof_and_error_give_back_storage_but_keep_unread_bytes)
{
    as_loop *loop = tu_loop();
    as_reader *r = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    as_reader *r2 = new_reader(loop, AS_READER_DEFAULT_LIMIT);
    static char big[100000];
    size_t avail;

    memset(big, 'x', sizeof big);
    ck_assert_int_eq(as_reader_feed_data(r, big, sizeof big), 0);
    expect_mem(loop, as_reader_readexactly(r, sizeof big - 10), big, sizeof big - 10);
    ck_assert_uint_ge(as_reader_memory(r), 100000);
    as_reader_feed_eof(r);
    ck_assert_uint_le(as_reader_memory(r), 10);
    assert_buffer(r, "xxxxxxxxxx");
    expect(loop, as_reader_read(r, -1), "xxxxxxxxxx");
    ck_assert_uint_eq(as_reader_memory(r), 0);

    /* An error: the unread bytes stay (peek shows them), nothing else. */
    ck_assert_ptr_nonnull(as_reader_feed_reserve(r2, 65536, &avail));
    ck_assert_int_eq(as_reader_feed_commit(r2, 3), 0);
    ck_assert_uint_ge(as_reader_memory(r2), 65536);
    ck_assert_int_eq(as_reader_set_exception(r2, -ECONNRESET, NULL), 0);
    ck_assert_uint_le(as_reader_memory(r2), 3);
    ck_assert_uint_eq(as_reader_buffered(r2), 3);
    as_reader_unref(r2);
    finish(loop, r);
}
END_TEST

/* Every call of reader.h given a NULL reader: the answer asyncstreams.h's
 * NULL rule promises, and neither destroy hook runs. */
START_TEST(every_call_accepts_a_null_reader)
{
    as_reader *out = tu_poison();
    as_separator sep = { "\n", 1 };
    struct flow fl = { 0, 0, 0, 0 };
    struct lines l;
    const char *msg = "x";
    const unsigned char *data = (const unsigned char *)"x";
    size_t avail = 7;
    memset(&l, 0, sizeof l);
    tu_null_call calls[] = {
        TU_NULL_INT(as_reader_new(NULL, 1, &out), AS_EINVAL),
        TU_NULL_PTR(as_reader_ref(NULL)),
        TU_NULL_VOID(as_reader_unref(NULL)),
        TU_NULL_PTR(as_reader_loop(NULL)),
        TU_NULL_INT(as_reader_limit(NULL), 0),
        TU_NULL_INT(as_reader_feed_data(NULL, "a", 1), AS_EINVAL),
        TU_NULL_PTR(as_reader_feed_reserve(NULL, 1, &avail)),
        TU_NULL_INT(as_reader_feed_commit(NULL, 1), AS_EINVAL),
        TU_NULL_VOID(as_reader_feed_eof(NULL)),
        TU_NULL_INT(as_reader_at_eof(NULL), 0),
        TU_NULL_INT(as_reader_set_exception(NULL, -EIO, "x"), AS_EINVAL),
        TU_NULL_INT(as_reader_exception(NULL, &msg), AS_EINVAL),
        TU_NULL_PTR(as_reader_read(NULL, 1)),
        TU_NULL_PTR(as_reader_readexactly(NULL, 1)),
        TU_NULL_PTR(as_reader_readuntil(NULL, "\n", 1)),
        TU_NULL_PTR(as_reader_readuntil_any(NULL, &sep, 1)),
        TU_NULL_PTR(as_reader_readline(NULL)),
        TU_NULL_PTR(as_reader_readline_limit(NULL, 1)),
        TU_NULL_PTR(as_reader_readuntil_ex(NULL, &sep, 1, 1)),
        TU_NULL_PTR(as_reader_discard_until(NULL, &sep, 1)),
        TU_NULL_INT(as_reader_peek(NULL, &data), 0),
        TU_NULL_INT(as_reader_buffered(NULL), 0),
        TU_NULL_INT(as_reader_memory(NULL), 0),
        TU_NULL_PTR(as_reader_iter_lines(NULL, on_line, &l, on_lines_destroy)),
        TU_NULL_INT(as_reader_set_flow_control(NULL, on_pause, on_resume, &fl,
                                               on_flow_destroy), AS_EINVAL),
        TU_NULL_INT(as_reader_paused(NULL), 0),
    };

    tu_check_null(calls);
    ck_assert_ptr_null(out);
    ck_assert_ptr_null(msg);
    ck_assert_ptr_null(data);
    ck_assert_int_eq(l.destroyed, 0);
    ck_assert_int_eq(fl.destroyed, 0);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("reader");
    TCase *tc = tcase_create("cpython");
    TCase *more = tcase_create("beyond");
    TCase *prop = tcase_create("property");

    tcase_set_timeout(tc, 10);
    tcase_add_test(tc, every_call_accepts_a_null_reader);
    tcase_add_test(tc, test_feed_empty_data);
    tcase_add_test(tc, test_feed_nonempty_data);
    tcase_add_test(tc, test_read);
    tcase_add_test(tc, test_read_line_breaks);
    tcase_add_test(tc, test_read_eof);
    tcase_add_test(tc, test_read_until_eof);
    tcase_add_test(tc, test_read_exception);
    tcase_add_test(tc, test_read_zero);
    tcase_add_test(tc, test_invalid_limit);
    tcase_add_test(tc, test_read_limit);
    tcase_add_test(tc, test_readline);
    tcase_add_test(tc, test_readline_limit_with_existing_data);
    tcase_add_test(tc, test_at_eof);
    tcase_add_test(tc, test_readline_limit);
    tcase_add_test(tc, test_readline_nolimit_nowait);
    tcase_add_test(tc, test_readline_eof);
    tcase_add_test(tc, test_readline_empty_eof);
    tcase_add_test(tc, test_readline_read_byte_count);
    tcase_add_test(tc, test_readline_exception);
    tcase_add_test(tc, test_readuntil_separator);
    tcase_add_test(tc, test_readuntil_multi_chunks);
    tcase_add_test(tc, test_readuntil_multi_chunks_1);
    tcase_add_test(tc, test_readuntil_eof);
    tcase_add_test(tc, test_readuntil_limit_found_sep);
    tcase_add_test(tc, test_readuntil_multi_separator);
    tcase_add_test(tc, test_readuntil_multi_separator_limit);
    tcase_add_test(tc, test_readuntil_multi_separator_negative_offset);
    tcase_add_test(tc, test_readuntil_bytearray);
    tcase_add_test(tc, test_readexactly_zero_or_less);
    tcase_add_test(tc, test_readexactly);
    tcase_add_test(tc, test_readexactly_limit);
    tcase_add_test(tc, test_readexactly_eof);
    tcase_add_test(tc, test_readexactly_exception);
    tcase_add_test(tc, test_exception);
    tcase_add_test(tc, test_exception_waiter);
    tcase_add_test(tc, test_exception_cancel);
    suite_add_tcase(s, tc);

    tcase_set_timeout(more, 10);
    tcase_add_test(more, read_after_wait_returns_everything_fed_that_turn);
    tcase_add_test(more, read_all_across_turns_and_limit);
    tcase_add_test(more, readline_overrun_keeps_what_follows);
    tcase_add_test(more, readline_overrun_tail_is_returned_as_a_line);
    tcase_add_test(more, readline_partial_line_with_cr_at_eof);
    tcase_add_test(more, readuntil_separator_split_across_wakeups);
    tcase_add_test(more, readuntil_buffered_separator_wins_over_eof);
    tcase_add_test(more, readuntil_limit_one_byte_separator);
    tcase_add_test(more, feed_after_eof_is_refused_and_loses_nothing);
    tcase_add_test(more, feed_rejects_null_data);
    tcase_add_test(more, zero_copy_feed);
    tcase_add_test(more, second_waiting_read_is_busy);
    tcase_add_test(more, cancel_consumes_nothing_and_frees_the_waiter_at_once);
    tcase_add_test(more, freeing_the_reader_cancels_its_waiting_read);
    tcase_add_test(more, woken_read_keeps_the_reader_alive);
    tcase_add_test(more, woken_read_when_the_loop_closes_first);
    tcase_add_test(more, flow_control_thresholds);
    tcase_add_test(more, flow_control_big_read_cannot_deadlock);
    tcase_add_test(more, flow_control_readline_overrun_resumes);
    tcase_add_test(more, flow_control_transport_that_cannot_pause);
    tcase_add_test(more, flow_control_replace_and_remove);
    tcase_add_test(more, discard_until_resynchronises_bulk);
    tcase_add_test(more, discard_until_resynchronises_chunked);
    tcase_add_test(more, discard_until_keeps_memory_bounded);
    tcase_add_test(more, per_call_limit);
    tcase_add_test(more, peek_does_not_consume);
    tcase_add_test(more, a_result_filling_the_buffer_takes_its_storage);
    tcase_add_test(more, iterate_lines);
    tcase_add_test(more, iterate_lines_stop_cancel_and_error);
    tcase_add_test(more, iterate_lines_loop_closed_first);
    tcase_add_test(more, eof_and_error_give_back_storage_but_keep_unread_bytes);
    suite_add_tcase(s, more);

    tcase_set_timeout(prop, 60);
    tcase_add_loop_test(prop, chunking_does_not_change_results, 0, 5);
    suite_add_tcase(s, prop);
    return tu_run(s);
}
