"""``blo-exchange terminal``: alerts queued on the terminal while its node is down reach the
recipient once the node is back, exactly once, and survive the terminal's own restarts (every
command below is a new process)."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

from tests.faults.checker import check
from tests.faults.harness import KG, FaultSystem, alert_body


def terminal(outbox: Path, *args: str, url: str = "", token: str = "") -> tuple[int, str]:
    command = [sys.executable, "-m", "blo_exchange", "terminal", *args, "--outbox", str(outbox)]
    if url:
        command += ["--url", url, "--token", token]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    return done.returncode, done.stdout + done.stderr


def statuses(outbox: Path) -> dict[str, dict[str, object]]:
    code, out = terminal(outbox, "status", "--json")
    assert code == 0, out
    return {row["key"]: row for row in map(json.loads, out.splitlines())}


async def test_queued_while_the_node_is_down_delivered_once_when_it_is_up(
    fault_system: FaultSystem, tmp_path: Path
) -> None:
    await fault_system.heal()
    kg = fault_system.node(KG)
    node = {"url": kg["url"], "token": kg["terminal_token"]}
    outbox = tmp_path / "outbox.sqlite3"
    files = []
    for i in range(3):
        path = tmp_path / f"alert-{i}.json"
        path.write_text(json.dumps(alert_body(f"outbox-{tmp_path.name}-{i}")))
        files.append(str(path))
    red = copy.deepcopy(alert_body(f"outbox-{tmp_path.name}-red"))
    red["tlp"] = "RED"  # no agreement covers it: refused, and recorded as such
    (tmp_path / "red.json").write_text(json.dumps(red))

    fault_system.processes.kill(KG)
    try:
        code, out = terminal(outbox, "send", *files, str(tmp_path / "red.json"), **node)
        assert code == 3, out  # pending: the node is down
        assert out.count("queued outbox-") == 4
    finally:
        await fault_system.restart(KG)

    code, out = terminal(outbox, "flush", **node)
    assert code == 4, out  # the RED one is refused
    assert "accepted 3, refused 1, pending 0" in out
    # The same files again (was it sent before the reboot?): nothing new is queued or posted.
    code, out = terminal(outbox, "send", *files, **node)
    assert code == 0, out  # nothing refused by this run (the old refusal is listed)
    assert out.count("already queued") == 3

    rows = statuses(outbox)
    refused = [row for row in rows.values() if row["state"] == "refused"]
    assert [row["status"] for row in refused] == [422]
    acknowledged = {}
    for key, row in rows.items():
        if row["state"] == "accepted":
            answer = row["answer"]
            assert isinstance(answer, dict)
            acknowledged[key] = str(answer["alert_id"])
    assert len(acknowledged) == 3

    feed = await fault_system.feed(f"outbox-{tmp_path.name}")
    verdict = check(acknowledged, [(a, "outbox-" + k) for a, k in feed], [])
    assert verdict.delivered == 3
    assert not verdict.duplicates
    assert not verdict.lost
