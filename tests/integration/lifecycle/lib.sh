# lib.sh - shared by the daemon lifecycle tests (signals, shutdown bound,
# startup limits): the helpers of ../common.sh, and a clock.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

# Milliseconds of CLOCK_MONOTONIC (bash's EPOCHREALTIME would follow clock steps).
now_ms()
{
	python3 -c 'import time; print(int(time.monotonic() * 1000))'
}

alive()
{
	kill -0 "$DPID" 2>/dev/null && ! exited "$DPID"
}
