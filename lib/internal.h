/*
 * internal.h - what the library's modules share but users do not see.
 * Names here are as__ (internal, non-static); nothing here is installed.
 */
#ifndef AS_INTERNAL_H
#define AS_INTERNAL_H

#include <stddef.h>
#include "loop.h"

/*
 * Every library object built on a loop (future, reader, transport...) calls
 * as__loop_obj_ref() when it is created and as__loop_obj_unref() when it is
 * freed.  That keeps the loop's memory alive while they exist (loop.h, rule
 * 1) and lets tests assert that nothing is left alive.
 */
void as__loop_obj_ref(as_loop *loop);
void as__loop_obj_unref(as_loop *loop);

/*
 * Small blocks from the loop's cache (cache.h): for objects made and freed
 * on the loop's thread, given back with the size they were asked for and
 * before the loop's memory can go (that is, before as__loop_obj_unref()).
 * Uninitialised, like malloc(); NULL on failure.
 */
void *as__loop_alloc(as_loop *loop, size_t size);
void as__loop_free(as_loop *loop, void *p, size_t size);

/*
 * A handle its owner keeps and schedules again and again (loop.c): for a
 * callback an object schedules on many turns, such as a reader waking its
 * waiter, so that scheduling it allocates nothing.  Loop thread only.
 *   as__handle_new: fn(userdata) not yet scheduled; NULL on ENOMEM.  The
 *       owner must free it before the loop's memory can go.  dropped(userdata)
 *       (may be NULL) runs instead of fn when the loop closes with a run
 *       posted: an owner that holds a reference per posted run drops it there.
 *   as__handle_post: schedule it on the ready queue, or at the end of the
 *       turn; a no-op while it is queued.  0, AS_ECLOSED or -ENOMEM.
 *   as__handle_queued: whether it is queued and has not run yet.
 *   as__handle_free: unschedule it and give it back.  NULL is ignored.
 */
as_handle *as__handle_new(as_loop *loop, as_callback_fn fn, void *userdata,
                          as_destroy_fn dropped);
int as__handle_post(as_handle *h, int end_of_turn);
int as__handle_queued(const as_handle *h);
void as__handle_free(as_handle *h);

/*
 * A waiter on a future (future.c): when f completes, *slot receives a new
 * reference to f and h (an as__handle_new() handle) is posted to the ready
 * queue, in the order the callbacks were added, so it runs when a done
 * callback would, without one being made.  If it can never run (f freed
 * without completing, or the post failed), dropped(userdata) runs instead.
 * Tasks wait this way.  Returns 0, AS_ECLOSED or -ENOMEM (dropped not run).
 */
struct as_future;
int as__future_add_waiter(struct as_future *f, as_handle *h,
                          struct as_future **slot, as_destroy_fn dropped,
                          void *userdata);

/*
 * Failing a future (future.c), for calls that report bad input or a lost
 * resource through the future they return:
 *   as__future_fail: finish f with code (< 0) and a copy of message; if the
 *       copy cannot be made, with the code's own text (as_strerror()), so
 *       f never stays pending for want of memory.  A done f is left as it
 *       is.  Returns f.
 *   as__future_failed: a new future on loop, already failed that way.
 *       NULL if memory ran out or the loop is closed.
 */
struct as_future *as__future_fail(struct as_future *f, int code,
                                  const char *message);
struct as_future *as__future_failed(as_loop *loop, int code,
                                    const char *message);

/*
 * Recycling (reader.c): bytes a connection has just sent, handed over with
 * as_writer_write_bytes(), go back to that connection's reader, which puts
 * its next read result in the same block if it fits (an echo server's or a
 * proxy's bytes then go round without malloc()).  The reader owns `bytes`
 * from this call on.
 */
struct as_reader;
struct as_bytes;
void as__reader_recycle(struct as_reader *reader, struct as_bytes *bytes);

/*
 * as_reader_feed_commit() for a transport (reader.c): the waiting read is
 * retried at once rather than at the end of the turn.  Its future
 * completes here; its callbacks are scheduled as usual.
 */
int as__reader_feed_commit_now(struct as_reader *reader, size_t n);

/*
 * A tap (reader.c), for a transport layered over another (TLS, tls.c):
 * the lower transport feeds its reader ciphertext as it would feed any
 * reader, and the layer above is told synchronously, from inside the feed,
 * each time bytes arrive (AS__TAP_DATA), EOF is fed (AS__TAP_EOF) or an
 * exception is stored (AS__TAP_ERROR).  It looks at the bytes with
 * as_reader_peek() and takes what it used with as__reader_tap_consume(),
 * which resumes a paused transport as a read would.  No future, no loop
 * turn per chunk.  fn NULL removes the tap.  The tap may call back into the
 * reader (peek, consume) and into the lower transport (write, close,
 * abort).
 */
enum { AS__TAP_DATA, AS__TAP_EOF, AS__TAP_ERROR };
typedef void (*as__reader_tap_fn)(struct as_reader *reader, int event,
                                  void *userdata);
void as__reader_set_tap(struct as_reader *reader, as__reader_tap_fn fn,
                        void *userdata);
void as__reader_tap_consume(struct as_reader *reader, size_t n);

/*
 * Re-plumbing a live connection for start_tls (tls.c), both atomic:
 *   as__transport_set_reader: t feeds `reader` from now on (references and
 *       flow-control hooks move from the old reader to the new one);
 *   as__writer_set_transport: the writer writes to t from now on (it takes
 *       a reference to t and drops the one to its old transport).
 */
struct as_transport;
struct as_writer;
void as__transport_set_reader(struct as_transport *t, struct as_reader *reader);
void as__writer_set_transport(struct as_writer *w, struct as_transport *t);

/*
 * Blocking work off the loop thread (worker.c), design rule 9: work(arg)
 * runs on a new thread, which must touch nothing of the loop's; then, on
 * the loop thread, the returned future finishes with arg as its result
 * (freed with free_arg) if work returned 0, or fails with work's code and
 * the message it wrote into msg (empty: as_strerror()), arg then freed.
 * Cancelling the future abandons the work: arg is freed once the thread is
 * done with it, maybe on that thread (so free_arg must not touch the
 * loop).  The loop must not be closed while work runs (resolve.h, rule 4,
 * is the same rule).  NULL only on allocation failure; if no thread
 * can be started the future fails at once and arg is freed.
 */
typedef int (*as__work_fn)(void *arg, char *msg, size_t size);
struct as_future *as__run_blocking(as_loop *loop, as__work_fn work, void *arg,
                                   as_destroy_fn free_arg);

/* Keep a cold path (growing an array, say) out of line, so the hot path
 * that calls it stays small enough to need no saved registers. */
#if defined(__GNUC__)
#define AS__NOINLINE __attribute__((noinline))
#else
#define AS__NOINLINE
#endif

/* Duplicate a string with malloc (strdup is POSIX but not C99). */
char *as__strdup(const char *s);

#endif /* AS_INTERNAL_H */
