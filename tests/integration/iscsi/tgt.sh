# tgt.sh - private tgtd instances for the iSCSI tests.  Source it after
# ../common.sh (directly or through a suite's lib.sh): it needs $T,
# free_port, wait_for, skip and BG_PIDS, and chains its teardown in front of
# suite_cleanup, so every tgtd started here is gone when the test exits.
#
#   tgt_start NAME IMG [IQN]  tgtd serving IMG as LUN 1 of target IQN
#                             (default iqn.2026-12.io.umpath:NAME), every
#                             initiator allowed, on two portals:
#                             127.0.0.1:PORT and 127.0.0.2:PORT.  Sets
#                             TGT_PID_NAME, TGT_CTL_NAME, TGT_PORT_NAME,
#                             TGT_IQN_NAME, TGT_URL1_NAME, TGT_URL2_NAME (the
#                             LUN's iscsi:// URL through each portal).
#                             With TGT_BLOCKSIZE set, the LUN has
#                             logical blocks of that many bytes.
#                             Exits 77 when tgtd cannot start (not
#                             installed, or not allowed to open its control
#                             socket in /var/run/tgtd).
#   tgt_adm NAME ARGS...      tgtadm --lld iscsi on NAME's control port
#   tgt_drop_sessions NAME    drop every session's connection (as a
#                             target that resets them); prints how many
#   tgt_stop NAME             offline, delete the target and the system;
#                             SIGKILL if tgtd is stuck (tgtd ignores SIGTERM while it has
#                             targets)
#   tgt_stop_all              tgt_stop of every instance (run at exit)
#
# tgtd's output is $T/tgtd-NAME.log.

TGT_NAMES=()

tgt_adm()
{
	local name=$1 ctl

	shift
	ctl=TGT_CTL_$name
	tgtadm -C "${!ctl}" --lld iscsi "$@"
}

tgt_start()
{
	local name=$1 img=$2 iqn=${3:-iqn.2026-12.io.umpath:$1} port ctl pid try

	command -v tgtd >/dev/null 2>&1 || skip "tgtd not installed (Debian package tgt)"
	command -v tgtadm >/dev/null 2>&1 || skip "tgtadm not installed (Debian package tgt)"
	mkdir -p /var/run/tgtd 2>/dev/null || skip "tgtd cannot start: cannot create /var/run/tgtd (not root?)"
	for try in 1 2 3; do
		port=$(free_port)
		# tgtd's control channel is /var/run/tgtd/socket.N, N < 32768:
		# one no running tgtd holds (a taken one makes tgtd exit).
		ctl=$((1024 + RANDOM % 31000))
		tgtd -f --iscsi portal=127.0.0.1:"$port" -C "$ctl" >"$T/tgtd-$name.log" 2>&1 &
		pid=$!
		if wait_for 5 tgtadm -C "$ctl" --lld iscsi --op show --mode sys >/dev/null 2>&1 &&
		   kill -0 "$pid" 2>/dev/null; then
			break
		fi
		kill -KILL "$pid" 2>/dev/null || true
		{ wait "$pid"; } 2>/dev/null || true
		pid=
	done
	[ -n "$pid" ] || skip "tgtd cannot start: $(tail -3 "$T/tgtd-$name.log")"
	BG_PIDS+=("$pid")
	TGT_NAMES+=("$name")
	printf -v "TGT_PID_$name" %s "$pid"
	printf -v "TGT_CTL_$name" %s "$ctl"
	printf -v "TGT_PORT_$name" %s "$port"
	printf -v "TGT_IQN_$name" %s "$iqn"
	printf -v "TGT_URL1_$name" %s "iscsi://127.0.0.1:$port/$iqn/1"
	printf -v "TGT_URL2_$name" %s "iscsi://127.0.0.2:$port/$iqn/1"
	tgt_adm "$name" --op new --mode portal --param portal=127.0.0.2:"$port" &&
	tgt_adm "$name" --op new --mode target --tid 1 -T "$iqn" &&
	tgt_adm "$name" --op new --mode logicalunit --tid 1 --lun 1 -b "$img" \
		${TGT_BLOCKSIZE:+--blocksize "$TGT_BLOCKSIZE"} &&
	tgt_adm "$name" --op bind --mode target --tid 1 -I ALL ||
		{ echo "FAIL: tgtd $name: setting up the target failed"; exit 1; }
}

tgt_drop_sessions()
{
	local name=$1 sid n=0

	for sid in $(tgt_adm "$name" --op show --mode target | awk '/I_T nexus:/ {print $3}'); do
		tgt_adm "$name" --op delete --mode conn --tid 1 --sid "$sid" --cid 0 && n=$((n + 1))
	done
	echo "$n"
}

tgt_stop()
{
	local name=$1 pidv=TGT_PID_$1 ctlv=TGT_CTL_$1 pid ctl

	pid=${!pidv:-}
	ctl=${!ctlv:-}
	[ -n "$pid" ] || return 0
	if kill -0 "$pid" 2>/dev/null; then
		kill -CONT "$pid" 2>/dev/null	# a test may have stopped it
		timeout 5 tgtadm -C "$ctl" --op update --mode sys --name State -v offline >/dev/null 2>&1
		timeout 5 tgtadm -C "$ctl" --lld iscsi --op delete --mode target --tid 1 --force \
			>/dev/null 2>&1
		timeout 5 tgtadm -C "$ctl" --op delete --mode system >/dev/null 2>&1
		wait_for 5 exited "$pid" || kill -KILL "$pid" 2>/dev/null
	fi
	{ wait "$pid"; } 2>/dev/null || true
	rm -f "/var/run/tgtd/socket.$ctl" "/var/run/tgtd/socket.$ctl.lock"
	printf -v "TGT_PID_$name" %s ""
}

tgt_stop_all()
{
	local n

	for n in "${TGT_NAMES[@]}"; do
		tgt_stop "$n"
	done
}

# Chain the teardown in front of the suite's own.
eval "$(declare -f suite_cleanup | sed '1s/suite_cleanup/tgt_prev_suite_cleanup/')"
suite_cleanup()
{
	tgt_stop_all
	tgt_prev_suite_cleanup
}
