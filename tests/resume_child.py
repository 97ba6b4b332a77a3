"""One rank of a training run shaped like DLAS's ``train.py``, for tests/test_resume.py.

Usage: ``python resume_child.py CONFIG_JSON``. The config names the rank, the world
size and its rendezvous, the dataset options, the sampler (``torch``:
DistributedSampler, ``dlas``: DistIterSampler, ``none``: create_dataloader's own
shuffle), the DataLoader workers and start method, and either:

* ``kill_at``: run from the start; after batch number ``kill_at`` (counted over the
  run from 0) is handed out, save the training state and ``kill -9`` this process;
* ``resume``: for each saved state in the list, a new dataset and loader restore it
  and run to the end (``epochs``).

Every batch handed out is written to ``out`` (one JSON line per batch: the step and a
digest of every tensor and string in it) before the state is saved, as a trainer
checkpoints after its step.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import sys


def digest(batch: dict) -> str:
    import torch

    h = hashlib.sha256()
    for key in sorted(batch):
        value = batch[key]
        h.update(key.encode())
        if isinstance(value, torch.Tensor):
            h.update(str((value.dtype, tuple(value.shape))).encode())
            h.update(value.contiguous().numpy().tobytes())
        else:
            h.update(json.dumps(value, default=str).encode())
    return h.hexdigest()


def write_json(path: str, value) -> None:
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def build(cfg: dict):
    import dlas_fast
    from dlas_fast import DistIterSampler
    from torch.utils.data import DistributedSampler

    opt = dict(cfg["opt"], n_workers=cfg["workers"])
    if cfg.get("persistent"):
        opt["persistent_workers"] = True
    dataset = dlas_fast.create_dataset(opt)
    world, rank = cfg["world"], cfg["rank"]
    if cfg["sampler"] == "torch":
        sampler = DistributedSampler(dataset, num_replicas=world, rank=rank)
    elif cfg["sampler"] == "dlas":
        sampler = DistIterSampler(dataset, world, rank, 1)
    else:
        sampler = None
    dist_opt = {"dist": cfg["sampler"] != "none"}
    loader = dlas_fast.create_dataloader(dataset, opt, dist_opt, sampler=sampler)
    return dataset, sampler, loader


def run(cfg: dict, out: str, state_path: str, resume: dict | None, kill_at) -> None:
    """DLAS's loop (codes/train.py): epochs from the resumed one, the sampler's epoch
    set at each, a step per batch, the training state saved after each step."""
    dataset, sampler, loader = build(cfg)
    start_epoch, step = 0, -1
    if resume is not None:
        start_epoch, step = resume["epoch"], resume["iter"]
        loader.load_state_dict(resume["loader"])
    with open(out, "a") as log:
        for epoch in range(start_epoch, cfg["epochs"]):
            if sampler is not None:
                sampler.set_epoch(epoch)
            for batch in loader:
                step += 1
                log.write(json.dumps({"step": step, "epoch": epoch, "digest": digest(batch)}))
                log.write("\n")
                log.flush()
                state = {"epoch": epoch, "iter": step, "loader": loader.state_dict()}
                write_json(state_path, json.loads(json.dumps(state)))  # plain data only
                if step == kill_at:
                    os.kill(os.getpid(), signal.SIGKILL)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    multiprocessing.set_start_method(cfg["start"], force=True)
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=cfg["init"], rank=cfg["rank"], world_size=cfg["world"]
    )
    if cfg.get("resume"):
        for i, path in enumerate(cfg["resume"]):
            with open(path) as f:
                saved = json.load(f)
            run(cfg, f"{cfg['out']}.{i}", f"{cfg['out']}.{i}.state", saved, None)
    else:
        run(cfg, cfg["out"], cfg["state"], None, cfg["kill_at"])
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
