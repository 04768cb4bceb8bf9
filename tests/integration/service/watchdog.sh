#!/usr/bin/env bash
# Description: with $WATCHDOG_USEC set, umpathd pings WATCHDOG=1 every half
# period from its event loop; with $WATCHDOG_PID naming another process,
# it does not.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

notify watchdog
finish
