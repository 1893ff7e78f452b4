"""One exit-code convention for every geovec command (``geovec embed``, ``geovec index build``, ``geovec search``, ...):

* 0: done (every input embedded now or in an earlier run; results printed).
* 1: the job finished, but some inputs failed; each is reported by name on stderr and everything else was
  written. Fix or remove them and rerun: only what is missing is done.
* 2: usage error (bad option or query, nothing to do, an output that belongs to another model); nothing was
  written.
* 3: setup: a package geovec needs is not installed; the one-line message names the command that installs it.
* 130: interrupted (ctrl-c); everything committed so far is kept: rerun the same command to resume.
"""

from __future__ import annotations

OK = 0
SOME_FAILED = 1
USAGE = 2
SETUP = 3
INTERRUPTED = 130

# the epilog of every command's --help
HELP = ("Exit codes: 0 done; 1 finished but some inputs failed (each reported by name, the rest written); "
        "2 usage error, nothing written; 3 a required package is missing (the message names the install "
        "command); 130 interrupted (rerun the same command to resume).")
