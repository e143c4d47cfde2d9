/*
 * sock.c - the socket system calls of sock.h, and every platform
 * difference they have, named here and nowhere else:
 *
 *   - born close-on-exec: socket() and accept4() take SOCK_NONBLOCK |
 *     SOCK_CLOEXEC, pipe2() takes O_NONBLOCK | O_CLOEXEC, on Linux, the
 *     BSDs and POSIX.1-2024 (configure's one test, HAVE_ATOMIC_CLOEXEC).
 *     Elsewhere (macOS) the flags are set with fcntl() just after, and an
 *     fd made while another thread forks and execs can leak into that
 *     child: the cost of the fallback, which only those systems pay.
 *   - no SIGPIPE: MSG_NOSIGNAL on every send (AS__SOCK_SEND_FLAGS in
 *     sock.h), or SO_NOSIGPIPE on the socket where there is no such flag.
 *   - SO_REUSEPORT and IPV6_V6ONLY exist on most systems, not all.
 *   - EPROTO from accept() (the peer gave up) is not on every system.
 *   - close() is closesocket() on Windows, and errno is WSAGetLastError().
 */

/* glibc declares accept4() and pipe2() only under _GNU_SOURCE (it does not
 * know POSIX.1-2024 yet).  Asked for here, before any header, in the one
 * file that calls them; the rest of the library stays C99 + POSIX.1-2008. */
#define _GNU_SOURCE 1

#include "sock.h"
#include "errors.h"
#include "internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------ fd flags */

/* Add one flag with fcntl(get) / fcntl(set), unless it is there. */
static int add_flag(int fd, int get, int set, int flag)
{
    int flags = fcntl(fd, get);
    if (flags < 0)
        return -errno;
    if (!(flags & flag) && fcntl(fd, set, flags | flag) < 0)
        return -errno;
    return 0;
}

int as__set_nonblocking(int fd)
{
    return add_flag(fd, F_GETFL, F_SETFL, O_NONBLOCK);
}

int as__set_cloexec(int fd)
{
    return add_flag(fd, F_GETFD, F_SETFD, FD_CLOEXEC);
}

void as__sock_close(int fd)
{
    if (fd >= 0)
        (void)close(fd);
}

/*
 * The one place that knows whether the calls take the flags.  Each makes
 * an fd (or a pair) and returns what the system call returned; made()
 * then turns that into the fd or -errno, setting the flags afterwards on
 * a system without the atomic calls.
 */
#ifdef HAVE_ATOMIC_CLOEXEC
#define SOCK_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC)
#define BORN_WITH_FLAGS 1
static int sys_socket(int family, int protocol)
{
    return socket(family, SOCK_STREAM | SOCK_FLAGS, protocol);
}
static int sys_accept(int lfd)
{
    return accept4(lfd, NULL, NULL, SOCK_FLAGS);
}
static int sys_pipe(int p[2])
{
    return pipe2(p, O_NONBLOCK | O_CLOEXEC);
}
#else
#define BORN_WITH_FLAGS 0
static int sys_socket(int family, int protocol)
{
    return socket(family, SOCK_STREAM, protocol);
}
static int sys_accept(int lfd)
{
    return accept(lfd, NULL, NULL);
}
static int sys_pipe(int p[2])
{
    return pipe(p);
}
#endif

/* fd as a sys_*() call returned it (read errno at once): the fd with both
 * flags, or -errno with the fd closed. */
static int made(int fd)
{
    int err;
    if (fd < 0)
        return -errno;
    if (!BORN_WITH_FLAGS &&
        ((err = as__set_nonblocking(fd)) < 0 || (err = as__set_cloexec(fd)) < 0)) {
        as__sock_close(fd);
        return err;
    }
    return fd;
}

/* ------------------------------------------------------------ making fds */

