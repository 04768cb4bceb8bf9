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
