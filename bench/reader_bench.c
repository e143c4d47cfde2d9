/*
 * reader_bench.c - StreamReader throughput: feed N MiB (default 1024) as
 * 100-byte lines in random-sized chunks, and read it back with readline()
 * or with readexactly() of large blocks.  bench/reader_bench.py does the
 * same work with CPython's asyncio.StreamReader; bench/reader_bench.sh runs
 * both and prints them side by side.
 *
 *   reader_bench readline|readexactly [MiB] [block] [seed]
 *
 * The feeder is a loop callback that feeds one chunk per loop turn, as a
 * transport feeds one recv() per readable event; chunk sizes are uniform in
 * [1, 128 KiB] from a fixed-seed generator shared with the Python version.
 * The consumer takes every result the buffer can answer without waiting and
 * registers a done callback only when a read has to wait.  Every line and
 * block is checked (length, contents of the last byte), so a fast wrong
 * answer cannot pass.
 */
#include <asyncstreams.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#define LINE 100
#define MAXCHUNK (128 * 1024)

struct bench {
    as_loop *loop;
    as_reader *reader;
    const unsigned char *pattern; /* LINE-periodic data, MAXCHUNK + LINE long */
    unsigned long long total, fed, got, items;
    unsigned long long rng;
    int exactly;                  /* readexactly mode */
    size_t block;
    int failed;
};

/* xorshift64*: the same sequence as reader_bench.py. */
static unsigned long long next_rand(unsigned long long *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ULL;
}

static void feed_tick(void *userdata)
{
    struct bench *b = userdata;
    if (b->fed == b->total) {
        as_reader_feed_eof(b->reader);
        return;
    }
    size_t n = 1 + (size_t)(next_rand(&b->rng) % MAXCHUNK);
    if (n > b->total - b->fed)
        n = (size_t)(b->total - b->fed);
    /* The pattern repeats every LINE bytes: start at the stream offset. */
    const unsigned char *p = b->pattern + b->fed % LINE;
    if (as_reader_feed_data(b->reader, p, n) != 0 ||
        as_loop_call_soon(b->loop, feed_tick, b, NULL, NULL) != 0) {
        b->failed = 1;
        as_loop_stop(b->loop);
        return;
    }
    b->fed += n;
}

/* Returns 1 to go on, 0 at the end (or on error). */
static int take(struct bench *b, as_future *f)
{
    int rc = as_future_error(f);
    if (rc == AS_EINCOMPLETE && b->exactly) {
        /* The last short block. */
        const as_incomplete_read *ir = as_future_error_detail(f);
        b->got += ir->partial->len;
        return 0;
    }
    if (rc != 0) {
        fprintf(stderr, "reader_bench: read failed: %s\n", as_future_error_message(f));
        b->failed = 1;
        return 0;
    }
    const as_bytes *r = as_future_result(f);
    if (r->len == 0)
        return 0; /* readline at EOF */
    if (!b->exactly && (r->len != LINE || r->data[LINE - 1] != '\n'))
        b->failed = 1;
    if (b->exactly && r->len != b->block)
        b->failed = 1;
    b->got += r->len;
    b->items++;
    return !b->failed;
}

static void consume(struct bench *b);

/* A read that had to wait has finished: take it, then go on reading. */
static void on_done(as_future *f, void *userdata)
{
    struct bench *b = userdata;
    if (take(b, f))
        consume(b);
    else
        as_loop_stop(b->loop);
}

static void consume(struct bench *b)
{
    for (;;) {
        as_future *f = b->exactly ? as_reader_readexactly(b->reader, (ssize_t)b->block)
                                  : as_reader_readline(b->reader);
        if (!f) {
            b->failed = 1;
            as_loop_stop(b->loop);
            return;
        }
        if (!as_future_done(f)) {
            if (as_future_add_done_callback(f, on_done, b, NULL) != 0)
                b->failed = 1;
            as_future_unref(f);
            return;
        }
        int more = take(b, f);
        as_future_unref(f);
        if (!more) {
            as_loop_stop(b->loop);
            return;
        }
    }
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

int main(int argc, char **argv)
{
    struct bench b;
    unsigned char *pattern;
    double t0, c0, t1, c1;
    int rc;

    memset(&b, 0, sizeof b);
    if (argc < 2 || (strcmp(argv[1], "readline") && strcmp(argv[1], "readexactly"))) {
        fprintf(stderr, "usage: %s readline|readexactly [MiB] [block] [seed]\n", argv[0]);
        return 2;
    }
    b.exactly = strcmp(argv[1], "readexactly") == 0;
    b.total = (argc > 2 ? strtoull(argv[2], NULL, 10) : 1024ULL) << 20;
    b.total -= b.total % LINE; /* whole lines */
    b.block = argc > 3 ? (size_t)strtoull(argv[3], NULL, 10) : 65536;
    b.rng = argc > 4 ? strtoull(argv[4], NULL, 10) : 88172645463325252ULL;
    if (b.block == 0 || b.rng == 0) {
        fprintf(stderr, "reader_bench: block and seed must be > 0\n");
        return 2;
    }

    pattern = malloc(MAXCHUNK + LINE);
    if (!pattern)
        return 1;
    for (size_t i = 0; i < MAXCHUNK + LINE; i++)
        pattern[i] = (i % LINE == LINE - 1) ? '\n' : (unsigned char)('a' + i % 26);
    b.pattern = pattern;

    if ((rc = as_loop_new(&b.loop)) != 0 ||
        (rc = as_reader_new(b.loop, AS_READER_DEFAULT_LIMIT, &b.reader)) != 0 ||
        (rc = as_loop_call_soon(b.loop, feed_tick, &b, NULL, NULL)) != 0) {
        fprintf(stderr, "reader_bench: setup: %s\n", as_strerror(rc));
        return 1;
    }
    t0 = now();
    c0 = cpu();
    consume(&b);
    rc = as_loop_run_forever(b.loop);
    t1 = now();
    c1 = cpu();

    if (rc != 0 || b.failed || b.got != b.total) {
        fprintf(stderr, "reader_bench: FAILED (rc %d, got %llu of %llu bytes)\n",
                rc, b.got, b.total);
        return 1;
    }
    printf("C %s: %llu bytes, %llu %s, %.3f s wall, %.3f s CPU, %.1f MiB/s\n",
           argv[1], b.got, b.items, b.exactly ? "blocks" : "lines", t1 - t0,
           c1 - c0, (double)b.got / (t1 - t0) / (1 << 20));
    as_reader_unref(b.reader);
    /* Drain what is left (the EOF tick) so the loop closes empty. */
    while (as_loop_pending(b.loop))
        as_loop_run_once(b.loop);
    rc = as_loop_close(b.loop);
    free(pattern);
    return rc == 0 ? 0 : 1;
}
