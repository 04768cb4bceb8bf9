#!/usr/bin/env bash
# Description: with $NOTIFY_SOCKET set, umpathd sends READY=1 (and a
# STATUS line) only once its control socket, its NBD export and its
# metrics endpoint accept connections, RELOADING=1 then READY=1 around a SIGHUP reload and around
# `umpath reconfigure` (the failure in STATUS), no WATCHDOG=1 unasked, and
# STOPPING=1 with EXTEND_TIMEOUT_USEC at SIGTERM; every message from
# umpathd's own pid.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

notify lifecycle
finish
