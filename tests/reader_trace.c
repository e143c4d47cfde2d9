/*
 * reader_trace.c - run a StreamReader script from stdin and print what
 * happens, in the same format as the CPython driver in
 * tests/reader_diff.py, which compares the two on random scripts.
 *
 * Script, one command a line (bytes in hex, "-" for empty):
 *   limit N | feed HEX | eof | exc TEXT | turn | cancel ID
 *   read N | readexactly N | readline | readuntil HEX[,HEX...] | readuntil ()
 * Each read gets the next ID from 0; starting a read and cancelling are
 * followed by one loop turn (the CPython driver's `await sleep(0)`).  After
 * every command, reads that finished are printed in ID order:
 *   ID OK HEX
 *   ID ERR Type message [partial=HEX expected=N|None] [consumed=N]
 *   ID CANCELLED
 * and at the end, after cancelling what still waits:
 *   buffer HEX at_eof=0|1
 */
#include "asyncstreams.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXR 256

static as_loop *loop;
static as_reader *reader;
static as_future *reads[MAXR];
static int kinds[MAXR]; /* 'r' read, 'x' exactly, 'l' line, 'u' until */
static int reported[MAXR];
static int nreads;

static void noop(void *p)
{
    (void)p;
}

static void turn(void)
{
    if (as_loop_call_soon(loop, noop, NULL, NULL, NULL) != 0 ||
        as_loop_run_once(loop) != 0) {
        fprintf(stderr, "reader_trace: loop failed\n");
        exit(2);
    }
}

static void hex(const unsigned char *p, size_t n)
{
    if (n == 0)
        fputs("-", stdout);
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
}

static size_t unhex(const char *s, unsigned char *out, size_t cap)
{
    size_t n = 0;
    if (strcmp(s, "-") == 0)
        return 0;
    while (s[0] && s[1] && n < cap) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            break;
        out[n++] = (unsigned char)v;
        s += 2;
    }
    return n;
}

static const char *py_type(int code, int kind)
{
    switch (code) {
    case AS_EINCOMPLETE: return "IncompleteReadError";
    case AS_ELIMIT: return kind == 'l' ? "ValueError" : "LimitOverrunError";
    case AS_EINVAL: return "ValueError";
    case AS_EBUSY: return "RuntimeError";
    case AS_ECONNLOST: return "ConnectionResetError";
    default: return "Unknown";
    }
}

static void report(void)
{
    for (int i = 0; i < nreads; i++) {
        as_future *f = reads[i];
        if (reported[i] || !as_future_done(f))
            continue;
        reported[i] = 1;
        int rc = as_future_error(f);
        if (rc == AS_ECANCELLED) {
            printf("%d CANCELLED\n", i);
            continue;
        }
        if (rc == 0) {
            const as_bytes *b = as_future_result(f);
            printf("%d OK ", i);
            hex(b->data, b->len);
            putchar('\n');
            continue;
        }
        printf("%d ERR %s %s", i, py_type(rc, kinds[i]), as_future_error_message(f));
        if (rc == AS_EINCOMPLETE) {
            const as_incomplete_read *ir = as_future_error_detail(f);
            fputs(" partial=", stdout);
            hex(ir->partial->data, ir->partial->len);
            if (ir->expected < 0)
                fputs(" expected=None", stdout);
            else
                printf(" expected=%lld", ir->expected);
        } else if (rc == AS_ELIMIT && kinds[i] != 'l') {
            const as_limit_overrun *lo = as_future_error_detail(f);
            printf(" consumed=%zu", lo->consumed);
        }
        putchar('\n');
    }
}

int main(void)
{
    char line[8192];
    static unsigned char buf[4096];

    if (as_loop_new(&loop) != 0)
        return 2;
    while (fgets(line, sizeof line, stdin)) {
        char cmd[32], arg[8000];
        as_future *f = NULL;
        int kind = 0;
        line[strcspn(line, "\n")] = '\0';
        arg[0] = '\0';
        if (sscanf(line, "%31s %7999s", cmd, arg) < 1)
            continue;
        if (strcmp(cmd, "limit") == 0) {
            if (as_reader_new(loop, atol(arg), &reader) != 0)
                return 2;
        } else if (strcmp(cmd, "feed") == 0) {
            size_t n = unhex(arg, buf, sizeof buf);
            if (as_reader_feed_data(reader, buf, n) != 0)
                return 2;
        } else if (strcmp(cmd, "eof") == 0) {
            as_reader_feed_eof(reader);
        } else if (strcmp(cmd, "exc") == 0) {
            as_reader_set_exception(reader, AS_ECONNLOST, arg);
        } else if (strcmp(cmd, "turn") == 0) {
            turn();
        } else if (strcmp(cmd, "cancel") == 0) {
            as_future_cancel(reads[atoi(arg)], NULL);
            turn();
        } else if (strcmp(cmd, "read") == 0) {
            f = as_reader_read(reader, atol(arg));
            kind = 'r';
        } else if (strcmp(cmd, "readexactly") == 0) {
            f = as_reader_readexactly(reader, atol(arg));
            kind = 'x';
        } else if (strcmp(cmd, "readline") == 0) {
            f = as_reader_readline(reader);
            kind = 'l';
        } else if (strcmp(cmd, "readuntil") == 0) {
            as_separator seps[8];
            size_t nseps = 0, used = 0;
            if (strcmp(arg, "()") != 0) {
                char *save = NULL;
                for (char *t = strtok_r(arg, ",", &save); t && nseps < 8;
                     t = strtok_r(NULL, ",", &save)) {
                    size_t n = unhex(t, buf + used, sizeof buf - used);
                    seps[nseps].data = buf + used;
                    seps[nseps].len = n;
                    used += n;
                    nseps++;
                }
            }
            f = as_reader_readuntil_any(reader, seps, nseps);
            kind = 'u';
        } else {
            fprintf(stderr, "reader_trace: bad command: %s\n", line);
            return 2;
        }
        if (f) {
            if (nreads == MAXR)
                return 2;
            kinds[nreads] = kind;
            reads[nreads++] = f;
            turn();
        }
        report();
    }
    for (int i = 0; i < nreads; i++)
        if (!as_future_done(reads[i]))
            as_future_cancel(reads[i], NULL);
    turn();
    report();
    const unsigned char *p;
    size_t n = as_reader_peek(reader, &p);
    fputs("buffer ", stdout);
    hex(p, n);
    printf(" at_eof=%d\n", as_reader_at_eof(reader));
    for (int i = 0; i < nreads; i++)
        as_future_unref(reads[i]);
    as_reader_unref(reader);
    while (as_loop_pending(loop))
        as_loop_run_once(loop);
    return as_loop_close(loop) == 0 ? 0 : 1;
}
