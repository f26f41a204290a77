/* TAP-like result lines of the C scenario clients ("ok N - name" / "not ok N - name # detail", then a summary). */
#ifndef EMU_TAP_H
#define EMU_TAP_H
#include <stdio.h>

static int tap_ok, tap_fail, tap_n;

static inline void report(int ok, const char *name, const char *detail) {
	tap_n++;
	if (ok) { tap_ok++; printf("ok %d - %s\n", tap_n, name); }
	else { tap_fail++; printf("not ok %d - %s # %s\n", tap_n, name, detail); }
}

/** The summary line; the exit status (1 when anything failed). */
static inline int tap_done(void) {
	printf("# %d passed, %d failed\n", tap_ok, tap_fail);
	return tap_fail ? 1 : 0;
}
#endif
