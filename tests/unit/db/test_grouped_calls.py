"""Group commit (``db.grouped``): the calls made while a statement runs go together in the next;
each caller gets its own result or its own error; a caller that gives up cuts nobody off."""

from __future__ import annotations

import asyncio

import pytest

from blo_exchange.db.grouped import GroupedCalls


class Statements:
    """``one`` and ``many`` as a store runs them: recorded, held until ``gate`` is open, and
    refusing the value ``"bad"`` (``many`` then refuses its whole group)."""

    def __init__(self) -> None:
        self.ran: list[list[str]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def one(self, value: str) -> str:
        return (await self.many([value]))[0]

    async def many(self, values: list[str]) -> list[str]:
        self.ran.append(values)
        await self.gate.wait()
        if "bad" in values:
            raise ValueError("refused")
        return [value.upper() for value in values]


async def _let_run() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_calls_made_while_a_statement_runs_go_together_in_the_next() -> None:
    statements = Statements()
    grouped = GroupedCalls(statements.one, statements.many, most=50)
    statements.gate.clear()
    first = asyncio.create_task(grouped("a"))
    await _let_run()
    assert statements.ran == [["a"]]  # alone: nothing else was waiting
    later = [asyncio.create_task(grouped(v)) for v in ("b", "c", "d")]
    await _let_run()
    assert statements.ran == [["a"]]  # they wait for the statement in flight
    statements.gate.set()
    assert await first == "A"
    assert [await task for task in later] == ["B", "C", "D"]
    assert statements.ran == [["a"], ["b", "c", "d"]]  # one statement for the three, in order
    assert (grouped.groups, grouped.values) == (2, 4)


async def test_a_group_is_at_most_most_values() -> None:
    statements = Statements()
    grouped = GroupedCalls(statements.one, statements.many, most=2)
    answers = await asyncio.gather(*(grouped(v) for v in "abcde"))
    assert answers == list("ABCDE")
    assert statements.ran == [["a", "b"], ["c", "d"], ["e"]]


async def test_a_failed_group_runs_again_one_value_at_a_time() -> None:
    """One value the store refuses fails its own caller only."""
    statements = Statements()
    grouped = GroupedCalls(statements.one, statements.many, most=50)
    answers = await asyncio.gather(*(grouped(v) for v in ("a", "bad", "c")), return_exceptions=True)
    assert answers[0] == "A"
    assert answers[2] == "C"
    assert isinstance(answers[1], ValueError)
    assert statements.ran == [["a", "bad", "c"], ["a"], ["bad"], ["c"]]


async def test_a_caller_that_gives_up_cuts_nobody_off() -> None:
    """A client gone while its group's statement runs: the statement runs to its end, the
    others get their results, and the next call is served as before."""
    statements = Statements()
    grouped = GroupedCalls(statements.one, statements.many, most=50)
    statements.gate.clear()
    tasks = [asyncio.create_task(grouped(v)) for v in "abc"]
    await _let_run()
    tasks[1].cancel()
    await _let_run()
    statements.gate.set()
    assert await tasks[0] == "A"
    assert await tasks[2] == "C"
    with pytest.raises(asyncio.CancelledError):
        await tasks[1]
    assert statements.ran == [["a", "b", "c"]]  # b's value was stored all the same
    assert await grouped("d") == "D"


async def test_callers_waiting_when_the_statements_are_cut_off_are_told() -> None:
    statements = Statements()
    grouped = GroupedCalls(statements.one, statements.many, most=1)
    statements.gate.clear()
    tasks = [asyncio.create_task(grouped(v)) for v in "ab"]
    await _let_run()
    runner = next(t for t in asyncio.all_tasks() if t.get_name() == "grouped-calls")
    runner.cancel()  # the process stopping
    answers = await asyncio.gather(*tasks, return_exceptions=True)
    assert all(isinstance(a, RuntimeError) for a in answers), answers


async def test_with_two_in_flight_a_call_goes_at_once_and_groups_form_behind_both() -> None:
    """``in_flight=2``: a call made while one statement runs is sent at once (it waits at the
    server, not here); the calls made while two run go together in the next."""
    statements = Statements()
    grouped = GroupedCalls(statements.one, statements.many, most=50, in_flight=2)
    statements.gate.clear()
    first = asyncio.create_task(grouped("a"))
    await _let_run()
    second = asyncio.create_task(grouped("b"))
    await _let_run()
    assert statements.ran == [["a"], ["b"]]  # the second did not wait for the first
    behind = [asyncio.create_task(grouped(v)) for v in "cde"]
    await _let_run()
    assert statements.ran == [["a"], ["b"]]
    statements.gate.set()
    assert [await t for t in (first, second, *behind)] == list("ABCDE")
    assert statements.ran == [["a"], ["b"], ["c", "d", "e"]]


@pytest.mark.parametrize("in_flight", [1, 2])
async def test_no_call_is_left_waiting_when_a_runner_ends_as_it_is_made(in_flight: int) -> None:
    """Calls arriving on every turn of the loop, some in the turn a runner ends: each is
    answered (a runner counted as running after its end left such a call with none to run it)."""
    statements = Statements()
    grouped = GroupedCalls(statements.one, statements.many, most=50, in_flight=in_flight)

    async def caller(name: int) -> list[str]:
        answers = []
        for turn in range(40):
            for _ in range((name * 7 + turn) % 3):
                await asyncio.sleep(0)
            answers.append(await grouped(f"{name}-{turn}"))
        return answers

    answers = await asyncio.wait_for(asyncio.gather(*(caller(n) for n in range(16))), 5.0)
    assert answers == [[f"{n}-{t}".upper() for t in range(40)] for n in range(16)]
