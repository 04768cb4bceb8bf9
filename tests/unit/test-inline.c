/* Description: the inline-call guard (lib/inline.c) a submitter and its
 * watcher share.  A transport gets the guard only once per
 * umpath_inline_allow (a second call on that allowance, and any after
 * umpath_inline_allow(NULL), gets none); while a call runs the guard says
 * for how long, a claim younger than that fails and an older one succeeds
 * exactly once; the claimed call's end says so and the path's backoff word
 * is set about a second ahead; an unclaimed call's end leaves both alone;
 * and with a watcher thread claiming while the call ends, exactly one of
 * the two wins, every time. */
#undef NDEBUG
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <time.h>

#include "check.h"
#include "internal.h"
#include "selector.h"

#define RACES 20000

static struct umpath_inline race_g;
static _Atomic unsigned race_started;	/* calls begun */
static _Atomic unsigned race_tried;	/* claims tried, one a call */
static _Atomic unsigned race_claims;

static void *claimer(void *arg)
{
	(void)arg;
	for (unsigned i = 1; i <= RACES; i++) {
		while (atomic_load(&race_started) != i)
			;
		if (umpath_inline_claim(&race_g, 0))
			atomic_fetch_add(&race_claims, 1);
		atomic_store(&race_tried, i);
	}
	return NULL;
}

int main(void)
{
	struct umpath_inline g = { 0 };
	_Atomic uint64_t backoff = 0;
	struct timespec ms20 = { 0, 20000000 };
	unsigned ended = 0;
	pthread_t t;

	/* Nothing allowed: no guard for the transport. */
	CHECK(!um_inline_begin(&backoff));
	umpath_inline_allow(&g);
	umpath_inline_allow(NULL);
	CHECK(!um_inline_begin(&backoff));

	/* One call an allowance; not running: no claim. */
	umpath_inline_allow(&g);
	CHECK(umpath_inline_busy_ns(&g) == 0);
	CHECK(!umpath_inline_claim(&g, 0));
	CHECK(um_inline_begin(&backoff) == &g);
	CHECK(!um_inline_begin(&backoff));
	CHECK(atomic_load(&backoff) == 0);	/* only a claim sets it */
	CHECK(umpath_inline_busy_ns(&g) > 0);
	CHECK(!umpath_inline_claim(&g, 10000000u));	/* younger than 10 ms */
	CHECK(um_inline_end(&g));
	CHECK(!umpath_inline_claimed(&g));
	CHECK(atomic_load(&backoff) == 0);
	CHECK(umpath_inline_busy_ns(&g) == 0);

	/* A call running 20 ms: a 10 ms claim wins once; its end says so. */
	umpath_inline_allow(&g);
	CHECK(um_inline_begin(&backoff) == &g);
	nanosleep(&ms20, NULL);
	CHECK(umpath_inline_busy_ns(&g) >= 20000000u);
	CHECK(umpath_inline_claim(&g, 10000000u));
	CHECK(!umpath_inline_claim(&g, 10000000u));
	CHECK(umpath_inline_claimed(&g));
	uint64_t now = um_now_ns(), until = atomic_load(&backoff);
	CHECK(until > now + 900000000u && until <= now + 1000000000u);
	CHECK(!um_inline_end(&g));
	CHECK(umpath_inline_claimed(&g));
	/* The next allowance clears the claim. */
	umpath_inline_allow(&g);
	CHECK(!umpath_inline_claimed(&g));
	CHECK(umpath_inline_busy_ns(&g) == 0);
	umpath_inline_allow(NULL);

	/* The race: the call's end against a claim, RACES times. */
	CHECK(!pthread_create(&t, NULL, claimer, NULL));
	for (unsigned i = 0; i < RACES; i++) {
		umpath_inline_allow(&race_g);
		CHECK(um_inline_begin(&backoff) == &race_g);
		atomic_store(&race_started, i + 1);
		for (volatile unsigned spin = 0; spin < (i % 64) * 10; spin++)
			;
		if (um_inline_end(&race_g)) {
			ended++;
			CHECK(!umpath_inline_claimed(&race_g));
		} else {
			CHECK(umpath_inline_claimed(&race_g));
		}
		while (atomic_load(&race_tried) != i + 1)
			;
	}
	CHECK(!pthread_join(t, NULL));
	umpath_inline_allow(NULL);
	printf("race: %u calls ended first, %u claimed\n", ended, atomic_load(&race_claims));
	CHECK(ended + atomic_load(&race_claims) == RACES);
	return 0;
}
