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

/* Portable helpers that set O_NONBLOCK / FD_CLOEXEC; return 0 or -errno. */
int as__set_nonblocking(int fd);
int as__set_cloexec(int fd);

/* Duplicate a string with malloc (strdup is POSIX but not C99). */
char *as__strdup(const char *s);

#endif /* AS_INTERNAL_H */
