"""A real SMTP server for Switchboard's email tests (aiosmtpd).

STARTTLS is required (with the certificate the test made), AUTH PLAIN/LOGIN is required after it
(user `user`, password `pass`), and each accepted message is written to OUTDIR/<n>.eml.
Recipients starting with `tempfail` get 451 and those starting with `reject` get 550, so the
tests can see how a client treats transient and permanent answers.

Usage: smtp_peer.py PORT CERT KEY OUTDIR. Prints READY when it accepts connections, and stops
when its standard input closes.
"""

import asyncio
import itertools
import ssl
import sys
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Handler:
    def __init__(self, outdir: Path):
        self.outdir = outdir
        self.counter = itertools.count(1)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.startswith("tempfail"):
            return "451 4.3.0 Mailbox temporarily unavailable, try again later"
        if address.startswith("reject"):
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        n = next(self.counter)
        path = self.outdir / f"{n}.eml"
        path.write_bytes(envelope.original_content or envelope.content)
        (self.outdir / f"{n}.rcpt").write_text("\n".join(envelope.rcpt_tos))
        return f"250 2.0.0 Ok: queued as Q{n}"


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"user" and auth_data.password == b"pass"
    return AuthResult(success=ok, handled=False)


def main() -> None:
    port, cert, key, outdir = int(sys.argv[1]), sys.argv[2], sys.argv[3], Path(sys.argv[4])
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    controller = Controller(
        Handler(outdir),
        hostname="127.0.0.1",
        port=port,
        tls_context=context,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    controller.start()
    print("READY", flush=True)
    sys.stdin.read()
    controller.stop()


if __name__ == "__main__":
    main()
