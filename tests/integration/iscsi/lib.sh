# lib.sh - shared by the iSCSI tests: the export tests' helpers (umpathd
# with its log in $T/daemon.log, fail ends the test) and private tgtd
# targets (tgt.sh).
#
# Sourced with the arguments of the test: UMPATHD UMPATH.

. "$(dirname "${BASH_SOURCE[0]}")/../export/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/tgt.sh"
export UMPATH_CONTROL=$SOCK

# The NBD URI of map $1 on the export started with --nbd unix:$T/nbd.sock.
nbd_uri()
{
	echo "nbd+unix:///$1?socket=$T/nbd.sock"
}

# path_field MAP PATH FIELD: a field of `umpath show paths --json`.
path_field()
{
	"$UMPATH" show paths "$1" --json |
		python3 -c 'import json,sys; d=json.load(sys.stdin)
for p in d["paths"]:
    if p["path"]==sys.argv[1]: print(p[sys.argv[2]])' "$2" "$3"
}

# lun_two_portals SIZE [UMPATHD_ARGS...]: $IMG of SIZE served by tgtd "a"
# (TGT_BLOCKSIZE honoured) as one LUN through its two portals, $A and $B;
# umpathd (io_timeout 5 s, NBD on $T/nbd.sock, more ARGS) with the map
# "lun" round-robin over both; $U its NBD URI.
lun_two_portals()
{
	IMG=$T/lun.img
	truncate -s "$1" "$IMG"
	shift
	tgt_start a "$IMG"
	A=$TGT_URL1_a B=$TGT_URL2_a
	start_daemon --io-timeout 5 "$@" --nbd "unix:$T/nbd.sock" \
		--map lun="0 0 1 1 round-robin 0 2 1 $A 1 $B 1"
	U=$(nbd_uri lun)
}
