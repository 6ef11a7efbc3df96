"""Turns on a one-request-at-a-time model (qa/generators/turns.py): arrival order, and a
waiter that is stopped leaves the queue at once instead of waiting for its turn."""

from __future__ import annotations

import threading
import time

from citeqa.qa.generators.turns import Turns


def _wait_until(condition, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def test_turns_go_in_arrival_order():
    turns = Turns()
    order: list[int] = []
    hold = threading.Event()

    def run(n: int) -> None:
        with turns.turn(threading.Event()) as mine:
            assert mine
            order.append(n)
            if n == 0:
                hold.wait(5)

    first = threading.Thread(target=run, args=(0,))
    first.start()
    _wait_until(lambda: order == [0])
    others = []
    for n in range(1, 6):  # queued one by one, so their arrival order is known
        others.append(threading.Thread(target=run, args=(n,)))
        others[-1].start()
        _wait_until(lambda n=n: turns.waiting == n)
    hold.set()
    for t in [first, *others]:
        t.join(5)
    assert order == [0, 1, 2, 3, 4, 5]


def test_a_stopped_waiter_gives_up_at_once_and_never_gets_the_turn():
    turns = Turns()
    hold, holding = threading.Event(), threading.Event()
    got: list[bool] = []
    stopped = threading.Event()

    def holder() -> None:
        with turns.turn(threading.Event()):
            holding.set()
            hold.wait(5)

    def waiter() -> None:
        with turns.turn(stopped) as mine:
            got.append(mine)

    a = threading.Thread(target=holder)
    a.start()
    assert holding.wait(5)
    b = threading.Thread(target=waiter)
    b.start()
    _wait_until(lambda: turns.waiting == 1)
    t0 = time.monotonic()
    stopped.set()
    turns.wake()
    b.join(5)
    assert got == [False] and time.monotonic() - t0 < 0.5  # woken, not polling or waiting for the holder
    assert turns.waiting == 0
    hold.set()
    a.join(5)
    with turns.turn(threading.Event()) as mine:  # the turn is free again
        assert mine


def test_a_waiter_stopped_before_it_arrives_does_not_wait_at_all():
    turns = Turns()
    stopped = threading.Event()
    stopped.set()
    with turns.turn(threading.Event()):
        with turns.turn(stopped) as mine:  # the model is busy, and this one is not wanted any more
            assert not mine
