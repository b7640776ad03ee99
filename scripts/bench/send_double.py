#!/usr/bin/env python3
"""Provider doubles for scripts/bench-send, on loopback, recording when each message arrives.

  send_double.py ssp    a private-SSP SMS endpoint (the contract of /work/shared/reference/contracts.md):
                        POST {"version":"1.0","smsData":{toNumber,fromNumber,body},"metadata":{messageId,…}}
                        → 200 {"status":"sms_accepted"}; HTTP/1.1 keep-alive, a minimal parser
  send_double.py smtp   an SMTP server (aiosmtpd, no TLS, no AUTH) that takes every message;
                        the message id is read back from its Message-ID header <id@domain>
  send_double.py hold   accepts connections, reads what comes and never answers: a provider
                        that parks the dispatcher (HTTP waits 15 s, SMTP waits 60 s for a greeting)

Each records (message id, time.monotonic() of receipt): CLOCK_MONOTONIC is the same clock in
every process of this machine, so the load client subtracts its own accept times from these.
A malformed request (contract fields missing) or a body still holding "{{" (not rendered) is
counted as bad and, for ssp, answered sms_rejected 9988.

Once listening it prints one line on standard output: {"port": N, "control": M}. The control
port answers GET /stats (JSON: received, distinct, bad, connections, requests, cpu_seconds,
first, last) and GET /records (text: one "message_id monotonic_time" line a receipt).
SIGTERM or SIGINT stops it.
"""
import asyncio
import json
import re
import signal
import sys
import time


class Recorder:
    """The receipts of this process, shared by the provider side and the control side."""

    def __init__(self):
        self.times = []        # receipt times, in arrival order
        self.ids = []          # message ids, same order
        self.seen = set()
        self.bad = 0
        self.bad_samples = []
        self.connections = 0
        self.requests = 0

    def receive(self, message_id, problem=None):
        now = time.monotonic()
        if problem is not None:
            self.bad += 1
            if len(self.bad_samples) < 3:
                self.bad_samples.append(problem)
        if message_id is not None:
            self.times.append(now)
            self.ids.append(message_id)
            self.seen.add(message_id)

    def stats(self):
        return {
            "received": len(self.ids), "distinct": len(self.seen), "bad": self.bad, "bad_samples": self.bad_samples,
            "connections": self.connections, "requests": self.requests, "cpu_seconds": time.process_time(),
            "first": self.times[0] if self.times else None, "last": self.times[-1] if self.times else None,
        }

    def records(self):
        return "".join(f"{i} {t:.6f}\n" for i, t in zip(self.ids, self.times)).encode()


REASONS = {200: b"OK", 400: b"Bad Request", 404: b"Not Found", 411: b"Length Required"}


class HTTPProtocol(asyncio.Protocol):
    """HTTP/1.1 with keep-alive and Content-Length bodies: enough for AsyncHTTPClient and curl.
    handler(method, target, body) -> (status, body bytes, content type)."""

    def __init__(self, handler, recorder):
        self.handler = handler
        self.recorder = recorder
        self.buffer = bytearray()
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        self.recorder.connections += 1

    def data_received(self, data):
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            lines = bytes(self.buffer[:end]).split(b"\r\n")
            method, target, _ = lines[0].split(b" ", 2)
            length, close = 0, False
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection":
                    close = value.strip().lower() == b"close"
                elif name == b"transfer-encoding":
                    self.respond(411, b'{"error":"send a Content-Length"}', b"application/json", True)
                    return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4:end + 4 + length])
            del self.buffer[:end + 4 + length]
            self.recorder.requests += 1
            status, answer, content_type = self.handler(method.decode(), target.decode(), body)
            self.respond(status, answer, content_type, close)
            if close:
                return

    def respond(self, status, body, content_type, close):
        self.transport.write(b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n%s\r\n%s" % (
            status, REASONS.get(status, b"Status"), content_type, len(body), b"Connection: close\r\n" if close else b"", body))
        if close:
            self.transport.close()


