/*
 * reader.h - StreamReader: a byte buffer that reads wait on.
 *
 * A reader is fed from one side (by hand, or by a transport calling
 * as_reader_feed_data() / as_reader_feed_eof() / as_reader_set_exception())
 * and read from the other.  Every read returns a future whose result is an
 * as_bytes (buffer.h).  The behaviour is CPython 3.13's asyncio.StreamReader,
 * to the byte and to the error; the differences are listed at the end.
 *
 * A read that the buffer can satisfy at once returns a future that is
 * already finished: check as_future_done() and take the result without
 * waiting for a loop turn (that is what `await` on a ready result does in
 * Python: it does not yield).  A read that cannot be satisfied registers as
 * the reader's one *waiter* and waits:
 *
 *      call --buffer satisfies it-------------------------> FINISHED
 *        |  --stored exception / bad argument-------------> FAILED
 *        +--needs more data--> WAITING --feed_data, feed_eof
 *                                 |         (woken at the end of the turn,
 *                                 |          then tries again; a transport's
 *                                 |          feed retries at once)
 *                                 |--set_exception--------> FAILED
 *                                 +--future cancelled-----> CANCELLED
 *                                                    (nothing consumed)
 *
 * Only one read may wait at a time: a second read that would have to wait
 * fails with AS_EBUSY (a read the buffer can satisfy at once still works).
 *
 * Errors (future's code / message / detail), as CPython raises them:
 *   - AS_EINVAL: a bad argument, with CPython's ValueError text, e.g.
 *     "readexactly size can not be less than zero",
 *     "Separator should be at least one-byte string",
 *     "Separator should contain at least one element".
 *   - AS_EINCOMPLETE (IncompleteReadError): EOF came first.  Message
 *     "18 bytes read on a total of 36 expected bytes" (or "... of undefined
 *     expected bytes"); detail is an as_incomplete_read holding the partial
 *     bytes, which the read consumed (as CPython's does).
 *   - AS_ELIMIT (LimitOverrunError): "Separator is not found, and chunk
 *     exceed the limit" or "Separator is found, but chunk is longer than
 *     limit"; detail is an as_limit_overrun.  readuntil consumes nothing.
 *     readline raises CPython's ValueError with the same message: here it is
 *     AS_ELIMIT with the same message and detail, after readline has dropped
 *     what CPython drops (see as_reader_readline()).
 *   - AS_EBUSY (RuntimeError): "readuntil() called while another coroutine is
 *     already waiting for incoming data" (read(), readexactly() likewise;
 *     readline reports readuntil(), as CPython does).
 *   - the stored exception (as_reader_set_exception()): same code and
 *     message for every later read, even with data buffered.
 *
 * Lifetimes:
 *   1. as_reader_new() returns a reader with one reference, the caller's;
 *      as_reader_ref()/as_reader_unref() count references and the reader is
 *      freed at zero.  The reader holds a loop object reference (loop.h,
 *      rule 1).
 *   2. Each read returns a new future with one reference, the caller's.  The
 *      reader keeps its own reference to the future of the waiting read until
 *      that read finishes, fails or is cancelled.  If the reader is freed
 *      while a read waits, that read is cancelled (message "reader freed").
 *   3. A waiting read that is woken holds a reader reference until its retry
 *      has run (or the loop closes), so the reader outlives the retry.
 *   4. A successful read's result is an as_bytes owned by the future; take it
 *      with as_future_take_result() and free() it, or leave it to the future.
 *      Error details (as_incomplete_read, as_limit_overrun) are owned by the
 *      future and valid while you hold it.
 *   5. Separators passed to a read are copied if the read has to wait: the
 *      caller's memory need only live for the call.
 *   6. The flow-control hooks' userdata belongs to the reader from a
 *      successful as_reader_set_flow_control() until the hooks are replaced,
 *      dropped, or the reader is freed; then destroy(userdata) runs.
 *
 * Threads: a reader belongs to its loop's thread.
 *
 * Conventions (asyncstreams.h): readers are refcounted, and a NULL reader
 * gets the NULL answers listed there: reads return NULL, calls returning
 * int AS_EINVAL (as_reader_exception(NULL) included), queries 0.
 *
 * Differences from CPython, all in CPython's users' favour:
 *   - feed_data() after feed_eof() returns AS_ESTATE instead of asserting.
 *   - read(-1) leaves the bytes in the buffer until EOF and takes them all at
 *     once, so cancelling it or an error consumes nothing (CPython's consumes
 *     limit-sized blocks as it goes and loses them).  While it waits, the
 *     buffer may exceed 2 x limit: the transport is paused by feed_data and
 *     resumed each time the read waits again, as for readexactly(n > limit).
 *   - read(-1) started while another read waits fails with AS_EBUSY at
 *     once; CPython's first takes what is buffered, then fails and loses it.
 *   - A read that waits remembers how far it has searched as a position in
 *     the stream, so a second read consuming bytes meanwhile cannot make it
 *     skip any (CPython's keeps a buffer offset that goes stale and skips
 *     a separator); and a woken read(n) that finds the buffer emptied by
 *     such a read waits again instead of returning b"" (which means EOF).
 *   - set_exception() fails a read that was woken but has not retried yet;
 *     CPython's has left the waiter slot by then and never sees the error.
 *   - A woken read stays the waiter until its retry has run (CPython clears
 *     _waiter in feed_data), so a second read that must wait in that window
 *     gets AS_EBUSY rather than displacing the first.
 */
