"""Beam's in-process runner without its periodic data-plane flush.

Why (docs/SCALING.md, "multi_threading: what lost rows and why it cannot
now"): with ``--direct_running_mode multi_threading`` the FnApiRunner talks
to its worker threads over gRPC, and Beam 2.77 then buffers every data-plane
stream in a ``TimeBasedBufferingClosableOutputStream``
(``worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 1000``). A ``PeriodicThread``
flushes that buffer once a second while the bundle's thread keeps encoding
elements into it, and nothing makes the two take turns:

- ``SizeBasedBufferingClosableOutputStream.flush`` is
  ``callback(self.get()); self._clear()``. Whatever the bundle's thread
  writes while the callback runs (it builds a protobuf copy of the buffer
  and queues it, so the GIL changes hands) is reset by ``_clear()``: whole
  elements vanish without an error. This was the 2,821 rows.
- A flush between the several writes of one element (header, then the
  pickled value) cuts the element in two messages; the runner decodes each
  message on its own and fails ("Invalid PaneInfoEncoding").

The flush on a timer only serves streaming latency. With 0 every stream is
Beam's size-based one, flushed by the bundle's own thread between elements
(``DataOutputOperation.process``) and at close, as in the default in-process
mode (whose in-memory channel never had a timer). Both sides read the
constant when the run creates them: the runner's gRPC data server
(``GrpcServer``) and each embedded worker (``EmbeddedGrpcWorkerHandler``,
whose ``config.get(...) or DATA_BUFFER_TIME_LIMIT_MS`` makes a 0 in the
environment config fall back to the timer, so the environment cannot say it).
The multi_processing runner's side of the channel is the same gRPC server,
so it is covered too.
"""
from __future__ import annotations

from apache_beam.runners.portability.fn_api_runner import worker_handlers

_FLAG = "DATA_BUFFER_TIME_LIMIT_MS"
# Beam's own value, read before anything here changes it (the tests show
# what it does).
BEAM_DEFAULT_MS = getattr(worker_handlers, _FLAG, None)


class BeamGuardError(RuntimeError):
    """The Beam installed no longer has the setting the guard relies on."""


# The running modes whose workers talk to the runner over gRPC (the in-memory
# default has no timer to turn off).
GRPC_MODES = ("multi_threading", "multi_processing")


def disable_timed_flush(running_mode: str | None = None) -> None:
    """Turn off the periodic data-plane flush for runners created from now
    on in this process (idempotent). If Beam moved the setting, raises
    BeamGuardError for a gRPC running mode (``GRPC_MODES``): it would run
    unguarded; the in-memory default does not need it and runs on."""
    if not isinstance(getattr(worker_handlers, _FLAG, None), int):
        if running_mode not in GRPC_MODES:
            return
        raise BeamGuardError(f"apache_beam {worker_handlers.__name__}.{_FLAG} is gone: --direct_running_mode "
                             f"{running_mode} would run without the guard of pipelines/beam_guard.py "
                             "(docs/SCALING.md); redo it for this Beam or use the default running mode")
    setattr(worker_handlers, _FLAG, 0)


def timed_flush_ms() -> int:
    """The periodic flush interval runners created now would use (0: none)."""
    return getattr(worker_handlers, _FLAG)
