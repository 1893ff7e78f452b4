"""Progress of a long command on stderr: a tqdm bar on a terminal, plain lines when stderr is a file or a pipe
(a log, CI, ``nohup``), so a batch job shows how far it is and how fast it goes.

A line is written every ``every_s`` seconds and at the end::

    index: 512/1849 chips (28%), 26.1 chips/s, ETA 51 s
"""

from __future__ import annotations

import sys
import time

from geovec.cli_common import is_terminal


class Progress:
    """``update(n)`` as work completes, ``close()`` at the end (or use it as a context manager).
    ``enabled=False`` shows nothing."""

    def __init__(self, total: int, desc: str, unit: str = "item", enabled: bool = True, every_s: float = 5.0,
                 stream=None, initial: int = 0):
        self.total, self.desc, self.unit, self.every_s = total, desc, unit, every_s
        self.stream = stream if stream is not None else sys.stderr
        self.done = initial
        self.note = ""
        self._start_n = initial
        self._bar = None
        self._lines = False
        if enabled and total > 0:
            if is_terminal(self.stream):
                from tqdm.auto import tqdm

                self._bar = tqdm(total=total, initial=initial, desc=desc, unit=unit, file=self.stream)
            else:
                self._lines = True
        self._t0 = self._last = time.perf_counter()

    def update(self, n: int, note: str = "") -> None:
        """``n`` more done; ``note`` (e.g. the current loss) is shown beside the count."""
        self.done += n
        self.note = note
        if self._bar is not None:
            if note:
                self._bar.set_postfix_str(note, refresh=False)
            self._bar.update(n)
        elif self._lines and time.perf_counter() - self._last >= self.every_s:
            self._line()

    def _line(self) -> None:
        now = time.perf_counter()
        self._last = now
        rate = (self.done - self._start_n) / max(now - self._t0, 1e-9)
        left = self.total - self.done
        eta = f", ETA {left / rate:.0f} s" if rate > 0 and left > 0 else ""
        pct = 100.0 * self.done / self.total if self.total else 100.0
        note = f", {self.note}" if self.note else ""
        print(f"{self.desc}: {self.done}/{self.total} {self.unit}s ({pct:.0f}%), {rate:.1f} {self.unit}s/s{eta}{note}",
              file=self.stream, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self._lines:
            self._line()
            self._lines = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
