#!/usr/bin/env bash
# Description: TLS on the NBD export (STARTTLS, GnuTLS).  With a PSK file
# (psktool) and the default --tls require: nbdinfo and qemu-img get in over
# nbds:// with the key, a client without TLS is refused with
# NBD_REP_ERR_TLS_REQD, data written by qemu-io over TLS reads back, and
# nbdcopy round-trips 16 MiB.  With X.509 (certtool: a CA and a server
# certificate) over TCP: nbdinfo verifies the server and gets in; with the
# CA beside the server's certificate, only clients with a certificate.  With
# --tls on, plain clients are let in too.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
need nbdinfo nbdcopy qemu-img qemu-io psktool certtool
MAP=(--mem-store 16M:a --map mp='0 0 1 1 round-robin 0 1 1 mem:a 1')
mkdir -p "$T/psk" "$T/x509"
psktool -u alice -p "$T/psk/keys.psk" >/dev/null
S="$T/nbd.sock"
TLSU="nbds+unix://alice@/mp?socket=$S&tls-psk-file=$T/psk/keys.psk"

start_daemon "${MAP[@]}" --nbd "unix:$S" --tls-psk "$T/psk/keys.psk"
[ "$(nbdinfo --size "$TLSU")" = 16777216 ] || fail "nbdinfo over TLS (PSK)"
if nbdinfo --size "nbd+unix:///mp?socket=$S" 2>"$T/plain.err"; then
  fail "a client without TLS got in under --tls require"
fi
grep -qi "requires TLS" "$T/plain.err" || fail "the refusal does not say TLS: $(cat "$T/plain.err")"
QOBJ=(--object "tls-creds-psk,id=tls0,endpoint=client,dir=$T/psk,username=alice")
qemu-img info "${QOBJ[@]}" --image-opts "driver=nbd,path=$S,export=mp,tls-creds=tls0" |
  grep -q "16 MiB" || fail "qemu-img over TLS (PSK)"
out=$(qemu-io "${QOBJ[@]}" --image-opts "driver=nbd,path=$S,export=mp,tls-creds=tls0" \
  -c 'write -P 0x5a 0 1M' -c 'flush' -c 'read -P 0x5a 0 1M' 2>&1)
! grep -qiE 'fail|error|mismatch|pattern' <<<"$out" || fail "qemu-io over TLS: $out"
head -c 16M /dev/urandom >"$T/src.img"
nbdcopy "$T/src.img" "$TLSU" && nbdcopy "$TLSU" "$T/back.img" || fail "nbdcopy over TLS"
cmp "$T/src.img" "$T/back.img" || fail "nbdcopy round trip over TLS differs"
# A wrong key is refused (the TLS handshake fails).
psktool -u alice -p "$T/wrong.psk" >/dev/null
if nbdinfo --size "nbds+unix://alice@/mp?socket=$S&tls-psk-file=$T/wrong.psk" 2>/dev/null; then
  fail "a wrong PSK got in"
fi
stop_daemon || fail "umpathd did not exit 0"

# X.509 over TCP: the client checks the server's certificate.
cd "$T/x509"
printf 'cn = umpath test CA\nca\ncert_signing_key\nexpiration_days = 2\n' >ca.info
certtool --generate-privkey --outfile ca-key.pem 2>/dev/null
certtool --generate-self-signed --load-privkey ca-key.pem --template ca.info \
  --outfile ca-cert.pem 2>/dev/null
printf 'cn = localhost\ndns_name = localhost\nip_address = 127.0.0.1\ntls_www_server\nencryption_key\nsigning_key\nexpiration_days = 2\n' >server.info
certtool --generate-privkey --outfile server-key.pem 2>/dev/null
certtool --generate-certificate --load-privkey server-key.pem --load-ca-certificate ca-cert.pem \
  --load-ca-privkey ca-key.pem --template server.info --outfile server-cert.pem 2>/dev/null
mkdir -p "$T/server" "$T/client"
cp server-cert.pem server-key.pem "$T/server/"	# no ca-cert.pem: no client certificates asked
cp ca-cert.pem "$T/client/"
cd - >/dev/null
PORT=$(free_port)
start_daemon "${MAP[@]}" --nbd "tcp:127.0.0.1:$PORT" --tls-creds "$T/server"
[ "$(nbdinfo --size "nbds://localhost:$PORT/mp?tls-certificates=$T/client")" = 16777216 ] ||
  fail "nbdinfo over TLS (X.509)"
stop_daemon || fail "umpathd did not exit 0"

# With ca-cert.pem beside the server's own, clients must show a certificate.
cd "$T/x509"
printf 'cn = alice\ntls_www_client\nencryption_key\nsigning_key\nexpiration_days = 2\n' >client.info
certtool --generate-privkey --outfile client-key.pem 2>/dev/null
certtool --generate-certificate --load-privkey client-key.pem --load-ca-certificate ca-cert.pem \
  --load-ca-privkey ca-key.pem --template client.info --outfile client-cert.pem 2>/dev/null
mkdir -p "$T/server-ca" "$T/client-cert"
cp server-cert.pem server-key.pem ca-cert.pem "$T/server-ca/"
cp ca-cert.pem client-cert.pem client-key.pem "$T/client-cert/"
cd - >/dev/null
PORT=$(free_port)
start_daemon "${MAP[@]}" --nbd "tcp:127.0.0.1:$PORT" --tls-creds "$T/server-ca"
[ "$(nbdinfo --size "nbds://localhost:$PORT/mp?tls-certificates=$T/client-cert")" = 16777216 ] ||
  fail "a client with a certificate from the CA was refused"
if nbdinfo --size "nbds://localhost:$PORT/mp?tls-certificates=$T/client" 2>/dev/null; then
  fail "a client without a certificate got in though ca-cert.pem asks for one"
fi
stop_daemon || fail "umpathd did not exit 0"

# --tls on: TLS offered, not required.
start_daemon "${MAP[@]}" --nbd "unix:$S" --tls-psk "$T/psk/keys.psk" --tls on
nbdinfo --size "nbd+unix:///mp?socket=$S" >/dev/null || fail "plain client refused under --tls on"
nbdinfo --size "$TLSU" >/dev/null || fail "TLS client refused under --tls on"
stop_daemon || fail "umpathd did not exit 0"
echo "nbd-tls: ok"
