# lib.sh - shared by the installation tests: the helpers of ../common.sh,
# and `meson install` of the build directory into a DESTDIR of the test's
# own ($D), with the directories the build was configured with.
#
# Sourced with the arguments of the test: UMPATHD UMPATH BUILDDIR.

. "$(dirname "${BASH_SOURCE[0]}")/../common.sh"

BUILD=${3:?usage: $0 UMPATHD UMPATH BUILDDIR}
D=$T/root

need meson python3

# prefix, bindir, sbindir, libdir, includedir, mandir, datadir, sysconfdir,
# unitdir: absolute, as `meson configure` has them; sanitize: the build's
# -fsanitize= list, or empty.
eval "$(meson introspect --buildoptions "$BUILD" | python3 -c '
import json, os, sys
o = {x["name"]: x["value"] for x in json.load(sys.stdin)}
p = o["prefix"]
for k in ("bindir", "sbindir", "libdir", "includedir", "mandir", "datadir", "sysconfdir"):
    print("%s=%s" % (k, os.path.join(p, o[k])))
u = o.get("systemdsystemunitdir") or os.path.join(p, "lib/systemd/system")
print("prefix=%s\nunitdir=%s" % (p, u))
print("sanitize=%s" % ("" if o["b_sanitize"] == "none" else o["b_sanitize"]))
')"

# meson_install: the build's install step into $D (no rebuild: the test
# runs on what meson test built).
meson_install()
{
	if ! DESTDIR= meson install -C "$BUILD" --destdir "$D" --no-rebuild >"$T/install.log" 2>&1; then
		cat "$T/install.log"
		fail "meson install --destdir failed"
		finish
	fi
}
