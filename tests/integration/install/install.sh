#!/usr/bin/env bash
# Description: meson install into a DESTDIR puts the programs, libumpath
# with its soname links, the public headers, umpath.pc, the man pages, the
# unit and the sample config under the configured prefix; a program built
# with `pkg-config --cflags --libs umpath` against the DESTDIR runs; the
# installed umpathd reads the installed sample config.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

need pkg-config readelf
CC=${CC:-cc}
meson_install

# The file list.
for f in "$sbindir/umpathd" "$bindir/umpath"; do
	[ -x "$D$f" ] || fail "$f not installed (or not executable)"
done
for f in "$includedir/umpath/umpath.h" "$includedir/umpath/umpath-mem.h" \
	 "$libdir/pkgconfig/umpath.pc" \
	 "$mandir/man8/umpath.8" "$mandir/man8/umpathd.8" "$mandir/man5/umpath.conf.5" \
	 "$unitdir/umpathd.service" "$datadir/doc/umpath/examples/umpath.conf"; do
	[ -f "$D$f" ] || fail "$f not installed"
done
so=$D$libdir/libumpath.so
[ -f "$so.0.1.0" ] && [ ! -L "$so.0.1.0" ] || fail "libumpath.so.0.1.0 not installed as a file"
[ "$(readlink "$so.0" 2>/dev/null)" = libumpath.so.0.1.0 ] ||
	fail "libumpath.so.0 is not a link to libumpath.so.0.1.0: $(ls -l "$so.0" 2>&1)"
[ "$(readlink "$so" 2>/dev/null)" = libumpath.so.0 ] ||
	fail "libumpath.so is not a link to libumpath.so.0: $(ls -l "$so" 2>&1)"
soname=$(readelf -d "$so.0.1.0" 2>/dev/null | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libumpath.so.0 ] || fail "SONAME is '$soname', want libumpath.so.0"
# The programs link the library by its soname, not by a build path.
# (Outputs taken whole: grep -q at the end of a pipe may SIGPIPE its
# writer, a failure under pipefail.)
dyn=$(readelf -d "$D$sbindir/umpathd")
grep -q 'NEEDED.*\[libumpath.so.0\]' <<<"$dyn" || fail "umpathd does not need libumpath.so.0"
if grep -q 'R.*PATH.*'"$BUILD" <<<"$dyn"; then
	fail "the installed umpathd keeps the build directory in its RPATH"
fi
grep -q "^ExecStart=$sbindir/umpathd " "$D$unitdir/umpathd.service" ||
	fail "the unit's ExecStart is not $sbindir/umpathd: $(grep ExecStart "$D$unitdir/umpathd.service")"

# A program against the DESTDIR with pkg-config.  System directories are
# kept in the flags: with --prefix=/usr they are the DESTDIR's.
export PKG_CONFIG_PATH=$D$libdir/pkgconfig PKG_CONFIG_SYSROOT_DIR=$D
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
flags=$(pkg-config --cflags --libs umpath) || fail "pkg-config --cflags --libs umpath failed"
case " $flags " in
*" -I$D$includedir "*) ;;
*) fail "pkg-config's flags lack -I$D$includedir: $flags" ;;
esac
[ "$(pkg-config --modversion umpath)" = "$("$UMPATHD" --version | cut -d' ' -f2)" ] ||
	fail "umpath.pc's version is not umpathd's"
# A sanitized library needs its runtime linked first, into the program.
[ -z "$sanitize" ] || flags="-fsanitize=$sanitize $flags"
# shellcheck disable=SC2086
if $CC -std=c17 -Wall -Werror -o "$T/hello" "$(dirname "$0")/hello.c" $flags 2>"$T/cc.err"; then
	out=$(LD_LIBRARY_PATH=$D$libdir "$T/hello" 2>&1) || fail "hello: $out"
	[ "$out" = "hello 1048576" ] || fail "hello: got '$out', want 'hello 1048576'"
	libs=$(LD_LIBRARY_PATH=$D$libdir ldd "$T/hello")
	grep -q "libumpath.so.0 => $D$libdir/libumpath.so.0 " <<<"$libs" ||
		fail "hello does not run on the installed library: $libs"
else
	fail "$CC with pkg-config's flags ($flags): $(cat "$T/cc.err")"
fi

# The installed daemon and tool, on the installed library and the sample
# config: its defaults reach a map made by hand.
export LD_LIBRARY_PATH=$D$libdir
UMPATHD=$D$sbindir/umpathd
UMPATH=$D$bindir/umpath
start_daemon --config "$D$datadir/doc/umpath/examples/umpath.conf" --mem-store 1M:a
u create m '0 0 1 1 round-robin 0 1 1 mem:a 1' >/dev/null || fail "create on the sample config"
maps=$(u show maps --json 2>&1) || fail "show maps: $maps"
python3 - "$maps" <<'PY' || fail "the sample's defaults did not reach the map: $maps"
import json, sys
m = json.loads(sys.argv[1])["maps"][0]
sys.exit(0 if m["failback"] == "immediate" and m["no_path_retry"] == 12 else 1)
PY
stop_daemon || fail "umpathd on the sample config: exit status $?"
finish
