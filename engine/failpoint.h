/* engine/failpoint.h — named failpoints for crash and fault drills.
 *
 * Owns: parsing CASKD_FAILPOINTS and deciding, at a named point, whether
 * to crash the process or make the operation fail. The syntax is
 *     CASKD_FAILPOINTS=name=action[@N][,name=action[@N]...]
 * action: crash (SIGKILL self, like kill -9), exit (_exit(3)), enospc,
 * eio, emfile (the call at that point fails with that errno), delay (sleep 200
 * ms) and stall (2.5 s), only on threads that may block. @N fires on the N-th hit in each
 * process only; without it, every hit fires. The list of points is in
 * docs/failpoints.md. The daemon arms them in its workers only (each
 * counting from zero after fork), never in the master: a drill crashes or
 * fails the processes that serve requests, and the supervisor survives to
 * show what it does about it.
 *
 * Unarmed cost: one load and a predicted branch (ENG_FP checks a global
 * flag before looking anything up).
 */
#ifndef CASKD_ENGINE_FAILPOINT_H
#define CASKD_ENGINE_FAILPOINT_H

extern int eng_fp_armed;

/* Reads CASKD_FAILPOINTS. 0, or -EINVAL for a malformed spec. */
int eng_fp_init(void);
/* Arms (on, with every hit count back at zero) or disarms the parsed
 * failpoints of this process. */
void eng_fp_set_armed(int on);
/* Evaluates point name: crashes, or returns 0 / -ENOSPC / -EIO. */
int eng_fp_eval(const char *name);

#define ENG_FP(name) (__builtin_expect(eng_fp_armed, 0) ? eng_fp_eval(name) : 0)

#endif
