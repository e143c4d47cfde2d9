/*
 * cache.c - the loop's cache of small blocks: setting it up and emptying
 * it.  The hot paths are inline in cache.h.
 */
#include "cache.h"

#include <string.h>

/* An AddressSanitizer build keeps the cache off (cache.h, rule 4). */
#if defined(__SANITIZE_ADDRESS__)
#define CACHE_ALWAYS_OFF 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CACHE_ALWAYS_OFF 1
#endif
#endif
#ifndef CACHE_ALWAYS_OFF
#define CACHE_ALWAYS_OFF 0
#endif

void as__cache_init(as__cache *c)
{
    const char *env = getenv("ASYNCSTREAMS_MALLOC");

    memset(c, 0, sizeof *c);
    c->off = CACHE_ALWAYS_OFF || (env && strcmp(env, "malloc") == 0);
}

void as__cache_destroy(as__cache *c)
{
    size_t i;

    for (i = 0; i < AS__CACHE_CLASSES; i++) {
        struct as__cache_block *b = c->free[i], *next;
        for (; b; b = next) {
            next = b->next;
            free(b);
        }
        c->free[i] = NULL;
        c->kept[i] = 0;
    }
}
