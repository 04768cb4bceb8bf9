#!/usr/bin/env bash
# Description: the man pages render without a single warning, with every
# warning of groff on, as man(1) shows them (when man is installed) and at
# widths of 80 and 60 columns; each has the sections a man page needs.
# Arguments: the pages.  Skips (77) without groff.
set -euo pipefail
[ "$#" -ge 1 ] || { echo "usage: $0 PAGE..."; exit 2; }
command -v groff >/dev/null 2>&1 || { echo "SKIP: groff not installed"; exit 77; }
FAILED=0
T=$(mktemp -d "${TMPDIR:-/tmp}/umpath-man-test.XXXXXX")
trap 'rm -rf "$T"' EXIT

for page in "$@"; do
	for width in 80 60; do
		if ! groff -man -Tutf8 -ww -rLL="${width}n" "$page" >"$T/out" 2>"$T/err"; then
			echo "FAIL: groff $page (width $width) exit status $?"
			FAILED=1
		fi
		if [ -s "$T/err" ]; then
			echo "FAIL: groff $page (width $width) warns:"
			cat "$T/err"
			FAILED=1
		fi
		if command -v man >/dev/null 2>&1; then
			MANWIDTH=$width man --warnings -l "$page" >/dev/null 2>"$T/err" || true
			if [ -s "$T/err" ]; then
				echo "FAIL: man -l $page (width $width) warns:"
				cat "$T/err"
				FAILED=1
			fi
		fi
	done
	groff -man -Tutf8 "$page" 2>/dev/null | sed 's/\x1b\[[0-9;]*m//g; s/.\x08//g' >"$T/text"
	for s in NAME SYNOPSIS DESCRIPTION OPTIONS "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		grep -q "^$s\$" "$T/text" || { echo "FAIL: $page has no $s section"; FAILED=1; }
	done
done
[ "$FAILED" = 0 ] || exit 1
echo PASS
