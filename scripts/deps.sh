#!/bin/sh
# deps.sh - make sure the Debian packages umpath builds and tests with are
# installed.  As root, installs what is missing with apt-get; otherwise
# names the packages and fails.
set -eu

# command-or-pkgconfig-module-or-file : Debian package (clang and its
# libFuzzer runtime, only Recommended by clang, for make fuzz; qemu,
# busybox, cpio, xz and kmod for the tests/vm/ guest, whose kernel
# linux-vm/run fetches with apt on its first run; nbd-client, dmsetup and
# the rest are what the guest runs, from this machine's file system;
# libmicrohttpd serves --metrics, and prometheus and its Python client are
# the peers of tests/integration/metrics; gnuplot-nox draws
# bench/failover.sh's plot)
need="
cmd:cc:gcc
cmd:meson:meson
cmd:ninja:ninja-build
cmd:pkg-config:pkg-config
pc:nettle:nettle-dev
pc:liburing:liburing-dev
pc:libnbd:libnbd-dev
pc:fuse3:libfuse3-dev
pc:gnutls:libgnutls28-dev
pc:libiscsi:libiscsi-dev
pc:libsystemd:libsystemd-dev
pc:libmicrohttpd:libmicrohttpd-dev
cmd:iscsi-inq:libiscsi-bin
cmd:tgtd:tgt
cmd:tgtadm:tgt
cmd:psktool:gnutls-bin
cmd:certtool:gnutls-bin
cmd:nbdkit:nbdkit
cmd:qemu-img:qemu-utils
cmd:qemu-io:qemu-utils
cmd:fio:fio
cmd:gnuplot:gnuplot-nox
cmd:nbdinfo:libnbd-bin
cmd:nbdcopy:libnbd-bin
cmd:python3:python3
glob:/usr/lib/python3/dist-packages/prometheus_client/parser.py:python3-prometheus-client
cmd:prometheus:prometheus
cmd:fusermount3:fuse3
cmd:mkfs.ext4:e2fsprogs
cmd:losetup:mount
cmd:fallocate:util-linux
cmd:nbd-client:nbd-client
cmd:blkdiscard:util-linux
cmd:dmsetup:dmsetup
cmd:ip:iproute2
cmd:qemu-system-x86_64:qemu-system-x86
cmd:busybox:busybox-static
cmd:cpio:cpio
cmd:xz:xz-utils
cmd:modprobe:kmod
cmd:clang:clang
cmd:valgrind:valgrind
glob:/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a:libclang-rt-dev
glob:/usr/lib/*/qemu/block-iscsi.so:qemu-block-extra
"
missing=""
for item in $need; do
  kind=${item%%:*}; rest=${item#*:}; what=${rest%%:*}; pkg=${rest#*:}
  case $kind in
    cmd) command -v "$what" >/dev/null 2>&1 && continue ;;
    pc) command -v pkg-config >/dev/null 2>&1 && pkg-config --exists "$what" 2>/dev/null && continue ;;
    glob) for f in $what; do [ -e "$f" ] && continue 2; done ;;
  esac
  case " $missing " in *" $pkg "*) ;; *) missing="$missing $pkg" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "umpath needs these Debian packages:$missing" >&2
  echo "install them (sudo apt-get install$missing) or run this as root" >&2
  exit 1
fi
echo "installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
