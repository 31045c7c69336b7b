"""Taking a torchrun process group down without racing the other ranks (``partwise train``, ``partwise run``)."""
from __future__ import annotations

import time

#: the rendezvous store's counter of ranks that are done with the process group
_DONE_KEY = "partwise/process_group_done"
#: longest wait for the other ranks at the check-in (then the group is destroyed anyway)
CHECK_IN_TIMEOUT_S = 300.0


def shut_down_process_group() -> None:
    """Wait for every rank, then destroy the default process group (no-op when none is initialized).

    A gloo ``barrier()`` can return on one rank while the other is still taking in its last message; a rank that
    then destroys its group closes the sockets under that read, which aborts the other process (SIGABRT) on rare,
    loaded runs. So after the barrier every rank also checks in on the rendezvous key-value store (its own
    connection) and destroys its group only when all have checked in. A group left alive at interpreter exit aborts
    the process too ("terminate called without an active exception"), so destroying it is not optional."""
    import torch.distributed as dist

    if not dist.is_initialized():
        return
    dist.barrier()
    try:
        store = dist.distributed_c10d._get_default_store()
    except (AttributeError, RuntimeError, ValueError):  # no store to check in on: the barrier alone
        store = None
    if store is not None:
        world = dist.get_world_size()
        arrived = int(store.add(_DONE_KEY, 1))
        target = ((arrived - 1) // world + 1) * world  # this shutdown's generation: the store outlives the group
        deadline = time.monotonic() + CHECK_IN_TIMEOUT_S
        while int(store.add(_DONE_KEY, 0)) < target and time.monotonic() < deadline:
            time.sleep(0.005)
    dist.destroy_process_group()
