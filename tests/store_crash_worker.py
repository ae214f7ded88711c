"""A writer for the kill -9 crash tests: random puts, deletes, snapshots and roll-backs.

``python store_crash_worker.py ROOT SEED N_OPS [KILL_AT]`` opens the instance
in ROOT and runs N_OPS operations chosen by :func:`store_crash_model.choose`,
printing ``B <json>`` before each and ``A <json>`` after it returns.  With
KILL_AT = ``n`` it kills itself with SIGKILL at the ``n``-th call of
``Pool.write``, ``Pool.sync``, ``Catalog.apply``, ``Catalog.create_snapshot``
or ``Catalog.delete_snapshot`` — before the call for even ``n``, after it for
odd — so every step of an operation gets hit.  Run with a working directory
outside the repository, so the installed dwcore is imported.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sys
from typing import Any

import blake3
import store_crash_model as m

from dwcore.pool import Pool
from dwcore.store import Catalog, Instance

_calls = 0


def _arm(kill_at: int) -> None:
    def wrap(cls: type, name: str) -> None:
        real = getattr(cls, name)

        def hooked(self: Any, *args: Any, **kwargs: Any) -> Any:
            global _calls
            _calls += 1
            if _calls == kill_at and kill_at % 2 == 0:
                os.kill(os.getpid(), signal.SIGKILL)
            out = real(self, *args, **kwargs)
            if _calls == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        setattr(cls, name, hooked)

    for cls, name in [
        (Pool, "write"),
        (Pool, "sync"),
        (Catalog, "apply"),
        (Catalog, "create_snapshot"),
        (Catalog, "delete_snapshot"),
    ]:
        wrap(cls, name)


def main() -> None:
    root, seed, n_ops = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    if len(sys.argv) > 4:
        _arm(int(sys.argv[4]))
    rng = random.Random(seed)
    model = m.Model()
    out = sys.stdout
    with Instance.open(root, check_resources=False) as inst:
        for _ in range(n_ops):
            op = m.choose(rng, model)
            data = None
            if op["op"] == "put":
                data = m.payload(rng)
                op["hash"] = blake3.blake3(data).hexdigest()
            out.write("B " + json.dumps(op) + "\n")
            out.flush()
            done = m.perform(inst, op, data)
            model.ack(done)
            out.write("A " + json.dumps(done) + "\n")
            out.flush()


if __name__ == "__main__":
    main()
