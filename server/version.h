/* server/version.h — what build of caskd this is.
 *
 * Owns: the release version and the source revision the binary was built
 * from, for --version and the caskd_build_info metric. The revision comes
 * from `git describe --always --dirty` at build time (the Makefile passes
 * it to version.c alone, so a new revision rebuilds one file), or is
 * "unknown" outside a git checkout.
 */
#ifndef CASKD_SERVER_VERSION_H
#define CASKD_SERVER_VERSION_H

extern const char srv_version[];
extern const char srv_revision[];

#endif
