"""A development mail sink for `make run`: an SMTP server on 127.0.0.1:8025
that saves every message under instance/mail/ and prints where it went."""

from __future__ import annotations

import os
import time
from email import message_from_bytes, policy
from pathlib import Path

from aiosmtpd.controller import Controller
from dotenv import load_dotenv

from . import PROJECT_ROOT


class SaveToFolder:
    def __init__(self, folder: Path):
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server, session, envelope):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = self.folder / f"{stamp}-{len(list(self.folder.iterdir())) + 1:04d}.eml"
        path.write_bytes(envelope.content)
        message = message_from_bytes(envelope.content, policy=policy.default)
        print(
            f"[mail] to {', '.join(envelope.rcpt_tos)}: {message['Subject']} -> {path}", flush=True
        )
        body = message.get_body(preferencelist=("plain",))
        if body is not None:
            lines = body.get_content().splitlines()
            print("\n".join("[mail]   " + line for line in lines), flush=True)
        return "250 Message accepted"


def main() -> None:
    load_dotenv(PROJECT_ROOT / ".env")  # the same MAIL_PORT the app reads
    instance = Path(os.environ.get("INSTANCE_PATH") or PROJECT_ROOT / "instance")
    port = int(os.environ.get("MAIL_PORT") or 8025)
    controller = Controller(SaveToFolder(instance / "mail"), hostname="127.0.0.1", port=port)
    controller.start()
    print(
        f"[mail] development mail sink on 127.0.0.1:{port}, saving to {instance / 'mail'}",
        flush=True,
    )
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        controller.stop()


if __name__ == "__main__":
    main()
