/* engine/errors.c — names for engine error codes (see errors.h). */
#include "engine/errors.h"

#include <string.h>

const char *eng_strerror(int err)
{
	switch (err) {
	case ENG_EFULL: return "index full (--max-keys reached)";
	case ENG_EPRECOND: return "precondition failed";
	case ENG_ENOTINT: return "value is not a decimal 64-bit integer";
	case ENG_EOVERFLOW: return "integer overflow";
	case ENG_EPOISONED: return "an fdatasync failed; writes refused until restart";
	case ENG_ECOMPACTED: return "history before that version was compacted away";
	case ENG_ENEXTPASS: return "key busy with an earlier write of the same pass";
	case ENG_ECORRUPT: return "corrupt record in the middle of database.bin";
	}
	return strerror(err < 0 ? -err : err);
}
