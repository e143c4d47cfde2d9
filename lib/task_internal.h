/*
 * task_internal.h - cancel hooks, shared by task.c and sync.c (not installed).
 *
 * A future that stands for work (a task, a gather, a wait_for, a semaphore
 * acquire) registers a hook saying how to cancel that work; as_cancel() calls
 * the hook instead of as_future_cancel().  This is asyncio's "Task overrides
 * Future.cancel", done from outside because future.h has no hook.
 *
 * Rule: whoever sets a hook holds a reference to the future until it has
 * cleared the hook, so a freed future's address is never found in the table.
 */
#ifndef AS_TASK_INTERNAL_H
#define AS_TASK_INTERNAL_H

#include "future.h"

/* Return 1 if cancellation was requested, 0 if there was nothing to cancel. */
typedef int (*as__cancel_hook_fn)(as_future *future, const char *message,
                                  void *userdata);

/* Returns 0 or -ENOMEM.  One hook per future; a second set replaces it. */
int as__cancel_hook_set(as_future *future, as__cancel_hook_fn fn,
                        void *userdata);

/* Clearing a future that has no hook does nothing. */
void as__cancel_hook_clear(as_future *future);

#endif