#ifndef AS_READER_H
#define AS_READER_H

#include <stddef.h>
#include <sys/types.h> /* ssize_t */

#include "loop.h"
#include "future.h"
#include "buffer.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct as_reader as_reader;

/** CPython's _DEFAULT_LIMIT: 64 KiB. */
#define AS_READER_DEFAULT_LIMIT 65536

/** The detail of an AS_EINCOMPLETE error (IncompleteReadError). */
typedef struct as_incomplete_read {
    as_bytes *partial;  /**< the bytes read before EOF (consumed) */
    long long expected; /**< the byte count asked for; -1 = undefined (None) */
} as_incomplete_read;

/** The detail of an AS_ELIMIT error (LimitOverrunError). */
typedef struct as_limit_overrun {
    size_t consumed; /**< CPython's `consumed`: see as_reader_readuntil() */
} as_limit_overrun;

/** One separator for the multi-separator calls. */
typedef struct as_separator {
    const void *data;
    size_t len;
} as_separator;

/** The result of as_reader_discard_until() (not an as_bytes). */
typedef struct as_discarded {
    unsigned long long count; /**< bytes dropped, separator included */
    size_t separator;         /**< index of the separator that matched */
} as_discarded;

/**
 * Create a reader on loop.  limit is CPython's `limit`: the longest line or
 * chunk before a separator that readline()/readuntil() accept, and the
 * flow-control unit (pause above 2 x limit, resume at <= limit).  Pass
 * AS_READER_DEFAULT_LIMIT for CPython's default.
 * Returns 0 and stores the reader in *out; AS_EINVAL if limit <= 0
 * (CPython: ValueError "Limit cannot be <= 0") or loop/out is NULL;
 * AS_ECLOSED if the loop is closed; -ENOMEM.  On failure *out is NULL.
 */
int as_reader_new(as_loop *loop, ssize_t limit, as_reader **out);

/** Add a reference; returns reader. */
as_reader *as_reader_ref(as_reader *reader);

/** Drop a reference; freed at zero (lifetime rules 1 and 2).  NULL is
 *  ignored. */
void as_reader_unref(as_reader *reader);

/** The reader's loop. */
as_loop *as_reader_loop(const as_reader *reader);

/** The reader's limit. */
size_t as_reader_limit(const as_reader *reader);

/* ------------------------------------------------------------ feeding */

/**
 * Append len bytes to the buffer and wake the waiting read (on the next loop
 * turn).  len == 0 is a no-op that wakes nobody.  Then, if flow-control
 * hooks are set, not paused, and more than 2 x limit bytes are buffered,
 * calls the pause hook (see as_reader_set_flow_control()).
 * Returns 0; AS_ESTATE after as_reader_feed_eof() (nothing is appended);
 * AS_EINVAL if data is NULL and len > 0; -ENOMEM (nothing is appended).
 */
int as_reader_feed_data(as_reader *reader, const void *data, size_t len);

/**
 * Zero-copy feeding, for a transport: room for at least `want` bytes at the
 * end of the buffer, *avail receiving how many may be written.  Follow with
 * as_reader_feed_commit(), which behaves as as_reader_feed_data() of the
 * bytes written.  Returns NULL after EOF, on a NULL argument, or on
 * allocation failure.  The pointer is valid until the next reader call.
 */
unsigned char *as_reader_feed_reserve(as_reader *reader, size_t want,
                                      size_t *avail);

