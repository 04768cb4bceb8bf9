# lib.sh - shared by the operator's-view tests (show, --json, events): the
# helpers of ../common.sh (a temporary directory per test, umpathd started
# in it and stopped at exit, bounded waits, checks that record a failure
# and go on), background followers in $BG_PIDS, and a log check.
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"
LOG_LINES=40

# Whether file $1 has a line matching the extended regex $2.
has_line()
{
	grep -qE -- "$2" "$1" 2>/dev/null
}
