"""A client that goes away cancels its answer.

An answer is read in a worker thread (generation is blocking work), and a worker thread
cannot be interrupted: it has to be told. So whatever ends the request early (Starlette
cancelling a streamed response when its client disconnects, the request time limit, or the
watch kept here on a plain request's connection, about which Starlette tells nobody)
cancels the AnswerStream: the thread stops before the generator's next piece, a generator
still waiting for its model never starts (qa/streaming.py), and the thread is free again.

A plain request whose client left is answered 499 ("client closed request", as nginx
says): nobody receives it, but the access log and the metrics record it.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import anyio
from fastapi import Request, Response

from citeqa.qa.streaming import AnswerStream
from citeqa.qa.types import VerifiedAnswer

CLIENT_CLOSED_REQUEST = 499
T = TypeVar("T")


async def in_worker_thread(read: Callable[[], T], stream: AnswerStream) -> T:
    """``read()``, which reads ``stream``, in a worker thread. Should this task be cancelled
    meanwhile, ``stream`` is cancelled and the thread is left to finish on its own (it does
    at the generator's next piece) instead of being waited for."""
    try:
        return await anyio.to_thread.run_sync(read, abandon_on_cancel=True)
    except anyio.get_cancelled_exc_class():
        stream.cancel()
        raise


async def answer_unless_disconnected(request: Request, stream: AnswerStream) -> VerifiedAnswer | None:
    """The whole answer (``stream.answer()``), or None if the client disconnected first."""
    failure: Exception | None = None
    result: VerifiedAnswer | None = None
    async with anyio.create_task_group() as watch:
        watch.start_soon(_cancel_on_disconnect, request, stream)
        try:
            result = await in_worker_thread(stream.answer, stream)
        except Exception as exc:  # raised out here: the task group would wrap it in an ExceptionGroup
            failure = exc
        finally:
            watch.cancel_scope.cancel()
    if failure is not None:
        raise failure  # a GeneratorError, say, which the app's handlers answer
    return result


def client_closed_request() -> Response:
    """What a request whose client left is answered (it is never sent, only logged)."""
    return Response(status_code=CLIENT_CLOSED_REQUEST)


async def _cancel_on_disconnect(request: Request, stream: AnswerStream) -> None:
    # The body has been read by now, so the next message is the disconnect, whenever it comes.
    while (await request.receive())["type"] != "http.disconnect":
        pass
    stream.cancel()