/** Make n bytes written after as_reader_feed_reserve() part of the buffer.
 *  Returns 0, or AS_ESTATE after EOF (the bytes are then discarded). */
int as_reader_feed_commit(as_reader *reader, size_t n);

/** Mark the end of the stream and wake the waiting read.  Idempotent. */
void as_reader_feed_eof(as_reader *reader);

/** True when EOF was fed and the buffer is empty (CPython's at_eof()). */
int as_reader_at_eof(const as_reader *reader);

/**
 * Store an error (code < 0, message may be NULL for as_strerror(code)): the
 * waiting read, unless it was cancelled, fails with it, and so does every
 * later read, even with data buffered (CPython's sticky exception).  A
 * later call replaces the stored error.  Returns 0, AS_EINVAL (code >= 0) or
 * -ENOMEM (nothing changed).
 */
int as_reader_set_exception(as_reader *reader, int code, const char *message);

/**
 * The stored error code, or 0 (AS_EINVAL for a NULL reader).  If message
 * is not NULL it receives the stored message (valid until the next
 * set_exception or the reader's end), or NULL.
 */
int as_reader_exception(const as_reader *reader, const char **message);

/* ------------------------------------------------------------ reads */

/**
 * read(n).  A stored exception fails it first (even for n == 0).
 *   n == 0: b"" at once, buffer untouched.
 *   n < 0:  every byte until EOF.
 *   n > 0:  if the buffer is empty and not at EOF, wait once; then return up
 *           to n buffered bytes (fewer if fewer are there; b"" at EOF; not
 *           capped by the limit).
 * Returns a new future (NULL only if no future could be allocated).
 */
as_future *as_reader_read(as_reader *reader, ssize_t n);

/**
 * readexactly(n): exactly n bytes (not capped by the limit).
 *   n < 0: AS_EINVAL "readexactly size can not be less than zero" (checked
 *          before the stored exception).
 *   n == 0: b"".
 *   EOF first: AS_EINCOMPLETE with the whole buffer as `partial` (the buffer
 *   is emptied) and `expected` = n.
 */
as_future *as_reader_readexactly(as_reader *reader, ssize_t n);

/**
 * readuntil(separator): the bytes up to and including the first separator.
 *   seplen == 0: AS_EINVAL "Separator should be at least one-byte string"
 *                (checked before the stored exception).
 *   More than `limit` bytes before the separator: AS_ELIMIT, nothing
 *   consumed; `consumed` is the separator's start if it was found ("Separator
 *   is found, but chunk is longer than limit"), else the first position a
 *   separator could still start at, len + 1 - seplen ("Separator is not
 *   found, and chunk exceed the limit").
 *   EOF without a separator: AS_EINCOMPLETE, `partial` = the whole buffer
 *   (emptied), `expected` = -1.  A separator already buffered is returned
 *   even after EOF.
 * Never rescans bytes it has already searched.
 */
as_future *as_reader_readuntil(as_reader *reader, const void *separator,
                               size_t seplen);

/**
 * readuntil((sep1, sep2, ...)): as as_reader_readuntil(); the match that
 * ends first wins, and on equal ends the shorter separator.  nseps == 0:
 * AS_EINVAL "Separator should contain at least one element"; any empty
 * separator: "Separator should be at least one-byte string".  The limit
 * rules use the shortest separator's start when found, and
 * len + 1 - (longest separator length) when not.
 */
as_future *as_reader_readuntil_any(as_reader *reader,
                                   const as_separator *seps, size_t nseps);

/**
 * readline(): readuntil("\n"), except that
 *   - EOF without "\n" is not an error: the partial line is the result (b""
 *     at EOF);
 *   - a limit overrun fails with AS_ELIMIT and CPython's message and detail
 *     (CPython raises ValueError here), after dropping, as CPython does,
 *     the over-long line and its "\n" if the "\n" is buffered, or else the
 *     whole buffer.  The rest of an over-long line that arrives later is
 *     then returned as a "line".  as_reader_readuntil_ex() plus
 *     as_reader_discard_until() avoids that.
 * The busy error names readuntil(), as CPython's does.
 */
as_future *as_reader_readline(as_reader *reader);

/* ------------------------------------------------------ extra calls */

/**
 * readline() with a limit for this call only (limit 0 = the reader's).
 * Flow control still uses the reader's limit.
 */
as_future *as_reader_readline_limit(as_reader *reader, size_t limit);

