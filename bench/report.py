"""The table ``make bench`` prints: each figure beside its same-run baseline, ratio and goal."""

from __future__ import annotations

from typing import Any

from bench.accept import SHORT
from bench.e2e import TODAY_RPS, machine_text
from bench.harness import KG, TJ

__all__ = ["print_table", "table"]


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(
        scenario: str, value: str, baseline: str, ratio: Any, goal: str, ok: bool | None
    ) -> None:
        verdict = "-" if ok is None else ("PASS" if ok else "FAIL")
        rows.append((scenario, value, baseline, _fmt(ratio, 2), goal, verdict))

    for label, entry in results.get("accept", {}).items():
        bare = entry["bare"]
        row(f"1 bare endpoint {label}", f"{bare['rps']:.0f} req/s", "-", None, "-", None)
        for suite, run in entry["suites"].items():
            name = f"1 accept {label} {SHORT[suite]}"
            value = f"{run['rps']:.0f} req/s p99 {_fmt(run['latency']['p99_ms'], 0)} ms"
            row(name, value, f"bare {bare['rps']:.0f}", run["ratio_to_bare"], "-", None)
            c = run["composed"]
            row(
                name,
                value,
                f"composed {run['composed_limit_rps']:.0f} (bare {c['bare_ms']:.2f}+seal "
                f"{c['seal_ms']:.2f}+pub {c['publish_ms']:.2f} ms /{c['parallelism']:.2f})",
                run["ratio_to_composed"],
                ">= 0.8",
                run["ratio_to_composed"] >= 0.8,
            )
    db = results.get("raw", {}).get("db_commit", {})
    if db:
        c = db["concurrent"]
        row(
            "1 raw Postgres commits (20 conns)",
            f"{c['commits_per_s']:.0f}/s p50 {_fmt(c['p50_ms'])} p99 {_fmt(c['p99_ms'])} ms",
            f"serial p50 {_fmt(db['serial']['p50_ms'])} ms",
            None,
            "(2 commits per accept)",
            None,
        )
    hop = results.get("raw", {}).get("publish", {}).get("hop", {})
    hop_p99 = hop.get("p99_ms")
    hop_text = f"raw bus hop p99 {_fmt(hop_p99)} ms"
    system = {
        k: v
        for k, v in results.get("system", {}).items()
        if not (isinstance(v, dict) and "error" in v)
    }
    for name, v in results.get("system", {}).items():
        if isinstance(v, dict) and "error" in v:
            row(f"{name}: did not complete", v["error"][:80], "-", None, "-", False)
    if "delivery" in system:
        d = system["delivery"]["sse"]["latency"]
        rate = system["delivery"]["open-alerts"]
        row(
            f"2 delivery p50/p99 @ {rate['rate']:.0f}/s (got {rate['achieved_rps']:.0f}/s)",
            f"{_fmt(d['p50_ms'])} / {_fmt(d['p99_ms'])} ms",
            hop_text,
            (d["p99_ms"] or 0) / hop_p99 if hop_p99 else None,
            "p99 <= 50 ms",
            d["p99_ms"] is not None
            and d["p99_ms"] <= 50
            and not system["delivery"]["sse"]["missing"],
        )
    if "delivery" in system:
        # The event may reach the SSE reader before the 202 reaches the poster (delivery runs
        # while the origin still commits its own copy): from the request sent, never negative.
        sent = system["delivery"]["sse"].get("latency_from_request_sent", {})
        row(
            "2 delivery p50/p99 from request sent",
            f"{_fmt(sent.get('p50_ms'))} / {_fmt(sent.get('p99_ms'))} ms",
            hop_text,
            (sent.get("p99_ms") or 0) / hop_p99 if hop_p99 else None,
            "-",
            None,
        )
    if "fanout" in system:
        f = system["fanout"]["sse"]
        single = system.get("delivery", {}).get("sse", {}).get("latency", {}).get("p99_ms")
        row(
            "3 fan-out 100 subs @ 100/s",
            f"p99 {_fmt(f['latency']['p99_ms'])} ms, behind {f['behind']}/100, "
            f"missing {f['missing']}",
            f"1-sub p99 {_fmt(single)} ms",
            (f["latency"]["p99_ms"] or 0) / single if single else None,
            "p99 <= 100 ms, 0 behind",
            f["latency"]["p99_ms"] is not None
            and f["latency"]["p99_ms"] <= 100
            and f["behind"] == 0,
        )
    if "burst" in system:
        b = system["burst"]
        batch = b["batch-burst"]
        sse_b = b["sse"].get("by_poster", {})
        tail_b = b["ledger_tail"].get("by_poster", {})
        burst_sse, live = sse_b.get("burst", {}), sse_b.get("live", {})
        ledger_burst = tail_b.get("burst", {})
        ends = [x.get("last_arrival") for x in (burst_sse, ledger_burst)]
        complete = not burst_sse.get("missing", 1) and not ledger_burst.get("missing", 1)
        done_in = (
            max(e for e in ends if e is not None) - batch["started"]
            if all(e is not None for e in ends)
            else None
        )
        rate = batch["accepted"] / batch["post_seconds"] if batch["post_seconds"] else 0
        projected = batch["alerts"] / rate if rate else None
        row(
            "4 burst 10k via :batch",
            f"{batch['accepted']}/{batch['alerts']} accepted in {batch['post_seconds']:.0f} s "
            f"(bounded); those delivered+ledgered after {_fmt(done_in)} s (missing "
            f"{burst_sse.get('missing')}/{ledger_burst.get('missing')}); 10k at this rate: "
            f"{_fmt(projected, 0)} s",
            f"accept {rate:.0f}/s vs POST max {results.get('max_accept_rps', 0):.0f}/s",
            rate / results["max_accept_rps"] if results.get("max_accept_rps") else None,
            "<= 30 s",
            complete
            and batch["accepted"] == batch["alerts"]
            and done_in is not None
            and done_in <= 30,
        )
        lp99 = live.get("latency", {}).get("p99_ms")
        row(
            "4 burst: live alerts' delivery",
            f"p99 {_fmt(lp99)} ms (n {live.get('latency', {}).get('n')})",
            hop_text,
            (lp99 or 0) / hop_p99 if hop_p99 and lp99 else None,
            "p99 < 1000 ms",
            lp99 is not None and lp99 < 1000 and not live.get("missing"),
        )
    if "drain" in system:
        _drain_rows(system["drain"], row, hop_text, hop_p99)
    if "ledger" in system:
        t = system["ledger"]["ledger_tail"]
        c = system["ledger"]["closed-alerts"]
        row(
            f"5 ledger lag @ max ({c['rps']:.0f}/s)",
            f"p50 {_fmt(t['lag']['p50_ms'])} / p99 {_fmt(t['lag']['p99_ms'])} ms, "
            f"missing {t['missing']}",
            hop_text,
            (t["lag"]["p99_ms"] or 0) / hop_p99 if hop_p99 else None,
            "p99 <= 1000 ms",
            t["lag"]["p99_ms"] is not None and t["lag"]["p99_ms"] <= 1000 and not t["missing"],
        )
    if system.get("max_rss_mb"):
        mem = system["max_rss_mb"]
        node_max = max(mem.get(n, 0) for n in (KG, TJ))
        bare_rss = results.get("accept", {}).get("w1", {}).get("bare", {}).get("server_max_rss_mb")
        row(
            "6 node RSS under load (max of KG, TJ)",
            f"{node_max:.0f} MB",
            f"bare app {_fmt(bare_rss, 0)} MB",
            node_max / bare_rss if bare_rss else None,
            "<= 150 MB",
            node_max <= 150,
        )
    if "soak" in system:
        s = system["soak"]
        growth = max((v["growth"] for v in s["rss"].values()), default=None)
        row(
            f"6 soak {s['seconds']:.0f} s @ {s['rate']:.0f}/s: RSS growth",
            f"{_fmt(growth * 100 if growth is not None else None)} %",
            "RSS after warm-up",
            1 + growth if growth is not None else None,
            "<= 5 %",
            growth is not None and growth <= 0.05,
        )
        d = s["drift"]
        row(
            "6 soak: delivery p99 drift",
            f"{_fmt(d['first_third']['p99_ms'])} -> {_fmt(d['last_third']['p99_ms'])} ms",
            "first third",
            s["p99_drift_ratio"],
            "no drift (<= 1.5x)",
            s["p99_drift_ratio"] is not None and s["p99_drift_ratio"] <= 1.5,
        )
    if "taxii" in system:
        r, lat = system["taxii"]["read"], system["taxii"]["latency"]
        row(
            f"8 TAXII read: {r['taxii']['alerts']} alerts, {r['objects_per_alert']} objects each",
            f"{r['taxii']['alerts_per_s']:.0f} alerts/s ({r['taxii']['objects_per_s']:.0f} obj/s)",
            f"GET /v1/feed {r['feed']['alerts_per_s']:.0f} alerts/s",
            r["ratio_alerts_per_s"],
            "-",
            None,
        )
        t, n = lat["taxii"], lat["sse"]
        row(
            f"8 TAXII poll every {lat['poll_interval_s']} s @ {lat['rate']:.0f}/s: p50/p99",
            f"{_fmt(t['p50_ms'])} / {_fmt(t['p99_ms'])} ms (missed {t['missed']})",
            f"SSE {_fmt(n['p50_ms'])} / {_fmt(n['p99_ms'])} ms (missed {n['missed']})",
            (t["p99_ms"] / n["p99_ms"]) if t["p99_ms"] and n["p99_ms"] else None,
            "none missed",
            t["missed"] == 0,
        )
    if "lookout" in system:
        lk = system["lookout"]
        h, m, g = lk["lookout_hit"], lk["lookout_miss"], lk["get_alert"]
        row(
            f"10 lookout check among {lk['alerts']} risk alerts: hit / miss p50",
            f"{_fmt(h['p50_ms'])} / {_fmt(m['p50_ms'])} ms (hit p99 {_fmt(h['p99_ms'])})",
            f"GET /v1/alerts/{{id}} {_fmt(g['p50_ms'])} ms",
            h["ratio_p50"],
            "-",
            None,
        )
        sr, fp = lk["search"], lk["feed_page"]
        row(
            f"10 search, {sr['matching']} matches: p50",
            f"{_fmt(sr['p50_ms'])} ms",
            f"GET /v1/feed?limit={sr['matching']} {_fmt(fp['p50_ms'])} ms",
            sr["ratio_p50"],
            "-",
            None,
        )
    if "attachments" in system:
        a = system["attachments"]
        m = a["median_s"]
        row(
            f"11 attachment {a['size_bytes'] / 2**20:.0f} MiB KG->TJ end to end (x{a['rounds']})",
            f"{a['end_to_end_mb_s']:.1f} MB/s (upload {m['upload_s']:.2f} s, accept "
            f"{m['accept_s']:.2f} s, to TJ {m['delivery_s']:.2f} s)",
            f"raw Object Store put {a['raw_put_mb_s']:.1f} MB/s",
            a["ratio_to_raw_put"],
            "-",
            None,
        )
    if "e2e" in system and "composed" in system["e2e"]:
        e = system["e2e"]
        composed = e["composed"]["total_ms"]
        ratio = e["ratio_to_composed"]
        first = e["steps"][0]["offered_rps"] if e["steps"] else None
        row(
            f"9 end to end: CPU per alert, all processes (@ {_fmt(e['cpu_ms_per_alert_at'])}/s)",
            f"{_fmt(e['cpu_ms_per_alert'])} ms",
            f"composed {composed:.1f} ms (raw steps)",
            ratio,
            "<= 2x",
            ratio is not None and ratio <= 2,
        )
        sustained = e["max_sustained_offered_rps"]
        row(
            "9 end to end: max sustained rate, delivery and 202 p99 <= 50 ms",
            f"{_fmt(e['max_sustained_rps'])} alerts/s",
            f"{len(e['steps'])} steps from {_fmt(first)}/s; today's {TODAY_RPS:.0f}/s",
            sustained / TODAY_RPS if sustained else None,
            ">= 4x today's",
            sustained is not None and sustained >= 4 * TODAY_RPS,
        )
        missed = [s for s in e["steps"] if not s["passed"]]
        if missed:  # why the search ended: the last step that failed, and what it ran on
            m = missed[-1]
            row(
                f"9 end to end: missed at {_fmt(m['offered_rps'])}/s",
                f"202 p99 {_fmt(m['accept_latency']['p99_ms'])} ms, delivery p99 "
                f"{_fmt(m['delivery']['p99_ms'])} ms, {_fmt(m['achieved_rps'])}/s achieved; "
                + machine_text(m.get("machine_while_posting") or {}),
                "-",
                None,
                "-",
                None,
            )
    if "profile" in results:
        shares = results["profile"]["share_of_busy"]
        text = ", ".join(f"{k.split(' (')[0]} {v * 100:.0f}%" for k, v in list(shares.items())[:7])
        row("7 accept path, share of busy time", text, "-", None, "-", None)
    return rows


