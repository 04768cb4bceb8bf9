#!/usr/bin/env bash
# Description: `umpath remove mp --force` while a FUSE client holds $MNT/mp
# open (export/nbd-remove-force does the same over NBD): the map's table
# becomes one that fails every I/O, so reads and writes on the open file
# get EIO from then on and none reaches the image; the name leaves the
# registry and the directory at once, a new map of that name serves a new
# open while the old file still gets EIO, and the old map is freed when
# the client closes its file.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need python3

start_daemon

# The client: holds the file open and does its I/O with pread/pwrite on
# that one descriptor; between steps it runs the CLI.
python3 - "$MNT/mp" "$UMPATH" "$SOCK" "$IMG" "$LOG" "$TABLE" <<'PY' || fail "the FUSE client's checks failed"
import errno, os, subprocess, sys, time
path, umpath, sock, img, log, table = sys.argv[1:]

def u(*args):
    return subprocess.run([umpath, "-S", sock, *args], capture_output=True, text=True)

def check(ok, what):
    if not ok:
        print("FAIL:", what, file=sys.stderr)
        sys.exit(1)

def eio(fn, what):
    try:
        fn()
    except OSError as e:
        check(e.errno == errno.EIO, "%s: %s, want EIO" % (what, e))
        return
    check(False, "%s succeeded after remove --force" % what)

fd = os.open(path, os.O_RDWR)
os.pwrite(fd, b"\xab" * 65536, 0)
check(os.pread(fd, 65536, 0) == b"\xab" * 65536, "read back before the remove")
check(u("ls").stdout.split("\t")[2].strip() == "1", "the open count: %r" % u("ls").stdout)

r = u("remove", "mp")
check(r.returncode != 0, "remove without --force removed an open map")
r = u("remove", "mp", "--force")
check(r.returncode == 0, "remove --force: %s" % r.stderr)
check(not u("ls").stdout.startswith("mp\t"), "still listed: %r" % u("ls").stdout)
check("mp" not in os.listdir(os.path.dirname(path)), "the file is still in the directory")

# Every I/O on the open file fails from now on, and none reaches the image.
eio(lambda: os.pread(fd, 65536, 0), "read")
eio(lambda: os.pwrite(fd, b"\xcd" * 65536, 0), "write")
eio(lambda: os.pread(fd, 4096, 1 << 20), "read elsewhere")
with open(img, "rb") as f:
    check(f.read(65536) == b"\xab" * 65536, "the image changed after remove --force")

# A new map of the same name on the same image: its file holds the old
# writes only, and works, while the old descriptor still gets EIO.
r = u("create", "mp", table)
check(r.returncode == 0, "create after remove --force: %s" % r.stderr)
for _ in range(100):
    if os.path.exists(path):
        break
    time.sleep(0.05)
fd2 = os.open(path, os.O_RDWR)
check(os.pread(fd2, 65536, 0) == b"\xab" * 65536, "the new map's data")
os.pwrite(fd2, b"\x11" * 4096, 65536)
os.close(fd2)
eio(lambda: os.pread(fd, 4096, 0), "read on the old file after the new map came")

# The client lets go: the old map is freed.
os.close(fd)
deadline = time.monotonic() + 30
while "map mp: freed after remove --force" not in open(log).read():
    check(time.monotonic() < deadline, "the removed map was not freed when its client closed")
    time.sleep(0.05)
PY
u table mp | grep -qF "$IMG" || fail "the new map changed: $(u table mp)"
finish