class HoldProtocol(asyncio.Protocol):
    """Never answers: the caller waits for its own timeout."""

    def __init__(self, recorder):
        self.recorder = recorder

    def connection_made(self, transport):
        self.recorder.connections += 1

    def data_received(self, data):
        self.recorder.requests += data.count(b"\r\n\r\n")


ACCEPTED = b'{"status":"sms_accepted"}'
REJECTED = b'{"status":"sms_rejected","statusCode":9988,"message":"malformed request"}'


def ssp_handler(recorder):
    def handle(method, target, body):
        if method != "POST":
            return 404, b"{}", b"application/json"
        try:
            request = json.loads(body)
            sms, metadata = request["smsData"], request["metadata"]
            message_id = metadata["messageId"]
            problem = None
            if request.get("version") != "1.0" or not sms.get("toNumber", "").startswith("+") or not sms.get("body") \
                    or "fromNumber" not in sms or metadata.get("campaignType") not in ("PROMOTIONAL", "TRANSACTIONAL") \
                    or not metadata.get("timestamp"):
                problem = "contract fields missing or wrong: " + body[:200].decode(errors="replace")
            elif "{{" in sms["body"]:
                problem = "body not rendered"
        except (ValueError, KeyError, TypeError, AttributeError):
            recorder.receive(None, "not the private SSP shape: " + body[:200].decode(errors="replace"))
            return 400, REJECTED, b"application/json"
        recorder.receive(message_id, problem)
        return (200, ACCEPTED, b"application/json") if problem is None else (400, REJECTED, b"application/json")
    return handle


def control_handler(recorder):
    def handle(method, target, body):
        if target == "/stats":
            return 200, json.dumps(recorder.stats()).encode(), b"application/json"
        if target == "/records":
            return 200, recorder.records(), b"text/plain"
        return 404, b"{}", b"application/json"
    return handle


MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^@>\s]+)@", re.IGNORECASE | re.MULTILINE)


async def start_smtp(loop, recorder):
    try:
        from aiosmtpd.smtp import SMTP
    except ImportError:
        sys.stderr.write("send_double: the Python package aiosmtpd is missing; run scripts/install-deps\n")
        sys.exit(3)
    import logging
    logging.getLogger("mail.log").setLevel(logging.ERROR)

    class Sink:
        async def handle_DATA(self, server, session, envelope):
            content = envelope.original_content or envelope.content
            found = MESSAGE_ID.search(content)
            problem = None if found else "no Message-ID <id@domain>"
            if found and b"{{" in content:
                problem = "content not rendered"
            if not envelope.rcpt_tos or "@" not in envelope.rcpt_tos[0]:
                problem = "no recipient"
            recorder.receive(found.group(1).decode() if found else None, problem)
            return "250 2.0.0 OK"

    handler = Sink()

    def factory():
        recorder.connections += 1
        return SMTP(handler, hostname="sink.test", decode_data=False, loop=loop)

    return await loop.create_server(factory, "127.0.0.1", 0, backlog=1024)


async def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("ssp", "smtp", "hold"):
        sys.exit("usage: send_double.py ssp|smtp|hold")
    mode = sys.argv[1]
    loop = asyncio.get_running_loop()
    recorder = Recorder()
    if mode == "ssp":
        server = await loop.create_server(lambda: HTTPProtocol(ssp_handler(recorder), recorder), "127.0.0.1", 0, backlog=1024)
    elif mode == "smtp":
        server = await start_smtp(loop, recorder)
    else:
        server = await loop.create_server(lambda: HoldProtocol(recorder), "127.0.0.1", 0, backlog=1024)
    control = await loop.create_server(lambda: HTTPProtocol(control_handler(recorder), Recorder()), "127.0.0.1", 0)
    print(json.dumps({"port": server.sockets[0].getsockname()[1], "control": control.sockets[0].getsockname()[1]}), flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    server.close()
    control.close()


if __name__ == "__main__":
    asyncio.run(main())
