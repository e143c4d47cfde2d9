/*
 * errors.h - error codes as values.
 *
 * Every call in asyncstreams that can fail returns an int: 0 (or a count) on
 * success, a negative code on failure.  There are two kinds of code:
 *
 *   - system errors: the negated errno value, e.g. -ECONNRESET;
 *   - the library's own errors: AS_E* below, all between AS__ERR_FIRST and AS__ERR_END, so they can
 *     never collide with a negated errno (errno values are small positives).
 *
 * Both kinds come from X-macro lists, so the code, its name and its message
 * can never drift apart: as_err_name(-ECONNRESET) is "ECONNRESET",
 * as_strerror(AS_ECANCELLED) is "operation cancelled".
 *
 * Conventions (asyncstreams.h): no call here takes an object, so the NULL
 * rule asks only that none returns NULL: every code, known or not, has a
 * name and a message.
 */
#ifndef AS_ERRORS_H
#define AS_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The library's own errors: X(NAME, message, Python exception it maps to).
 * The third column documents the mapping the bindings use.  New codes go
 * at the end, so the values of the others never change.
 */
#define AS_LIB_ERRORS(X)                                                       \
    X(CANCELLED, "operation cancelled", CancelledError)                        \
    X(TIMEOUT, "operation timed out", TimeoutError)                            \
    X(INCOMPLETE, "incomplete read: EOF before the expected bytes",            \
      IncompleteReadError)                                                     \
    X(LIMIT, "limit overrun: chunk longer than the reader's limit",            \
      LimitOverrunError)                                                       \
    X(BUSY, "another read is already waiting for incoming data",               \
      RuntimeError)                                                            \
    X(INVAL, "invalid argument", ValueError)                                   \
    X(STATE, "call not allowed in the object's current state", RuntimeError)   \
    X(CLOSED, "object is closed", RuntimeError)                                \
    X(CONNLOST, "connection lost", ConnectionResetError)                       \
    X(FDSETSIZE, "file descriptor too large for the backend (FD_SETSIZE)",     \
      OSError)                                                                 \
    X(RESOLVE, "host name resolution failed", gaierror)                        \
    X(UNHANDLED, "unhandled error in a callback", Exception)                   \
    X(NOKEY, "no such key for this object", KeyError)                          \
    X(PORT, "port must be 0-65535", OverflowError)                             \
    X(NOTSUP, "TLS is not supported in this build", NotImplementedError)       \
    X(TLS, "TLS protocol error", ssl.SSLError)                                 \
    X(CERT, "certificate verify failed", ssl.SSLCertVerificationError)        \
    X(NOTPIPE, "pipe transports are for pipes, FIFOs and character devices only", \
      ValueError)

/*
 * The codes count up from AS__ERR_FIRST, far below any negated errno, so a
 * caller can tell the two kinds apart (as_err_is_lib) and a table lookup is
 * code - AS__ERR_FIRST - 1.
 */
enum as_error_code {
    AS__ERR_FIRST = -30100,
#define AS__ERR_ENUM(name, msg, py) AS_E##name,
    AS_LIB_ERRORS(AS__ERR_ENUM)
#undef AS__ERR_ENUM
    AS__ERR_END
};

/**
 * Return a message for an error code: the library's own text for AS_E*,
 * a fixed English text for system errors the library knows by name, and
 * "unknown error" otherwise.  Thread-safe; never returns NULL; the string is
 * static and must not be freed.
 */
const char *as_strerror(int code);

/**
 * Return the symbolic name of an error code: "ECONNRESET", "AS_ECANCELLED",
 * "OK" for 0, "UNKNOWN" otherwise.  Thread-safe; the string is static.
 */
const char *as_err_name(int code);

/** True when code is one of the library's own AS_E* codes. */
int as_err_is_lib(int code);

#ifdef __cplusplus
}
#endif
#endif /* AS_ERRORS_H */
