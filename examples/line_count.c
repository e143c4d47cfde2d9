/*
 * line_count.c - count the lines and bytes of stdin through the library,
 * as `wc -l -c` does (chapter 16): the StreamReader of chapter 7, fed by a
 * pipe transport instead of a socket.
 *
 *     reader, transport = await loop.connect_read_pipe(..., sys.stdin)
 *     while line := await reader.readline():
 *         count(line)
 *
 * stdin may be a pipe (`ls | line_count`), a FIFO or a terminal (type
 * lines, end with ^D).  A regular file (`line_count < file`) is refused
 * with AS_ENOTPIPE: select() would call it always readable.  Prints
 * "N lines, M bytes"; exit 0 if everything was counted and the loop ended
 * with nothing left alive, 1 on an error, 2 when stdin cannot be read
 * this way.
 */
#include <asyncstreams.h>

#include <stdio.h>
#include <unistd.h>

struct count {
    as_loop *loop;
    as_reader *reader;
    unsigned long long lines, bytes;
    int status;
};

static void next_line(struct count *c);

/* listing: on_line */
/* One line, or "" at EOF.  A last line without "\n" counts its bytes but
 * not as a line, as wc -l does. */
static void on_line(as_future *f, void *userdata)
{
    struct count *c = userdata;
    as_bytes *line;

    if (as_future_error(f) != 0) { /* a line over the limit, a read error */
        fprintf(stderr, "line_count: %s\n", as_future_error_message(f));
        c->status = 1;
        as_loop_stop(c->loop);
        return;
    }
    line = as_future_result(f);
    if (line->len == 0) { /* EOF: the transport has closed stdin already */
        as_loop_stop(c->loop);
        return;
    }
    c->bytes += line->len;
    if (line->data[line->len - 1] == '\n')
        c->lines++;
    next_line(c);
}

static void next_line(struct count *c)
{
    as_future *f = as_reader_readline(c->reader);
    if (!f || as_future_add_done_callback(f, on_line, c, NULL) < 0) {
        c->status = 1;
        as_loop_stop(c->loop);
    }
    as_future_unref(f);
}
/* end listing */

int main(void)
{
    struct count c = {NULL, NULL, 0, 0, 0};
    as_transport *stdin_pipe;
    int err;

    if ((err = as_loop_new(&c.loop)) < 0) {
        fprintf(stderr, "line_count: as_loop_new: %s\n", as_strerror(err));
        return 1;
    }
    /* listing: open */
    err = as_open_read_pipe(c.loop, STDIN_FILENO, NULL, &c.reader, &stdin_pipe);
    if (err < 0) {
        /* AS_ENOTPIPE for a regular file or a socket; stdin is untouched. */
        fprintf(stderr, "line_count: stdin: %s\n", as_strerror(err));
        (void)as_loop_close(c.loop);
        return 2;
    }
    next_line(&c);
    err = as_loop_run_forever(c.loop);
    /* end listing */
    if (err < 0) {
        fprintf(stderr, "line_count: run: %s\n", as_strerror(err));
        c.status = 1;
    }
    printf("%llu lines, %llu bytes\n", c.lines, c.bytes);

    as_transport_close(stdin_pipe); /* a no-op after EOF */
    as_transport_unref(stdin_pipe);
    as_reader_unref(c.reader);
    if (as_loop_pending(c.loop) != 0 || as_loop_close(c.loop) != 0) {
        fprintf(stderr, "line_count: something was left alive\n");
        return 1;
    }
    return c.status;
}
