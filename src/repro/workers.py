"""Worker processes that run calls one at a time, and whose death is seen: the campaign's units and the local
sweep's points run in them.

A worker is spawned (CUDA cannot be forked), applies its environment (e.g. CUDA_VISIBLE_DEVICES) and its torch
thread count before the first call, then runs `fn(*args)` for each call it is sent: `fn` is a module-level
function, pickled by reference. `wait` returns the calls that ended: ("ok", value), ("error", traceback) when
`fn` raised, or ("died", why) when the process ended in mid-call (os._exit, SIGKILL, out of memory, a crash in
native code). A dead worker is not reused; `kill` stops one at once (the campaign's deadline). A worker whose
parent is gone ends itself within a second.
"""

from __future__ import annotations

import multiprocessing as mp
import multiprocessing.connection
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any


def _orphaned(parent: int) -> None:
    """End this worker once its parent is gone (killed, say): its calls have no one to report to."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _serve(conn, env: dict[str, str], threads: int | None, parent: int) -> None:
    threading.Thread(target=_orphaned, args=(parent,), daemon=True).start()
    os.environ.update(env)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if msg is None:
            return
        fn, args = msg
        try:
            reply = ("ok", fn(*args))
        except Exception:  # reported to the parent, which goes on with the next call
            reply = ("error", traceback.format_exc(limit=6))
        try:
            conn.send(reply)
        except Exception:  # a value that cannot be pickled: say so rather than die
            conn.send(("error", traceback.format_exc(limit=2)))


def exit_text(code: int | None) -> str:
    """How a process ended, in words: its exit code, or the signal that killed it."""
    if code is None:
        return "the worker process stopped answering"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the worker process was killed by {name}" + (" (out of memory?)" if name == "SIGKILL" else "")
    return f"the worker process ended with exit code {code}"


class Worker:
    """One spawned process; `task` is the caller's tag of the call in flight (None: idle)."""

    def __init__(self, env: dict[str, str] | None = None, threads: int | None = None):
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        env = dict(env or {})
        self.proc = ctx.Process(target=_serve, args=(child, env, threads, os.getpid()), daemon=True)
        saved = {k: os.environ.get(k) for k in env}
        os.environ.update(env)  # the new interpreter starts with it: modules read some variables on import
        try:
            self.proc.start()
        finally:
            for k, v in saved.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        child.close()  # so that the worker's death reads as end-of-file here
        self.task: Any = None

    def submit(self, task: Any, fn: Callable[..., Any], *args: Any) -> None:
        if self.task is not None:
            raise RuntimeError(f"worker busy with {self.task!r}")
        self.task = task
        try:
            self.conn.send((fn, args))
        except (BrokenPipeError, OSError):
            pass  # it died before the call; `wait` reports it

    @property
    def alive(self) -> bool:
        return self.proc.is_alive()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(10)
        self.conn.close()

    def close(self) -> None:
        """Ask an idle worker to exit; kill it if it does not (or is busy)."""
        if self.task is None and self.proc.is_alive():
            try:
                self.conn.send(None)
                self.proc.join(10)
            except (BrokenPipeError, OSError):
                pass
        self.kill()


def wait(workers: list[Worker], timeout: float | None) -> list[tuple[Worker, Any, str, Any]]:
    """The calls that ended within `timeout` seconds (None: wait for one), as (worker, task, status, value) with
    status "ok", "error" or "died"; each such worker is idle again (a dead one must be replaced)."""
    busy = [w for w in workers if w.task is not None]
    if not busy:
        return []
    handles = [h for w in busy for h in (w.conn, w.proc.sentinel)]
    ready = set(multiprocessing.connection.wait(handles, None if timeout is None else max(timeout, 0.0)))
    ended = []
    for w in busy:
        if w.conn not in ready and w.proc.sentinel not in ready:
            continue
        try:
            if not w.conn.poll():
                raise EOFError
            status, value = w.conn.recv()
        except (EOFError, OSError):
            w.proc.join(10)
            status, value = "died", exit_text(w.proc.exitcode)
        ended.append((w, w.task, status, value))
        w.task = None
    return ended
