"""Run an asyncio application on its own event loop in a background thread.

Tests are synchronous (pytest, Django, the Twilio SDK's ``requests``), while the fakes
are asyncio servers: each fake gets a daemon thread with its own loop, and the test
thread hands it coroutines to run.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, Self, TypeVar

T = TypeVar("T")

STARTUP_TIMEOUT_SECONDS = 10.0


class BackgroundLoop:
    def __init__(self, name: str) -> None:
        self._name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def is_running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        ready = threading.Event()
        loop = asyncio.new_event_loop()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            try:
                loop.run_forever()
            finally:
                _cancel_remaining_tasks(loop)
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name=self._name, daemon=True)
        self._thread.start()
        if not ready.wait(STARTUP_TIMEOUT_SECONDS):
            raise RuntimeError(f"{self._name}: event loop did not start")

    def run(self, coroutine: Coroutine[Any, Any, T], timeout: float | None = 30.0) -> T:
        """Run ``coroutine`` on the background loop and return its result here."""
        if self._loop is None:
            coroutine.close()
            raise RuntimeError(f"{self._name} is not running")
        return asyncio.run_coroutine_threadsafe(coroutine, self._loop).result(timeout)

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(STARTUP_TIMEOUT_SECONDS)
        self._loop = None
        self._thread = None


class BackgroundServer:
    """A fake served from a background thread: ``start()``/``stop()``, or ``with``.

    Subclasses make ``self._loop`` and write ``open()`` and ``close()``, the coroutines
    that start and stop serving on that loop (also usable on a loop of one's own).
    """

    _loop: BackgroundLoop

    async def open(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        self._loop.start()
        try:
            self._loop.run(self.open())
        except BaseException:
            self._loop.stop()
            raise
        return self

    def stop(self) -> None:
        if self._loop.is_running:
            self._loop.run(self.close())
            self._loop.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def _cancel_remaining_tasks(loop: asyncio.AbstractEventLoop) -> None:
    tasks = asyncio.all_tasks(loop)
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
    loop.run_until_complete(loop.shutdown_asyncgens())
