/*
 * buffer.h - a growable byte buffer with a read offset, and the bytes type
 * every read returns.
 *
 * The buffer is one malloc'd array holding, in order:
 *
 *      [ dead prefix | live bytes          | free tail            ]
 *      0            start                 end                    cap
 *
 * The array is allocated as an as_bytes block (its 8-byte header sits just
 * in front of `mem`), so a buffer whose live bytes start at the front can
 * hand its storage over as an as_bytes without copying (as_buffer_detach()),
 * and take a result's block back as storage (as_buffer_adopt()).
 *
 * Consuming bytes only advances `start`: it never moves the live bytes.  The
 * live bytes are moved to the front only when more room is needed at the end
 * and the dead prefix is at least as large as the live part.  Each move then
 * copies at most as many bytes as were consumed since the previous move, so
 * the cost is amortised O(1) per byte consumed; growth doubles the capacity,
 * so appending is amortised O(1) per byte too.  (CPython's bytearray gets the
 * same effect by a similar trick inside `del buf[:n]`.)
 *
 * Lifetimes:
 *   1. An as_buffer is a plain struct owned by whoever embeds it (the reader,
 *      a transport...).  as_buffer_init() makes it empty without allocating;
 *      as_buffer_destroy() frees its storage.  It holds no references.
 *   2. Pointers into the buffer (as_buffer_data(), as_buffer_reserve()) are
 *      valid until the next call that modifies the buffer.
 *   3. An as_bytes is one malloc() block (header and data together) owned by
 *      whoever holds it; free it with free().  Futures adopt it with `free`
 *      as the destroy function.
 *
 * Conventions (asyncstreams.h): as_buffer and as_bytes are value types,
 * not refcounted.  A NULL buffer gets the NULL answers listed there (an
 * empty buffer's for the queries), except as_buffer_find(NULL, ...),
 * which returns AS_BUFFER_NPOS: not found.
 */
#ifndef AS_BUFFER_H
#define AS_BUFFER_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * An immutable-by-convention byte string: the result of every read.
 * One allocation; free it with free().  data is not NUL-terminated.
 */
typedef struct as_bytes {
    size_t len;
    unsigned char data[]; /* C99 flexible array member */
} as_bytes;

/**
 * Copy len bytes from data (may be NULL when len == 0) into a new as_bytes.
 * Returns 0 and stores it in *out; or AS_EINVAL (out NULL, or data NULL
 * with len > 0) or -ENOMEM (also for a len too large to allocate), with
 * *out set to NULL.
 */
int as_bytes_new(const void *data, size_t len, as_bytes **out);

/** A new as_bytes of len bytes whose contents the caller will fill in.
 *  Returns 0 and stores it in *out; or AS_EINVAL (out NULL) or -ENOMEM,
 *  with *out set to NULL. */
int as_bytes_alloc(size_t len, as_bytes **out);

/** "Not found" for the search helpers. */
#define AS_BUFFER_NPOS ((size_t)-1)

typedef struct as_buffer {
    unsigned char *mem; /**< storage, NULL until the first append */
    size_t start;       /**< first live byte */
    size_t end;         /**< one past the last live byte */
    size_t cap;         /**< size of mem */
} as_buffer;

/** Make b empty.  Allocates nothing; cannot fail. */
void as_buffer_init(as_buffer *b);

/** Free b's storage and make it empty again (it may be reused). */
void as_buffer_destroy(as_buffer *b);

/** Number of live bytes. */
static inline size_t as_buffer_len(const as_buffer *b)
{
    return b ? b->end - b->start : 0;
}

/** The live bytes (NULL-safe to read len bytes from; may be NULL if len 0).
 *  Valid until the buffer is next modified. */
static inline const unsigned char *as_buffer_data(const as_buffer *b)
{
    return b && b->mem ? b->mem + b->start : NULL;
}

/** Capacity currently allocated, for tests and statistics. */
static inline size_t as_buffer_capacity(const as_buffer *b) { return b ? b->cap : 0; }

/**
 * Append len bytes.  Returns 0, or -ENOMEM with the buffer unchanged
 * (nothing is lost).  data may be NULL only when len is 0 (AS_EINVAL).
 */
int as_buffer_append(as_buffer *b, const void *data, size_t len);

/**
 * Make room for at least `want` bytes at the end (compacting or growing as
 * above) and return a pointer to that room; *avail receives how many bytes
 * may be written there (>= want).  Nothing becomes live until
 * as_buffer_commit().  Lets a transport recv() straight into the buffer.
 * Returns NULL on allocation failure (the buffer is unchanged).
 */
unsigned char *as_buffer_reserve(as_buffer *b, size_t want, size_t *avail);

/** Make n bytes written after as_buffer_reserve() live.  n must not exceed
 *  the room reserved; it is clamped to it. */
void as_buffer_commit(as_buffer *b, size_t n);

/** Drop the first n live bytes (clamped to the length).  O(1). */
void as_buffer_consume(as_buffer *b, size_t n);

/** Drop every live byte.  Keeps the storage for reuse. */
void as_buffer_clear(as_buffer *b);

/**
 * If the buffer is empty and holds more than `keep` bytes of storage, free
 * the storage.  Keeps one big read from pinning its peak memory for ever.
 */
void as_buffer_trim(as_buffer *b, size_t keep);

/**
 * Shrink the storage to the live bytes: none left frees it; otherwise, if
 * the storage is more than twice as big as they are, they move into a block
 * of their own (one copy of what is left, never of what was consumed).  For
 * a buffer that will not grow again.  Returns 0, or -ENOMEM with nothing
 * changed.
 */
int as_buffer_fit(as_buffer *b);

/**
 * Hand the storage over as an as_bytes holding the live bytes, without a
 * copy (the storage is allocated as an as_bytes block for this): returns it,
 * free() it as any as_bytes, and the buffer is left empty with no storage.
 * Only when the live bytes start at the front (nothing consumed since the
 * last compaction); otherwise, or with no storage, returns NULL and changes
 * nothing.  The block may be much bigger than the bytes: as_buffer_capacity()
 * tells, before the call.
 */
as_bytes *as_buffer_detach(as_buffer *b);

/**
 * Give an empty buffer with no storage the block of `block` as its storage,
 * for `cap` bytes (at most block->len, the bytes the block is known to
 * hold): the inverse of as_buffer_detach(), for reusing a result's block.
 * The buffer owns the block from then on.  Returns 0, or AS_EINVAL (the
 * buffer has storage, or block is NULL: nothing changes, and the block
 * stays the caller's).
 */
int as_buffer_adopt(as_buffer *b, as_bytes *block, size_t cap);

/**
 * Copy the first n live bytes (clamped to the length) into a new as_bytes
 * and consume them.  Returns NULL on allocation failure, consuming nothing.
 */
as_bytes *as_buffer_take(as_buffer *b, size_t n);

/**
 * Find the first occurrence of needle[0..nlen) that lies entirely inside
 * the live bytes [from, to): returns its offset from the first live byte, or
 * AS_BUFFER_NPOS.  `to` is clamped to the length.  An empty needle is never
 * found.  Cost: memchr() for the needle's first byte, then memcmp(), so
 * O((to - from) * nlen) in the worst case and close to memchr speed for the
 * short separators protocols use.
 */
size_t as_buffer_find(const as_buffer *b, const void *needle, size_t nlen,
                      size_t from, size_t to);

#ifdef __cplusplus
}
#endif
#endif /* AS_BUFFER_H */
