/*
 * peer.h - a throw-away peer for the connection examples.
 *
 * Each example talks to a real server when given a host and port.  Run with
 * no arguments (as `make check` does), it first forks a small blocking
 * server of its own on 127.0.0.1, on a port the OS picks, so the example
 * runs anywhere and ends by itself.  The peer is deliberately plain
 * blocking code: it is the other end of the wire, not part of the lesson.
 */
#ifndef EXAMPLES_PEER_H
#define EXAMPLES_PEER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <signal.h>
#include <unistd.h>

/* What the child does with each accepted connection. */
typedef void (*peer_serve_fn)(int fd, int index);

/* Fork a server that accepts `conns` connections and serves each in turn.
 * Writes the port into port[16]; returns the child's pid, or -1. */
static pid_t peer_spawn(peer_serve_fn serve, int conns, char port[16])
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    pid_t pid;
    int lfd = socket(AF_INET, SOCK_STREAM, 0), i;

    if (lfd < 0)
        return -1;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 8) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
        close(lfd);
        return -1;
    }
    snprintf(port, 16, "%u", (unsigned)ntohs(sin.sin_port));
    fflush(stdout); /* or the child would print our buffered output again */
    if ((pid = fork()) == 0) {
        alarm(20); /* never outlive a broken parent */
        signal(SIGPIPE, SIG_IGN);
        for (i = 0; i < conns; i++) {
            int fd = accept(lfd, NULL, NULL);
            if (fd < 0)
                _exit(1);
            serve(fd, i);
            close(fd);
        }
        _exit(0);
    }
    close(lfd);
    return pid;
}

/* Wait for the peer; 0 if it exited cleanly. */
static int peer_wait(pid_t pid)
{
    int st;
    if (pid <= 0)
        return 0;
    if (waitpid(pid, &st, 0) < 0)
        return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

/* Blocking helpers for the peer. */
static int peer_send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, 0);
        if (n <= 0)
            return -1;
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

#endif
