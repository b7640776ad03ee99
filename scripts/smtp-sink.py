#!/usr/bin/env python3
"""A real SMTP server on loopback for DomicileSMTP's tests (aiosmtpd).

Every message it accepts is appended to MESSAGES as one JSON line: the envelope (sender,
recipients, peer, whether TLS and AUTH were used) and the raw content, with the fields that
Python's own e-mail parser decodes from it (subject, From, To, text and HTML bodies), so the
tests check the client's encoding against an independent decoder.

Once listening it prints one line, {"port": N}, on standard output.

  smtp-sink.py MESSAGES [--starttls | --implicit-tls] [--require-starttls]
               [--auth USER:PASSWORD] [--rcpt-reply "550 5.1.1 ..."] [--reject-matching TEXT]
               [--pipelining] [--cert-dir DIR]

--rcpt-reply answers RCPT with that reply (the server's text gets the address appended, as real
servers echo it) for every recipient, or only for those containing --reject-matching.
"""
import argparse
import asyncio
import datetime
import ipaddress
import json
import os
import signal
import ssl
import sys
import threading

try:
    from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword
except ImportError:
    sys.stderr.write(
        "smtp-sink: the Python package aiosmtpd is not installed; "
        "run scripts/install-deps (or: python3 -m pip install aiosmtpd)\n"
    )
    sys.exit(3)

from email import policy
from email.parser import BytesParser


def make_certificate(directory):
    """A self-signed certificate for localhost and 127.0.0.1, written as cert.pem and key.pem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    os.makedirs(directory, exist_ok=True)
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context


class Authenticator:
    def __init__(self, username, password):
        self.username = username.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        session.sink_mechanism = mechanism
        ok = auth_data.login == self.username and auth_data.password == self.password
        return AuthResult(success=ok, handled=False, auth_data=auth_data.login.decode() if ok else None)


class Sink:
    def __init__(self, path, rcpt_reply, reject_matching, pipelining):
        self.path = path
        self.rcpt_reply = rcpt_reply
        self.reject_matching = reject_matching
        self.pipelining = pipelining
        self.resets = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses.insert(1, "250-PIPELINING")
            responses.insert(1, "250-ENHANCEDSTATUSCODES")
        return responses

    async def handle_RSET(self, server, session, envelope):
        self.resets += 1
        return "250 2.0.0 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_reply and (self.reject_matching is None or self.reject_matching in address):
            return f"{self.rcpt_reply} <{address}>"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        parsed = BytesParser(policy=policy.default).parsebytes(content)
        text = parsed.get_body(preferencelist=("plain",))
        html = parsed.get_body(preferencelist=("html",))
        record = {
            "mail_from": envelope.mail_from,
            "mail_options": envelope.mail_options,
            "rcpt_tos": envelope.rcpt_tos,
            "peer_port": session.peer[1] if session.peer else None,
            "helo": session.host_name,
            "tls": session.ssl is not None or getattr(server, "sink_implicit_tls", False),
            "auth_login": session.auth_data if session.authenticated else None,
            "auth_mechanism": getattr(session, "sink_mechanism", None),
            "resets_so_far": self.resets,
            "raw": content.decode("utf-8", errors="replace"),
            "subject": str(parsed["subject"]) if parsed["subject"] is not None else None,
            "from": str(parsed["from"]) if parsed["from"] is not None else None,
            "to": str(parsed["to"]) if parsed["to"] is not None else None,
            "content_type": parsed.get_content_type(),
            "text": text.get_content() if text is not None else None,
            "html": html.get_content() if html is not None else None,
        }
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        return "250 2.0.0 OK: queued as SINK%d" % (sum(1 for _ in open(self.path)))


async def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("messages")
    parser.add_argument("--starttls", action="store_true")
    parser.add_argument("--implicit-tls", action="store_true")
    parser.add_argument("--require-starttls", action="store_true")
    parser.add_argument("--auth", metavar="USER:PASSWORD")
    parser.add_argument("--rcpt-reply")
    parser.add_argument("--reject-matching")
    parser.add_argument("--pipelining", action="store_true")
    parser.add_argument("--cert-dir", default=None)
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true",
        help="stop when standard input closes, so a test process that dies takes the sink with it",
    )
    parser.add_argument("--verbose", action="store_true", help="aiosmtpd's log on standard error")
    args = parser.parse_args()
    import logging

    if args.verbose:
        logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)
    else:
        logging.getLogger("mail.log").setLevel(logging.ERROR)

    tls_context = None
    if args.starttls or args.implicit_tls:
        if not args.cert_dir:
            parser.error("--starttls and --implicit-tls need --cert-dir")
        tls_context = make_certificate(args.cert_dir)

    handler = Sink(args.messages, args.rcpt_reply, args.reject_matching, args.pipelining)
    options = dict(hostname="sink.test", decode_data=False)
    if args.starttls:
        options.update(tls_context=tls_context, require_starttls=args.require_starttls)
    if args.auth:
        username, _, password = args.auth.partition(":")
        # AUTH is offered only over TLS unless the server has no TLS at all.
        options.update(
            authenticator=Authenticator(username, password),
            auth_required=True,
            auth_require_tls=tls_context is not None,
        )

    loop = asyncio.get_running_loop()

    def factory():
        server = SMTP(handler, loop=loop, **options)
        server.sink_implicit_tls = args.implicit_tls
        return server

    server = await loop.create_server(
        factory, "127.0.0.1", 0, ssl=tls_context if args.implicit_tls else None
    )
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port}), flush=True)

    stop = asyncio.Event()
    # A parent may have spawned this process with these signals blocked (Foundation's Process
    # does, from a test thread); unblocked, SIGTERM stops the sink.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM, signal.SIGINT})
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if args.exit_on_stdin_eof:
        def watch_stdin():
            # os.read, not sys.stdin: a daemon thread inside the buffered reader's lock makes
            # the interpreter abort at exit.
            while os.read(0, 4096):
                pass
            loop.call_soon_threadsafe(stop.set)

        threading.Thread(target=watch_stdin, daemon=True).start()
    await stop.wait()
    server.close()


if __name__ == "__main__":
    import warnings

    warnings.simplefilter("ignore")
    asyncio.run(main())
