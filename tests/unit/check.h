/* check.h - the one assertion every unit test uses: reports file:line and
 * the failed condition, exits 1 (a test failure, even under NDEBUG). */
#ifndef UMPATH_CHECK_H
#define UMPATH_CHECK_H

#include <stdio.h>
#include <stdlib.h>

#define CHECK(cond)								\
	do {									\
		if (!(cond)) {							\
			fprintf(stderr, "%s:%d: check failed: %s\n",		\
				__FILE__, __LINE__, #cond);			\
			exit(1);						\
		}								\
	} while (0)

#endif
