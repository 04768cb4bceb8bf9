# lib.sh - shared by the service manager tests: the helpers of
# ../common.sh; notify.py plays the manager.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

# notify SCENARIO: notify.py's scenario, its report, a failure recorded.
notify()
{
	python3 "$(dirname "${BASH_SOURCE[0]}")/notify.py" "$UMPATHD" "$UMPATH" "$T" "$1" ||
		fail "notify.py $1"
}
