"""Smoke test of an installed wheel, run by .ci/smoke.sh in a venv of the wheel alone:
no build tools in reach, the package from site-packages, a sample extracted with the
command, a batch loaded through create_dataloader and through a plain DataLoader. With
SMOKE=light (the install without torch): extraction through the command and the API,
and the datasets' ImportError naming the install command."""

import json
import os
import shutil
import subprocess
import sys

import dlas_fast

tools = [t for t in ("cc", "gcc", "clang", "cargo", "rustc", "maturin", "cmake", "nasm")
         if shutil.which(t)]  # fmt: skip
assert not tools, f"build tools on PATH: {tools}"
where = os.path.realpath(dlas_fast.__file__)
assert where.startswith(os.path.realpath(sys.prefix)), f"dlas_fast imported from {where}"

info = dlas_fast.build_info()
print(json.dumps(info, indent=2))
assert info["codec"].startswith("libjpeg-turbo"), info
assert info["optimisation"].startswith("release"), info
version = subprocess.run(["dlas-fast", "--version"], capture_output=True, text=True, check=True)
print(version.stdout)
assert "libjpeg-turbo" in version.stdout, version.stdout

subprocess.run([sys.executable, "make_sample.py", "photos"], check=True)
run = subprocess.run(["dlas-fast", "extract", "photos", "dataset", "--no-progress-bar"])
# 3: finished, with the sample's one broken file named.
assert run.returncode == 3, run.returncode

if os.environ.get("SMOKE") == "light":
    try:
        import torch  # noqa: F401
    except ImportError:
        pass
    else:
        raise AssertionError("the light install has torch")
    summary = dlas_fast.extract("photos", "dataset2", progress=False)
    assert summary.tiles_written > 0 and len(summary.failed) == 1, summary
    try:
        dlas_fast.create_dataset({"mode": "single_image_extensible", "paths": "dataset"})
    except ImportError as e:
        assert "pip install 'dlas_fast[torch]'" in str(e), e
    else:
        raise AssertionError("datasets loaded without torch")
    print(f"smoke (light install): {summary.tiles_written} tiles extracted without torch")
    sys.exit(0)

import torch  # noqa: E402

opt = {"mode": "single_image_extensible", "paths": "dataset", "target_size": 128, "scale": 2,
       "phase": "train", "batch_size": 4, "n_workers": 2, "random_seed": 1}  # fmt: skip
dataset = dlas_fast.create_dataset(opt)
ours = next(iter(dlas_fast.create_dataloader(dataset, opt)))
plain = next(iter(torch.utils.data.DataLoader(dataset, batch_size=4, num_workers=2)))
for batch in (ours, plain):
    assert tuple(batch["hq"].shape) == (4, 3, 128, 128), batch["hq"].shape
    assert tuple(batch["lq"].shape) == (4, 3, 64, 64), batch["lq"].shape
    assert batch["hq"].dtype == torch.float32
print(f"smoke: {len(dataset)} tiles extracted; batches of {tuple(plain['hq'].shape)} loaded")
