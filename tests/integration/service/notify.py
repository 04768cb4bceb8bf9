"""notify.py - the service manager's side of sd_notify(3) for the tests
of this folder: a unix datagram socket given to umpathd as $NOTIFY_SOCKET,
each message with the sender's credentials (SO_PASSCRED).

usage: notify.py UMPATHD UMPATH DIR lifecycle|watchdog

Prints what it received; exit 0 pass, 1 fail."""
import os
import signal
import socket
import struct
import subprocess
import sys
import time

UMPATHD, UMPATH, T, MODE = sys.argv[1:5]
CTL = os.path.join(T, "ctl")
NBD = os.path.join(T, "nbd.sock")
METRICS = os.path.join(T, "metrics.sock")
CONF = os.path.join(T, "umpath.conf")
failed = False


def fail(msg):
    global failed
    print("FAIL:", msg)
    failed = True


def conf(maps, broken=False):
    with open(CONF + ".new", "w") as f:
        f.write("multipaths {\n")
        for m in maps:
            f.write("\tmultipath {\n\t\talias %s\n\t\tpaths mem:a\n\t}\n" % m)
        f.write("}\n")
        if broken:
            f.write("nonsense {\n")
    os.rename(CONF + ".new", CONF)


class Manager:
    def __init__(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.path = os.path.join(T, "notify")
        self.sock.bind(self.path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.msgs = []      # (monotonic time, pid, {key: value})
        self.proc = None

    def start(self, args, env=None):
        e = dict(os.environ)
        for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
            e.pop(k, None)
        e["NOTIFY_SOCKET"] = self.path
        e.update(env or {})
        self.log = open(os.path.join(T, "umpathd.log"), "ab")
        self.proc = subprocess.Popen([UMPATHD, "--control", CTL] + args, env=e,
                                     stdout=self.log, stderr=self.log)

    def recv(self, timeout, freeze=False):
        """One message, or None after timeout seconds; with freeze, umpathd
        is stopped (SIGSTOP) the moment it comes, so that what listens
        then is what listened when it was sent."""
        self.sock.settimeout(max(timeout, 0.001))
        try:
            data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        except socket.timeout:
            return None
        if freeze:
            os.kill(self.proc.pid, signal.SIGSTOP)
        pid = None
        for level, kind, body in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = struct.unpack("iII", body[:12])[0]
        fields = {}
        for line in data.decode(errors="replace").split("\n"):
            if "=" in line:
                k, v = line.split("=", 1)
                fields[k] = v
        print("notify from %s: %s" % (pid, data.decode(errors="replace").replace("\n", " | ")))
        if pid != self.proc.pid:
            fail("a message from pid %s, not umpathd's %d" % (pid, self.proc.pid))
        m = (time.monotonic(), pid, fields)
        self.msgs.append(m)
        return m

    def expect(self, key, value=None, timeout=20.0, skip=("WATCHDOG",)):
        """The next message other than skip ones must have key (=value)."""
        end = time.monotonic() + timeout
        while True:
            m = self.recv(end - time.monotonic())
            if m is None:
                fail("no %s=%s within %.0f s" % (key, value or "...", timeout))
                return None
            if any(k in m[2] for k in skip) and key not in m[2]:
                continue
            if key not in m[2] or (value is not None and m[2][key] != value):
                fail("expected %s=%s, got %s" % (key, value or "...", m[2]))
            return m

    def quiet(self, secs, skip=("WATCHDOG",)):
        """Nothing but skip ones for secs."""
        end = time.monotonic() + secs
        while True:
            m = self.recv(end - time.monotonic())
            if m is None:
                return
            if not any(k in m[2] for k in skip):
                fail("unexpected message %s" % m[2])

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def drain(self):
        """Drop what a stopped umpathd sent and nobody read yet (it is
        gone: everything it sent is in the socket already)."""
        self.sock.setblocking(False)
        try:
            while True:
                self.sock.recv(4096)
        except BlockingIOError:
            pass
        self.msgs.clear()


def connects(path, greeting=b""):
    """Whether a unix stream socket at path listens (and says greeting)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        got = b""
        while len(got) < len(greeting):
            b = s.recv(len(greeting) - len(got))
            if not b:
                break
            got += b
        return got == greeting
    except OSError as e:
        print("connect %s: %s" % (path, e))
        return False
    finally:
        s.close()


def umpath(*args):
    return subprocess.run([UMPATH, "-S", CTL] + list(args), capture_output=True, text=True)


def lifecycle(mgr):
    # Enough maps that a READY=1 sent before they are made, or before
    # the sockets listen, is caught by the connects at its arrival.
    maps = ["m%d" % i for i in range(150)]
    conf(maps)
    mgr.start(["--mem-store", "1M:a", "--config", CONF, "--nbd", "unix:" + NBD,
               "--metrics", "unix:" + METRICS])
    m = mgr.recv(60, freeze=True)
    if m is None or m[2].get("READY") != "1":
        fail("the first message is not READY=1: %s" % (m and m[2]))
        return
    # Stopped at READY=1: both sockets must listen already (a stopped
    # process's listening socket still takes connections into its backlog).
    if not connects(CTL):
        fail("READY=1 before the control socket listens")
    if not connects(NBD):
        fail("READY=1 before the NBD export listens")
    if not connects(METRICS):
        fail("READY=1 before the metrics endpoint listens")
    os.kill(mgr.proc.pid, signal.SIGCONT)
    if not connects(NBD, b"NBDMAGIC"):
        fail("the NBD export does not greet after READY=1")
    if m[2].get("STATUS") != "ready: 150 map(s)":
        fail("STATUS at READY: %r" % m[2].get("STATUS"))
    r = umpath("ls")
    if r.returncode != 0 or len(r.stdout.splitlines()) != 150:
        fail("umpath ls after READY=1: %d %r" % (r.returncode, r.stdout[:200]))

    # SIGHUP: RELOADING=1, then READY=1 once the new map is there.
    conf(maps + ["added"])
    mgr.proc.send_signal(signal.SIGHUP)
    m = mgr.expect("RELOADING", "1", skip=())
    if m and "MONOTONIC_USEC" not in m[2]:
        fail("RELOADING=1 without MONOTONIC_USEC")
    m = mgr.expect("READY", "1", skip=())
    if m:
        if umpath("info", "added").returncode != 0:
            fail("READY=1 after SIGHUP before the new map exists")
        if "reconfigured" not in m[2].get("STATUS", ""):
            fail("STATUS after the reload: %r" % m[2].get("STATUS"))

    # umpath reconfigure of a broken file: the same pair, the failure in
    # STATUS, and the daemon stays.
    conf(maps, broken=True)
    r = umpath("reconfigure")
    if r.returncode == 0:
        fail("umpath reconfigure of a broken file succeeded")
    mgr.expect("RELOADING", "1", skip=())
    m = mgr.expect("READY", "1", skip=())
    if m and "reconfigure failed" not in m[2].get("STATUS", ""):
        fail("STATUS after a failed reconfigure: %r" % m[2].get("STATUS"))

    # No watchdog asked for: no pings.
    mgr.quiet(0.5, skip=())

    # SIGTERM: STOPPING=1 with the bound, nothing after it, exit 0.
    mgr.proc.send_signal(signal.SIGTERM)
    m = mgr.expect("STOPPING", "1", skip=())
    if m and "EXTEND_TIMEOUT_USEC" not in m[2]:
        fail("STOPPING=1 without EXTEND_TIMEOUT_USEC")
    try:
        st = mgr.proc.wait(30)
    except subprocess.TimeoutExpired:
        fail("umpathd still runs 30 s after SIGTERM")
        return
    if st != 0:
        fail("exit status %d after SIGTERM" % st)
    mgr.quiet(0.2, skip=())


def watchdog(mgr):
    # WATCHDOG_USEC=300 ms: a ping every 150 ms from the daemon's loop.
    mgr.start(["--mem-store", "1M:a"], {"WATCHDOG_USEC": "300000"})
    t0 = time.monotonic()
    pings = 0
    ready = False
    while time.monotonic() - t0 < 3:
        m = mgr.recv(3 - (time.monotonic() - t0))
        if m is None:
            break
        pings += m[2].get("WATCHDOG") == "1"
        ready |= m[2].get("READY") == "1"
    if not ready:
        fail("no READY=1")
    # 20 expected; a loaded machine may delay some, not most.
    if pings < 8:
        fail("%d WATCHDOG=1 in 3 s with WATCHDOG_USEC=300000, want about 20" % pings)
    mgr.stop()
    mgr.drain()     # pings sent while we stopped reading, on a loaded machine

    # The watchdog is for another process (WATCHDOG_PID): no pings.
    mgr.start(["--mem-store", "1M:a"], {"WATCHDOG_USEC": "300000", "WATCHDOG_PID": "1"})
    mgr.expect("READY", "1", skip=())
    mgr.quiet(1.0, skip=())
    mgr.proc.send_signal(signal.SIGTERM)
    mgr.expect("STOPPING", "1", skip=())
    if mgr.proc.wait(30) != 0:
        fail("exit status %d after SIGTERM" % mgr.proc.returncode)


mgr = Manager()
try:
    {"lifecycle": lifecycle, "watchdog": watchdog}[MODE](mgr)
finally:
    mgr.stop()
sys.exit(1 if failed else 0)
