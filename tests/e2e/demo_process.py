"""Running ``blo-exchange demo`` as a user does, for end-to-end tests."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

READY_LINE = "Press Ctrl-C to stop."


class Demo:
    def __init__(self, data_dir: Path, env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.output = data_dir.parent / "demo.out"
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 90.0) -> dict[str, Any]:
        self.output.write_text("")
        with self.output.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "blo_exchange", "demo", "--data-dir", str(self.data_dir)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=None if self.env is None else os.environ | self.env,
            )
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.output.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("demo did not start:\n" + self.output.read_text())
            time.sleep(0.2)
        credentials: dict[str, Any] = json.loads(
            (self.data_dir / "demo-credentials.json").read_text()
        )
        return credentials

    def interrupt(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