int as__sock_pipe(int fds[2])
{
    int p[2], err;
    if (sys_pipe(p) < 0)
        return -errno;
    if ((err = made(p[0])) < 0) {
        as__sock_close(p[1]);
        return err;
    }
    if ((err = made(p[1])) < 0) {
        as__sock_close(p[0]);
        return err;
    }
    fds[0] = p[0];
    fds[1] = p[1];
    return 0;
}

int as__sock_open(int family, int protocol)
{
    return made(sys_socket(family, protocol));
}

int as__sock_accept(int lfd)
{
    return made(sys_accept(lfd));
}

int as__sock_accept_error_is_transient(int err)
{
    return err == -EINTR || err == -ECONNABORTED
#ifdef EPROTO
           || err == -EPROTO
#endif
        ;
}

/* ------------------------------------------------------------ set-up */

int as__sock_setup_stream(int fd)
{
    int err, one = 1;
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;

    if ((err = as__set_nonblocking(fd)) < 0 || (err = as__set_cloexec(fd)) < 0)
        return err;
#if defined(HAVE_DECL_SO_NOSIGPIPE) && HAVE_DECL_SO_NOSIGPIPE
    /* Where there is no MSG_NOSIGNAL (AS__SOCK_SEND_FLAGS is 0) this is
     * what keeps a send to a closed peer from raising SIGPIPE; where there
     * are both, it also covers a write on the fd by someone else. */
    if (setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) < 0)
        return -errno;
#endif
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0 &&
        (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) &&
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
        return -errno;
    return 0;
}

/* ------------------------------------------------------------ connecting */

int as__sock_connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    if (connect(fd, sa, len) == 0)
        return 0;
    if (errno == EINPROGRESS || errno == EINTR)
        return -EINPROGRESS;
    return -errno;
}

int as__sock_connect_result(int fd)
{
    int soerr = 0;
    socklen_t len = sizeof soerr;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        return -errno;
    if (soerr == EINTR)
        soerr = EINPROGRESS; /* still going, as for connect() itself */
    return -soerr;
}

/* ------------------------------------------------------------ binding */

int as__sock_bind(int fd, const struct sockaddr *sa, socklen_t len,
                  char *msg, size_t size)
{
    char addr[160];
    int err;

    if (bind(fd, sa, len) == 0)
        return 0;
    err = -errno;
    if (msg && size > 0) {
        /* asyncio raises OSError(errno, f"... {addr!r}: {str(err).lower()}"),
         * and str() of the first OSError carries its "[Errno 98] ": so the
         * errno is written twice, once lower-cased.  The leading one is
         * what the binding turns back into OSError's errno.  The text is
         * as_strerror()'s, which for a few errnos is not libc's
         * (EADDRNOTAVAIL: "address not available", not "cannot assign
         * requested address"). */
        as__sock_format_addr(sa, len, addr, sizeof addr);
        snprintf(msg, size, "[Errno %d] error while attempting to bind on address "
                 "%s: [errno %d] %s", -err, addr, -err, as_strerror(err));
    }
    return err;
}

static int set_flag(int fd, int level, int name)
{
    int one = 1;
    return setsockopt(fd, level, name, &one, sizeof one) < 0 ? -errno : 0;
}

