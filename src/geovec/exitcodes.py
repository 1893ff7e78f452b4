"""One exit-code convention for every geovec job (``geovec embed``, ``geovec index build``):

* 0: every input was done (embedded now or in an earlier run).
* 1: the job finished, but some inputs failed; each is reported by name on stderr and everything else was
  written. Fix or remove them and rerun: only what is missing is done.
* 2: usage error (bad option, nothing to do, an output that belongs to another model); nothing was written.
* 130: interrupted (ctrl-c); everything committed so far is kept: rerun the same command to resume.
"""

from __future__ import annotations

OK = 0
SOME_FAILED = 1
USAGE = 2
INTERRUPTED = 130

