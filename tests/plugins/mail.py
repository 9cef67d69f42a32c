"""A real SMTP server (aiosmtpd) on loopback, and what it received."""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass, field
from email import message_from_bytes, policy

import pytest
from aiosmtpd.controller import Controller


@dataclass
class Received:
    raw: bytes
    rcpt_tos: list[str]

    @property
    def message(self):
        return message_from_bytes(self.raw, policy=policy.default)

    def text(self) -> str:
        return self.message.get_body(preferencelist=("plain",)).get_content()

    def html(self) -> str:
        return self.message.get_body(preferencelist=("html",)).get_content()


@dataclass
class SmtpSink:
    port: int
    messages: list[Received] = field(default_factory=list)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # A mailbox named "refused…" is one the server turns down for good.
        if address.startswith("refused"):
            return "550 5.1.1 Mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.messages.append(Received(envelope.original_content, list(envelope.rcpt_tos)))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RestartableController(Controller):
    """aiosmtpd closes its event loop on stop(); a fresh one lets start() work again,
    so a test can take the server down and bring it back on the same port."""

    def start(self) -> None:
        if self.loop.is_closed():
            self.loop = asyncio.new_event_loop()
        super().start()


@pytest.fixture(scope="session")
def smtp_server():
    """A real SMTP server (aiosmtpd) on loopback, for the whole session."""
    sink = SmtpSink(port=free_port())
    controller = RestartableController(sink, hostname="127.0.0.1", port=sink.port)
    controller.start()
    yield sink, controller
    controller.stop()


@pytest.fixture
def smtp(smtp_server):
    sink, _controller = smtp_server
    sink.messages.clear()
    return sink
