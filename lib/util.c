/*
 * util.c - small portable helpers shared by the modules (the socket ones
 * are in sock.c).
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

char *as__strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *copy = malloc(n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}
