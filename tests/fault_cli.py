"""``geovec`` (the real CLI) with the fake model, the start of the job and each forward pass announced on stdout
(``@@start``, ``@@batch N``) and slowed down, so that fault tests can kill the process at chosen points of a
job: ``python -m tests.fault_cli embed ...``."""

from __future__ import annotations

import os
import sys
import time

import geovec
from tests.index.geovec_fake_model import FakeGeoModel

DELAY = float(os.environ.get("GEOVEC_FAULT_DELAY", "0.04"))


class AnnouncingModel(FakeGeoModel):
    def embed_prepared(self, prepared):
        out = super().embed_prepared(prepared)
        sys.stdout.write(f"@@batch {self.batches}\n")
        sys.stdout.flush()
        time.sleep(DELAY)
        return out


def load_model(*args, **kwargs):
    print("@@start", flush=True)  # the job has begun (the command's own ctrl-c handling is in place)
    return AnnouncingModel()


geovec.load_model = load_model

if __name__ == "__main__":
    from geovec.cli import app

    app(prog_name="geovec")
