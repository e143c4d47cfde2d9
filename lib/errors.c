/*
 * errors.c - names and messages for error codes.
 *
 * System errors get their text from our own table rather than strerror():
 * strerror() is not thread-safe, and strerror_r() comes in two incompatible
 * flavours (XSI and GNU).  The table lists the errno values a network library
 * meets; any other one is reported as "unknown system error".  Each entry is
 * guarded by #ifdef so the file compiles where an errno is missing.
 */
#include "errors.h"

#include <errno.h>
#include <stddef.h>

struct entry {
    int code;
    const char *name;
    const char *message;
};

static const struct entry lib_errors[] = {
#define AS__LIB_ENTRY(name, msg, py) {AS_E##name, "AS_E" #name, msg},
    AS_LIB_ERRORS(AS__LIB_ENTRY)
#undef AS__LIB_ENTRY
};

/* X(ERRNO, message) for the system errors we name. */
#define AS__SYS_ERRORS(X)                                          \
    X(EPERM, "operation not permitted")                            \
    X(ENOENT, "no such file or directory")                         \
    X(EINTR, "interrupted system call")                            \
    X(EIO, "i/o error")                                            \
    X(EBADF, "bad file descriptor")                                \
    X(EAGAIN, "resource temporarily unavailable")                  \
    X(ENOMEM, "not enough memory")                                 \
    X(EACCES, "permission denied")                                 \
    X(EFAULT, "bad address")                                       \
    X(EBUSY, "resource busy or locked")                            \
    X(EEXIST, "file already exists")                               \
    X(ENOTDIR, "not a directory")                                  \
    X(EISDIR, "is a directory")                                    \
    X(EINVAL, "invalid argument")                                  \
    X(ENFILE, "file table overflow")                               \
    X(EMFILE, "too many open files")                               \
    X(ENOSPC, "no space left on device")                           \
    X(EPIPE, "broken pipe")                                        \
    X(ERANGE, "result too large")                                  \
    X(ENAMETOOLONG, "name too long")                               \
    X(ENOSYS, "function not implemented")                          \
    X(ENOTSOCK, "socket operation on non-socket")                  \
    X(EDESTADDRREQ, "destination address required")                \
    X(EMSGSIZE, "message too long")                                \
    X(EPROTOTYPE, "protocol wrong type for socket")                \
    X(ENOPROTOOPT, "protocol not available")                       \
    X(EPROTONOSUPPORT, "protocol not supported")                   \
    X(EOPNOTSUPP, "operation not supported on socket")             \
    X(EAFNOSUPPORT, "address family not supported")                \
    X(EADDRINUSE, "address already in use")                        \
    X(EADDRNOTAVAIL, "address not available")                      \
    X(ENETDOWN, "network is down")                                 \
    X(ENETUNREACH, "network is unreachable")                       \
    X(ECONNABORTED, "software caused connection abort")            \
    X(ECONNRESET, "connection reset by peer")                      \
    X(ENOBUFS, "no buffer space available")                        \
    X(EISCONN, "socket is already connected")                      \
    X(ENOTCONN, "socket is not connected")                         \
    X(ETIMEDOUT, "connection timed out")                           \
    X(ECONNREFUSED, "connection refused")                          \
    X(EHOSTUNREACH, "host is unreachable")                         \
    X(EALREADY, "connection already in progress")                  \
    X(EINPROGRESS, "operation in progress")                        \
    X(ECANCELED, "operation canceled")

static const struct entry sys_errors[] = {
#define AS__SYS_ENTRY(name, msg) {-(name), #name, msg},
    AS__SYS_ERRORS(AS__SYS_ENTRY)
#undef AS__SYS_ENTRY
};

static const struct entry *find(int code)
{
    size_t i;

    if (as_err_is_lib(code))
        return &lib_errors[code - AS__ERR_FIRST - 1];
    /* A linear scan: the table is short and errors are not a hot path.
     * EAGAIN and EWOULDBLOCK may share a value; the first entry wins. */
    for (i = 0; i < sizeof sys_errors / sizeof sys_errors[0]; i++)
        if (sys_errors[i].code == code)
            return &sys_errors[i];
    return NULL;
}

int as_err_is_lib(int code)
{
    return code > AS__ERR_FIRST && code < AS__ERR_END;
}

const char *as_strerror(int code)
{
    const struct entry *e;

    if (code == 0)
        return "success";
    e = find(code);
    if (e)
        return e->message;
    return code < 0 ? "unknown system error" : "unknown error";
}

const char *as_err_name(int code)
{
    const struct entry *e;

    if (code == 0)
        return "OK";
    e = find(code);
    return e ? e->name : "UNKNOWN";
}
