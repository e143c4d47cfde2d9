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

/* Portable helpers that set O_NONBLOCK / FD_CLOEXEC; return 0 or -errno. */
int as__set_nonblocking(int fd);
int as__set_cloexec(int fd);

/* Duplicate a string with malloc (strdup is POSIX but not C99). */
char *as__strdup(const char *s);

#endif /* AS_INTERNAL_H */