int as__sock_listener(const struct sockaddr *sa, socklen_t len,
                      const as__sock_listen_opts *o, char *msg, size_t size)
{
    int fd, err, family = sa->sa_family;

    if (size > 0)
        msg[0] = 0;
    if ((fd = as__sock_open(family, 0)) < 0)
        return fd;
    if (family != AF_UNIX && o->reuse_address)
        (void)set_flag(fd, SOL_SOCKET, SO_REUSEADDR); /* best effort, as CPython */
    if (family != AF_UNIX && o->reuse_port) {
#ifdef SO_REUSEPORT
        if ((err = set_flag(fd, SOL_SOCKET, SO_REUSEPORT)) < 0) {
            snprintf(msg, size, "cannot set SO_REUSEPORT");
            as__sock_close(fd);
            return err;
        }
#else
        snprintf(msg, size, "reuse_port not supported on this platform");
        as__sock_close(fd);
        return AS_EINVAL;
#endif
    }
#ifdef IPV6_V6ONLY
    /* IPv6 only, so the IPv4 wildcard socket can share the port (what
     * CPython does too).  Where there is no such option the IPv4 bind may
     * then fail with EADDRINUSE. */
    if (family == AF_INET6)
        (void)set_flag(fd, IPPROTO_IPV6, IPV6_V6ONLY);
#endif
    if (family == AF_UNIX) {
        if (bind(fd, sa, len) < 0) {
            const struct sockaddr_un *sun = (const struct sockaddr_un *)(const void *)sa;
            err = -errno;
            if (err == -EADDRINUSE) /* asyncio's OSError(EADDRINUSE, ...) */
                snprintf(msg, size, "[Errno %d] Address '%s' is already in use",
                         EADDRINUSE, sun->sun_path);
            as__sock_close(fd);
            return err;
        }
    } else if ((err = as__sock_bind(fd, sa, len, msg, size)) < 0) {
        as__sock_close(fd);
        return err;
    }
    return fd;
}

int as__sock_listen(int fd, int backlog)
{
    return listen(fd, backlog) < 0 ? -errno : 0;
}

/* ------------------------------------------------------------ Unix paths */

int as__sock_unix_addr(const char *path, struct sockaddr_un *sun,
                       const char **msg)
{
    size_t n = path ? strlen(path) : 0;

    if (msg)
        *msg = NULL;
    if (n == 0)
        return AS_EINVAL;
    if (n >= sizeof sun->sun_path) {
        if (msg)
            *msg = "path too long for a Unix socket address";
        return AS_EINVAL;
    }
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, path, n + 1);
    return 0;
}

void as__sock_unix_remove_stale(const struct sockaddr_un *sun)
{
    struct stat st;
    int fd, rc;

    if (stat(sun->sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
        return;
    if ((fd = as__sock_open(AF_UNIX, 0)) < 0)
        return; /* cannot tell: do not remove anything */
    /* A non-blocking connect to a socket somebody listens on succeeds, or
     * says EAGAIN (its backlog is full); any other answer means nobody. */
    rc = as__sock_connect(fd, (const struct sockaddr *)sun, sizeof *sun);
    as__sock_close(fd);
    if (rc != 0 && rc != -EAGAIN && rc != -EINPROGRESS)
        (void)unlink(sun->sun_path);
}

/* ------------------------------------------------------------ addresses */

int as__sock_check_port(const char *port)
{
    const char *p = port;
    unsigned long value = 0;
    int negative = 0;

    if (!p)
        return 0;
    while (*p == ' ' || (*p >= '\t' && *p <= '\r'))
        p++;
    if (*p == '+' || *p == '-')
        negative = *p++ == '-';
    if (!(*p >= '0' && *p <= '9'))
        return 0; /* a service name (or nothing): not ours to judge */
    for (; *p >= '0' && *p <= '9'; p++)
        if (value <= 65535) /* stop counting once too large: no overflow */
            value = value * 10 + (unsigned long)(*p - '0');
    if (*p != '\0')
        return 0; /* "80x" is no number either */
    return (negative && value > 0) || value > 65535 ? AS_EPORT : 0;
}

char *as__sock_format_addr(const struct sockaddr *sa, socklen_t len, char *buf,
                           size_t size)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        snprintf(buf, size, "('%s', %u)", host, (unsigned)ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        snprintf(buf, size, "('%s', %u, %lu, %lu)", host, (unsigned)ntohs(in6->sin6_port),
                 (unsigned long)ntohl(in6->sin6_flowinfo),
                 (unsigned long)in6->sin6_scope_id);
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)(const void *)sa;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        size_t n = len > off ? (size_t)len - off : 0;
        if (n > sizeof un->sun_path)
            n = sizeof un->sun_path;
        snprintf(buf, size, "('%.*s')", (int)strnlen(un->sun_path, n), un->sun_path);
    } else {
        snprintf(buf, size, "(family %d)", (int)sa->sa_family);
    }
    return buf;
}
