/* fuzz.h - what every fuzz target defines (libFuzzer's interface) and the
 * checks they share.  A failed check aborts: libFuzzer and ASan report the
 * input and the stack, the driver's test fails. */
#ifndef UMPATH_FUZZ_H
#define UMPATH_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FZ_CHECK(cond)								\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n",	\
				__FILE__, __LINE__, #cond);			\
			abort();						\
		}								\
	} while (0)

/* Make a private empty directory the working directory: a path string
 * from the input that no mem store claims goes to the file transport,
 * and must find nothing to open (inputs with '/' are skipped). */
int fz_private_cwd(void);

/* 1 if the bytes hold '/' - an absolute or nested file path, or an NBD
 * URI, which would reach outside the process. */
int fz_reaches_out(const uint8_t *data, size_t size);

/* Whether buf (len bytes) is one valid JSON value (RFC 8259), surrounded
 * by whitespace at most. */
int fz_json_valid(const char *buf, size_t len);

#endif