def print_table(rows: list[tuple[str, ...]]) -> str:
    header = ("scenario", "value", "baseline (same run)", "ratio", "goal", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _drain_rows(drain: dict[str, Any], row: Any, hop_text: str, hop_p99: float | None) -> None:
    """10,000 alerts queued on JetStream at once (the bulk lane): how long until the partner node
    delivered them all and the ledger has them all; and live alerts posted meanwhile."""
    queue = drain["queue-queued"]
    by_sse = drain["sse"].get("by_poster", {})
    by_tail = drain["ledger_tail"].get("by_poster", {})
    queued_sse, queued_tail = by_sse.get("queued", {}), by_tail.get("queued", {})
    ends = [x.get("last_arrival") for x in (queued_sse, queued_tail)]
    done_in = (
        max(e for e in ends if e is not None) - queue["started"]
        if all(e is not None for e in ends)
        else None
    )
    complete = not queued_sse.get("missing", 1) and not queued_tail.get("missing", 1)
    row(
        f"4b drain {queue['queued']} queued ({queue['lane']} lane)",
        f"delivered+ledgered after {_fmt(done_in)} s (missing {queued_sse.get('missing')}/"
        f"{queued_tail.get('missing')})",
        f"queued on JetStream in {queue['publish_seconds']:.1f} s",
        done_in / queue["publish_seconds"] if done_in and queue["publish_seconds"] else None,
        "<= 30 s",
        complete and done_in is not None and done_in <= 30,
    )
    live = by_sse.get("live", {})
    lp99 = live.get("latency", {}).get("p99_ms")
    row(
        "4b drain: live alerts' delivery",
        f"p99 {_fmt(lp99)} ms (n {live.get('latency', {}).get('n')})",
        hop_text,
        (lp99 or 0) / hop_p99 if hop_p99 and lp99 else None,
        "p99 < 1000 ms",
        lp99 is not None and lp99 < 1000 and not live.get("missing"),
    )
