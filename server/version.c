/* server/version.c — the build's version and revision (see version.h). */
#include "server/version.h"

#ifndef CASKD_REVISION
#define CASKD_REVISION "unknown"
#endif

const char srv_version[] = "0.1.0";
const char srv_revision[] = CASKD_REVISION;
