/*
 * buffer.c - the read-offset byte buffer (see buffer.h for the picture).
 */
#include "buffer.h"
#include "errors.h"

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The storage is allocated as an as_bytes block: room for its header in
 * front of mem, so that as_buffer_detach() can hand it over as a result
 * without a copy.  The header costs 8 bytes per buffer. */
#define HEADER offsetof(as_bytes, data)

static as_bytes *block_of(const as_buffer *b)
{
    return (as_bytes *)(void *)(b->mem - HEADER);
}

int as_bytes_alloc(size_t len, as_bytes **out)
{
    as_bytes *b;

    if (!out)
        return AS_EINVAL;
    *out = NULL;
    if (len > SIZE_MAX - sizeof(as_bytes) || !(b = malloc(sizeof(as_bytes) + len)))
        return -ENOMEM;
    b->len = len;
    *out = b;
    return 0;
}

int as_bytes_new(const void *data, size_t len, as_bytes **out)
{
    int err;

    if (out && !data && len > 0) {
        *out = NULL;
        return AS_EINVAL;
    }
    if ((err = as_bytes_alloc(len, out)) == 0 && len)
        memcpy((*out)->data, data, len);
    return err;
}

void as_buffer_init(as_buffer *b)
{
    if (!b)
        return;
    b->mem = NULL;
    b->start = b->end = b->cap = 0;
}

void as_buffer_destroy(as_buffer *b)
{
    if (!b)
        return;
    if (b->mem)
        free(block_of(b));
    as_buffer_init(b);
}

/*
 * Make room for `want` more bytes after `end`.  Two ways, cheapest first:
 *   - slide the live bytes to the front, if the dead prefix is at least as
 *     big as the live part (so the copy is paid for by the bytes consumed
 *     since the last slide) and that frees enough room;
 *   - otherwise allocate max(2 x cap, live + want) and copy only the live
 *     bytes across (realloc would copy the dead prefix too).
 */
static int make_room(as_buffer *b, size_t want)
{
    size_t live = b->end - b->start;

    if (b->cap - b->end >= want)
        return 0;
    if (live > SIZE_MAX - want)
        return -ENOMEM;
    if (b->start >= live && b->cap - live >= want) {
        memmove(b->mem, b->mem + b->start, live);
        b->start = 0;
        b->end = live;
        return 0;
    }

    size_t need = live + want;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > SIZE_MAX - HEADER)
        return -ENOMEM;
    as_bytes *block = malloc(HEADER + cap);
    if (!block)
        return -ENOMEM;
    unsigned char *mem = block->data;
    if (live)
        memcpy(mem, b->mem + b->start, live);
    if (b->mem)
        free(block_of(b));
    b->mem = mem;
    b->cap = cap;
    b->start = 0;
    b->end = live;
    return 0;
}

int as_buffer_append(as_buffer *b, const void *data, size_t len)
{
    if (!b || (!data && len > 0))
        return AS_EINVAL;
    if (len == 0)
        return 0;
    int rc = make_room(b, len);
    if (rc < 0)
        return rc;
    memcpy(b->mem + b->end, data, len);
    b->end += len;
    return 0;
}

unsigned char *as_buffer_reserve(as_buffer *b, size_t want, size_t *avail)
{
    if (!b || make_room(b, want ? want : 1) < 0)
        return NULL;
    if (avail)
        *avail = b->cap - b->end;
    return b->mem + b->end;
}

void as_buffer_commit(as_buffer *b, size_t n)
{
    size_t room;
    if (!b)
        return;
    room = b->cap - b->end;
    b->end += n < room ? n : room;
}

void as_buffer_consume(as_buffer *b, size_t n)
{
    size_t live;
    if (!b)
        return;
    live = b->end - b->start;
    if (n >= live)
        b->start = b->end = 0; /* empty: restart at the front for free */
    else
        b->start += n;
}

void as_buffer_clear(as_buffer *b)
{
    if (b)
        b->start = b->end = 0;
}

void as_buffer_trim(as_buffer *b, size_t keep)
{
    if (b && b->start == b->end && b->cap > keep)
        as_buffer_destroy(b);
}

int as_buffer_fit(as_buffer *b)
{
    size_t len;
    as_bytes *block;

    if (!b)
        return AS_EINVAL;
    len = b->end - b->start;
    if (len == 0) {
        as_buffer_destroy(b);
        return 0;
    }
    if (b->cap / 2 <= len)
        return 0;
    if (as_bytes_alloc(len, &block) < 0)
        return -ENOMEM;
    memcpy(block->data, b->mem + b->start, len);
    as_buffer_destroy(b);
    b->mem = block->data;
    b->cap = b->end = len;
    return 0;
}

as_bytes *as_buffer_detach(as_buffer *b)
{
    as_bytes *block;
    if (!b || !b->mem || b->start != 0)
        return NULL;
    block = block_of(b);
    block->len = b->end;
    as_buffer_init(b);
    return block;
}

int as_buffer_adopt(as_buffer *b, as_bytes *block, size_t cap)
{
    if (!b || b->mem || !block)
        return AS_EINVAL;
    b->mem = block->data;
    b->cap = cap;
    b->start = b->end = 0;
    return 0;
}

as_bytes *as_buffer_take(as_buffer *b, size_t n)
{
    size_t live;
    if (!b)
        return NULL;
    live = b->end - b->start;
    if (n > live)
        n = live;
    as_bytes *out;
    if (as_bytes_new(b->mem ? b->mem + b->start : NULL, n, &out) == 0)
        as_buffer_consume(b, n);
    return out;
}

size_t as_buffer_find(const as_buffer *b, const void *needle, size_t nlen,
                      size_t from, size_t to)
{
    const unsigned char *hay, *nd = needle;
    size_t live;

    if (!b || !needle)
        return AS_BUFFER_NPOS;
    hay = b->mem ? b->mem + b->start : NULL;
    live = b->end - b->start;
    if (to > live)
        to = live;
    if (nlen == 0 || from >= to || to - from < nlen)
        return AS_BUFFER_NPOS;

    /* The last position a match can start at. */
    size_t last = to - nlen;
    size_t i = from;
    while (i <= last) {
        const unsigned char *p = memchr(hay + i, nd[0], last - i + 1);
        if (!p)
            return AS_BUFFER_NPOS;
        i = (size_t)(p - hay);
        if (nlen == 1 || memcmp(p + 1, nd + 1, nlen - 1) == 0)
            return i;
        i++;
    }
    return AS_BUFFER_NPOS;
}
