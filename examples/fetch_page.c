/*
 * fetch_page.c - an HTTP/1.0 GET that reads the response line by line.
 *
 *     async def fetch_page(host, port, path):
 *         reader, writer = await asyncio.open_connection(host, port)
 *         writer.write(f'GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n'.encode())
 *         while True:
 *             line = await reader.readline()
 *             if not line:
 *                 break
 *             ...print the status line and headers, count the body...
 *         writer.close()
 *         await writer.wait_closed()
 *
 * HTTP/1.0 without keep-alive: the server closes the connection after the
 * body, so readline() returning b"" (EOF) is the end of the page.
 * Usage: fetch_page [HOST PORT [PATH]]; with no arguments it starts its own
 * tiny HTTP peer.  Exits 0 only for a "200" status.
 */
#include <asyncstreams.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "peer.h"

struct page {
    as_loop *loop;
    as_connection *conn;
    const char *host, *port, *path;
    int in_body;         /* past the blank line after the headers */
    int status_ok;       /* the status line said 200 */
    size_t lines, body_bytes;
    int status;
};

static void give_up(struct page *p, const char *what, int code, const char *msg)
{
    fprintf(stderr, "fetch_page: %s: %s\n", what, msg ? msg : as_strerror(code));
    p->status = 1;
    as_loop_stop(p->loop);
}

static void on_closed(as_future *f, void *userdata)
{
    struct page *p = userdata;
    (void)f;
    as_loop_stop(p->loop);
}

/* listing: read_lines */
static void read_next_line(struct page *p);

static void on_line(as_future *f, void *userdata)
{
    struct page *p = userdata;
    as_bytes *line;
    int rc = as_future_error(f);

    if (rc != 0) {
        give_up(p, "readline", rc, as_future_error_message(f));
        return;
    }
    line = as_future_result(f);
    if (line->len == 0) { /* b"": EOF, the page is complete */
        as_future *closed;
        printf("body: %zu bytes\n", p->body_bytes);
        as_writer_close(p->conn->writer);
        closed = as_writer_wait_closed(p->conn->writer);
        if (!closed || as_future_add_done_callback(closed, on_closed, p, NULL) < 0)
            give_up(p, "close", -ENOMEM, NULL);
        as_future_unref(closed);
        return;
    }
    if (p->in_body) {
        p->body_bytes += line->len;
    } else {
        size_t n = line->len;
        while (n > 0 && (line->data[n - 1] == '\n' || line->data[n - 1] == '\r'))
            n--;
        if (n == 0) {
            p->in_body = 1; /* the blank line ends the headers */
        } else {
            if (p->lines == 0 && n > 12 && memcmp(line->data, "HTTP/1.", 7) == 0 &&
                memcmp(line->data + 9, "200", 3) == 0)
                p->status_ok = 1;
            printf("HTTP header> %.*s\n", (int)n, (const char *)line->data);
        }
    }
    p->lines++;
    read_next_line(p);
}

static void read_next_line(struct page *p)
{
    as_future *f = as_reader_readline(p->conn->reader);
    if (!f || as_future_add_done_callback(f, on_line, p, NULL) < 0)
        give_up(p, "readline", -ENOMEM, NULL);
    as_future_unref(f);
}
/* end listing */

/* listing: request */
static void on_connected(as_future *f, void *userdata)
{
    struct page *p = userdata;
    char query[512];
    int rc, n;

    if ((rc = as_future_error(f)) != 0) {
        give_up(p, "connect", rc, as_future_error_message(f));
        return;
    }
    p->conn = as_future_take_result(f);
    n = snprintf(query, sizeof query, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n",
                 p->path, p->host);
    if (n < 0 || (size_t)n >= sizeof query) {
        give_up(p, "request", AS_EINVAL, "path too long");
        return;
    }
    if ((rc = as_writer_write(p->conn->writer, query, (size_t)n)) != 0) {
        give_up(p, "write", rc, NULL);
        return;
    }
    read_next_line(p);
}
/* end listing */

/* The peer: read the request head, answer with a small page, close. */
static void serve_page(int fd, int index)
{
    static const char reply[] =
        "HTTP/1.0 200 OK\r\n"
        "Content-Type: text/plain\r\n"
        "Content-Length: 28\r\n"
        "\r\n"
        "hello from the tiny peer\nok\n";
    char buf[1024];
    size_t got = 0;
    ssize_t n;
    (void)index;
    while (got < sizeof buf - 1 && (n = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0) {
        got += (size_t)n;
        buf[got] = '\0';
        if (strstr(buf, "\r\n\r\n"))
            break;
    }
    (void)peer_send_all(fd, reply, sizeof reply - 1);
}

int main(int argc, char **argv)
{
    struct page p;
    char port[16];
    pid_t peer = 0;
    as_future *f;
    int rc;

    memset(&p, 0, sizeof p);
    p.host = "127.0.0.1";
    p.port = port;
    p.path = "/";
    if (argc >= 3) {
        p.host = argv[1];
        p.port = argv[2];
        if (argc >= 4)
            p.path = argv[3];
    } else if ((peer = peer_spawn(serve_page, 1, port)) < 0) {
        perror("fetch_page: peer");
        return 1;
    }
    if ((rc = as_loop_new(&p.loop)) != 0) {
        fprintf(stderr, "fetch_page: loop: %s\n", as_strerror(rc));
        return 1;
    }
    f = as_open_connection(p.loop, p.host, p.port, NULL);
    if (!f || as_future_add_done_callback(f, on_connected, &p, NULL) < 0) {
        fprintf(stderr, "fetch_page: out of memory\n");
        return 1;
    }
    as_future_unref(f);
    if (as_loop_run_forever(p.loop) != 0)
        p.status = 1;
    if (!p.status && !p.status_ok) {
        fprintf(stderr, "fetch_page: the status was not 200\n");
        p.status = 1;
    }
    as_connection_free(p.conn);
    if (as_loop_close(p.loop) != 0)
        p.status = 1;
    if (peer_wait(peer) != 0)
        p.status = 1;
    return p.status;
}
