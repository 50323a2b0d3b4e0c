/* engine/errors.h — error codes the engine returns beyond errno.
 *
 * Engine calls return 0 or a negative errno. Outcomes errno has no name
 * for live below -4096, out of errno's range (as LMDB keeps its codes
 * clear of BerkeleyDB's), and eng_strerror() names all of them.
 *   -EAGAIN   the key is being written by another request: retry soon
 *   -ENOENT   no such key
 *   -ENOSPC   disk full (the write left nothing behind)
 *   -EBADMSG  a record failed its checksum
 */
#ifndef CASKD_ENGINE_ERRORS_H
#define CASKD_ENGINE_ERRORS_H

#define ENG_ERR_BASE 4096
#define ENG_EFULL     (-(ENG_ERR_BASE + 1)) /* index holds --max-keys keys */
#define ENG_EPRECOND  (-(ENG_ERR_BASE + 2)) /* If-Match / If-None-Match */
#define ENG_ENOTINT   (-(ENG_ERR_BASE + 3)) /* incr on a non-integer value */
#define ENG_EOVERFLOW (-(ENG_ERR_BASE + 4)) /* incr past int64 */
#define ENG_EPOISONED (-(ENG_ERR_BASE + 5)) /* an fdatasync failed: no more
					      * writes until restart */
#define ENG_ECORRUPT  (-(ENG_ERR_BASE + 6)) /* damage in the middle of the
					      * log: refuse to open */
#define ENG_ECOMPACTED (-(ENG_ERR_BASE + 7)) /* the log's history before a
					      * version was compacted away */
#define ENG_ENEXTPASS (-(ENG_ERR_BASE + 8)) /* the key is busy with an earlier
					      * write of the same pass: try it
					      * in the next one */

/* A message for 0, -errno or ENG_E*; never NULL. */
const char *eng_strerror(int err);

#endif