/**
 * as_reader_readuntil_any() with a limit for this call only (0 = the
 * reader's limit): for example a small limit for headers and a big one for
 * a body, on one reader.  Nothing is consumed on overrun.
 */
as_future *as_reader_readuntil_ex(as_reader *reader, const as_separator *seps,
                                  size_t nseps, size_t limit);

/**
 * Drop bytes up to and including the first of seps (rules as
 * as_reader_readuntil_any(), but no limit), to resynchronise after a limit
 * overrun without losing the lines that follow.  Bytes that cannot be part
 * of a separator are dropped as they arrive, so memory stays bounded
 * however long the junk is.  The result is an as_discarded (free() it).
 * EOF first: everything is dropped and the future fails with AS_EINCOMPLETE
 * (partial empty, expected -1, message "N bytes discarded, separator not
 * found before EOF").  Cancelling it keeps the bytes already dropped
 * dropped: unlike the reads, it is not consume-nothing.
 */
as_future *as_reader_discard_until(as_reader *reader, const as_separator *seps,
                                   size_t nseps);

/**
 * Look at the buffered bytes without consuming them: *data receives a
 * pointer to them (valid until the next reader call) and the count is
 * returned.  Ignores the stored exception, so bytes that arrived before an
 * error are still visible.
 */
size_t as_reader_peek(const as_reader *reader, const unsigned char **data);

/** Number of buffered bytes. */
size_t as_reader_buffered(const as_reader *reader);

/**
 * Bytes of memory the reader holds for data: its buffer's storage and any
 * block kept for the next result.  Once the reader has EOF or an exception
 * (its connection finished or was lost), that is no more than its unread
 * bytes: the rest is given back at once, not when the reader is freed.
 */
size_t as_reader_memory(const as_reader *reader);

/* ------------------------------------------------------ iteration */

/**
 * Called for each line by as_reader_iter_lines(), from a loop callback.
 * line is valid only during the call.  Return 0 to go on, non-zero to stop.
 */
typedef int (*as_reader_line_fn)(as_reader *reader, const as_bytes *line,
                                 void *userdata);

/**
 * `async for line in reader`: call fn for each line (readline()'s result)
 * until readline() returns b"" (EOF), fn returns non-zero, or a read fails.
 * Returns a future that finishes with no result (NULL) at the end, or fails
 * with the read's error code and message.  Cancelling it stops the
 * iteration at once, consuming nothing more.  fn never runs inside this
 * call; lines already buffered are delivered in one loop callback, without
 * a future each.  While the iteration waits it is the reader's waiter, so
 * other reads that must wait get AS_EBUSY; fn itself may read what is
 * buffered (if such a read waits, the iteration then fails with AS_EBUSY).
 * destroy(userdata) runs when the iteration ends.  Returns NULL on
 * allocation failure, or a future that has already failed (AS_EINVAL when
 * fn is NULL, AS_ECLOSED...): in both cases fn and destroy never run.
 */
as_future *as_reader_iter_lines(as_reader *reader, as_reader_line_fn fn,
                                void *userdata, as_destroy_fn destroy);

/* ------------------------------------------------------ flow control */

/**
 * Hook called by the reader to pause or resume the transport feeding it.
 * For pause: return 0 if reading was paused, non-zero if the transport
 * cannot pause (CPython's NotImplementedError): the reader then drops the
 * hooks and buffers everything.  resume's return value is ignored.  Hooks
 * run synchronously inside feed_data and the reads, so they must only
 * change what the transport watches, never call back into the reader.
 */
typedef int (*as_reader_flow_fn)(as_reader *reader, void *userdata);

/**
 * Register the transport's hooks (CPython's set_transport()).  The reader
 * calls pause when feed_data leaves more than 2 x limit bytes buffered, and
 * resume when a read leaves at most limit bytes, when readline drops bytes
 * on overrun, and whenever a read has to wait while paused (so a read of
 * more than 2 x limit bytes cannot deadlock).  pause == NULL removes the
 * hooks (the paused flag is cleared).  A previous registration's destroy
 * runs.  Returns 0.
 */
int as_reader_set_flow_control(as_reader *reader, as_reader_flow_fn pause,
                               as_reader_flow_fn resume, void *userdata,
                               as_destroy_fn destroy);

/** True while the reader has paused its transport. */
int as_reader_paused(const as_reader *reader);

#ifdef __cplusplus
}
#endif
#endif /* AS_READER_H */
