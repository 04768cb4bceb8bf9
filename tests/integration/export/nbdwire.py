"""nbdwire.py - a small NBD client speaking the protocol by hand, for tests
that need what real clients never do: thousands of requests in flight
before any reply is read, replies never read, handshakes left half-done.
Simple replies only (no structured replies are negotiated)."""
import socket
import struct

NBDMAGIC, IHAVEOPT, REPMAGIC = 0x4E42444D41474943, 0x49484156454F5054, 0x3E889045565A9
REQ, REPLY = 0x25609513, 0x67446698
OPT_EXPORT_NAME, OPT_ABORT, OPT_LIST, OPT_STARTTLS, OPT_INFO, OPT_GO = 1, 2, 3, 5, 6, 7
REP_ACK, REP_INFO = 1, 3
CMD_READ, CMD_WRITE, CMD_DISC, CMD_FLUSH, CMD_TRIM, CMD_WRITE_ZEROES = 0, 1, 2, 3, 4, 6
FLAG_FUA = 1


def recvn(s, n):
    """Exactly n bytes, or EOFError."""
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        k = s.recv_into(view[got:], n - got)
        if not k:
            raise EOFError("closed after %d of %d bytes" % (got, n))
        got += k
    return bytes(buf)


def dial(where, timeout=10):
    """A socket to where: a unix socket path, or (host, port)."""
    if isinstance(where, tuple):
        s = socket.create_connection(where, timeout=timeout)
    else:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(timeout)
        s.connect(where)
    return s


def greet(s):
    """Read the server's greeting, answer fixed newstyle + no zeroes."""
    magic, ihave, _ = struct.unpack(">QQH", recvn(s, 18))
    assert magic == NBDMAGIC and ihave == IHAVEOPT, "bad greeting"
    s.sendall(struct.pack(">I", 3))


def option(s, o, data=b""):
    s.sendall(struct.pack(">QII", IHAVEOPT, o, len(data)) + data)


def option_reply(s):
    magic, o, t, ln = struct.unpack(">QIII", recvn(s, 20))
    assert magic == REPMAGIC, hex(magic)
    return o, t, recvn(s, ln)


def go(s, name):
    """NBD_OPT_GO: the export's size, or raise."""
    name = name.encode()
    option(s, OPT_GO, struct.pack(">I", len(name)) + name + struct.pack(">H", 0))
    size = None
    while True:
        _, t, data = option_reply(s)
        if t == REP_INFO and struct.unpack(">H", data[:2])[0] == 0:
            size = struct.unpack(">QH", data[2:12])[0]
        elif t == REP_ACK:
            return size
        else:
            raise RuntimeError("GO refused: reply type 0x%x %r" % (t, data))


def connect(where, name, timeout=10):
    """A socket in the transmission phase of export name, and its size."""
    s = dial(where, timeout)
    greet(s)
    return s, go(s, name)


def request(typ, off, ln, cookie, flags=0, payload=b""):
    return struct.pack(">IHHQQI", REQ, flags, typ, cookie, off, ln) + payload


def reply_header(s):
    """(error, cookie) of the next simple reply."""
    magic, err, cookie = struct.unpack(">IIQ", recvn(s, 16))
    assert magic == REPLY, "bad reply magic 0x%x" % magic
    return err, cookie
