"""Minimal HTTPS/1.1 keep-alive client for the Python probes of scripts/bench.sh (stdlib only).

One blocking TLS connection to 127.0.0.1, certificate checked against the bench's CA file;
get() sends one GET and reads one whole response (Content-Length bodies only, which is what
portal-auth and the nginx reference answer).
"""
import socket
import ssl


def client_context(cafile):
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    return ctx


def connect(ctx, port, timeout=10.0):
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    # Small requests on a kept-alive connection: without it Nagle can add tens of ms.
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        return ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    except BaseException:
        raw.close()
        raise


def request_bytes(path):
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def get(conn, request):
    """Sends REQUEST, returns (status, keep_alive). Raises ConnectionError on a closed socket."""
    conn.sendall(request)
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed before the response head")
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise ConnectionError(f"answer {status} without Content-Length")
    need = int(headers["content-length"])
    while len(body) < need:
        chunk = conn.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed inside the response body")
        body += chunk
    return status, headers.get("connection", "").lower() != "close"
