"""SlowOnly-R50 8x8 AVA detector: partwise's inference form against mmaction2 itself, as whole processes.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/models.py [--setup-peer] [--rounds 3] [--forwards 3]
        [--rois 8] [--size 256] [--compile] [--peer-env DIR]

Peer: **mmaction2 1.2.0** in a scratch virtual environment (``--peer-env``, default ``benchmarks/.peer-mm/venv``,
git-ignored; ``--setup-peer`` creates it: ``pip install torch==2.13.0 "numpy<2" mmengine mmcv-lite==2.2.0
opencv-python-headless`` (torch's CPU wheel index as an extra index) then ``mmaction2==1.2.0 --no-deps``; never
torchvision). mmaction2's ``__init__`` refuses mmcv 2.2, and mmcv-lite has no compiled ops, so its modules are
imported under stub parent packages (their own code runs unchanged): ``ResNet3dSlowOnly`` (the ``slowonly_kinetics400-pretrained-r50_8xb16-8x8x1-20e_ava21-rgb``
backbone: depth 50, ``lateral=False``, ``conv1_kernel=(1,7,7)``, ``conv1_stride_t=1``, ``pool1_stride_t=1``,
``inflate=(0,0,1,1)``, ``spatial_strides=(1,2,2,1)``), ``SingleRoIExtractor3D`` (RoIAlign 8x8, temporal avg pool)
and ``BBoxHeadAVA`` (81 classes). ``mmcv.ops.RoIAlign`` is mmcv's own Python class over mmcv's own CPU kernel
(``mmcv/ops/csrc/pytorch/{roi_align.cpp,cpu/roi_align.cpp}``, shipped in the mmcv-lite wheel), compiled once with
``torch.utils.cpp_extension`` into the scratch folder. Timed on each side: backbone -> RoI extractor -> bbox head
on a normalised ``1x3x8xSxS`` clip and ``--rois`` person boxes (what ``FastRCNN`` + ``AVARoIHead`` run at test time
after the data preprocessor), one thread.

Weights: the peer model, randomly initialised with seed 0 (BN running means/variances and affine parameters
randomised so that folding is exercised), is saved as an mmaction2 checkpoint in the scratch folder and loaded into
partwise through :func:`partwise.models.checkpoint.load_mmaction2_detector`.

Each variant runs as a fresh process (mmaction2, partwise fused = :func:`partwise.models.fuse.to_inference`,
partwise unfused = the loaded model in eval mode, and with ``--compile`` partwise fused + ``torch.compile``),
alternating for ``--rounds`` rounds. Printed per variant: the forward's CPU and wall seconds per clip (median of
``--forwards`` calls after one warm-up, measured inside the process), the whole process's CPU seconds (``os.wait4``)
and wall seconds, and its peak RSS (VmHWM); the ratios against partwise fused; the largest absolute difference of
the logits and of the backbone features from mmaction2's. Without the peer environment the benchmark says so and
compares partwise fused with partwise unfused only (the stand-in).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRATCH = ROOT / "benchmarks" / ".peer-mm"
#: the file name carries the mmaction2 config name, which the checkpoint loader reads the clip options from
CKPT_NAME = "slowonly_kinetics400-pretrained-r50_8xb16-8x8x1-20e_ava21-rgb_bench-seed0.pth"
PEER_PACKAGES = ["torch==2.13.0", "numpy<2", "mmengine", "mmcv-lite==2.2.0", "opencv-python-headless"]
MMACTION2 = "mmaction2==1.2.0"
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


# ----------------------------------------------------------------------------------------------------------------
# mmaction2 side (runs in the peer environment; imports nothing from partwise)
# ----------------------------------------------------------------------------------------------------------------

def _stub_package(name: str, path: Path) -> None:
    """Register ``name`` as a package at ``path`` without running its ``__init__``."""
    import types

    module = types.ModuleType(name)
    module.__path__ = [str(path)]
    sys.modules[name] = module


def _mmcv_roi_align_ext(build_dir: Path):
    """mmcv's CPU RoIAlign kernel (sources from the installed mmcv-lite wheel) as an extension module."""
    import shutil

    import mmcv
    from torch.utils.cpp_extension import load

    csrc = Path(mmcv.__file__).parent / "ops" / "csrc"
    build_dir.mkdir(parents=True, exist_ok=True)
    # distinct names: both sources are called roi_align.cpp, which one ninja build cannot hold; copy2 keeps the
    # modification times, so ninja does not rebuild on every run
    shutil.copy2(csrc / "pytorch" / "roi_align.cpp", build_dir / "roi_align_dispatch.cpp")
    shutil.copy2(csrc / "pytorch" / "cpu" / "roi_align.cpp", build_dir / "roi_align_cpu.cpp")
    bind = build_dir / "bind.cpp"
    names = ", ".join(f'py::arg("{n}")' for n in ("aligned_height", "aligned_width", "spatial_scale",
                                                  "sampling_ratio", "pool_mode", "aligned"))
    # mmcv's RoIAlignFunction passes the scalars by keyword
    text = (
        "#include <torch/extension.h>\n"
        "void roi_align_forward(at::Tensor input, at::Tensor rois, at::Tensor output, at::Tensor argmax_y,\n"
        "  at::Tensor argmax_x, int aligned_height, int aligned_width, float spatial_scale, int sampling_ratio,\n"
        "  int pool_mode, bool aligned);\n"
        "void roi_align_backward(at::Tensor grad_output, at::Tensor rois, at::Tensor argmax_y, at::Tensor argmax_x,\n"
        "  at::Tensor grad_input, int aligned_height, int aligned_width, float spatial_scale, int sampling_ratio,\n"
        "  int pool_mode, bool aligned);\n"
        "PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {\n"
        f"  m.def(\"roi_align_forward\", &roi_align_forward, py::arg(\"input\"), py::arg(\"rois\"),"
        f" py::arg(\"output\"), py::arg(\"argmax_y\"), py::arg(\"argmax_x\"), {names});\n"
        f"  m.def(\"roi_align_backward\", &roi_align_backward, py::arg(\"grad_output\"), py::arg(\"rois\"),"
        f" py::arg(\"argmax_y\"), py::arg(\"argmax_x\"), py::arg(\"grad_input\"), {names});\n}}\n")
    if not bind.exists() or bind.read_text() != text:
        bind.write_text(text)
    return load("mmcv_roi_align_cpu", [str(bind), str(build_dir / "roi_align_dispatch.cpp"),
                                       str(build_dir / "roi_align_cpu.cpp")],
                extra_include_paths=[str(csrc / "common"), str(csrc / "pytorch")], build_directory=str(build_dir),
                extra_cflags=["-O3"], verbose=False)


def _mmaction2_modules():
    """(ResNet3dSlowOnly, SingleRoIExtractor3D, BBoxHeadAVA) from the installed mmaction2, imported by module path
    under stub packages (``mmaction/__init__`` asserts mmcv < 2.2; ``mmaction.utils`` pulls in GradCAM and more, so only its typing module is loaded;
    ``bbox_head`` imports an mmdet sampler type for annotations only); ``mmcv.ops.RoIAlign`` is mmcv's own class
    over :func:`_mmcv_roi_align_ext`."""
    import importlib
    import importlib.util
    import types

    mm_root = Path(importlib.util.find_spec("mmaction").origin).parent
    for name in ("mmaction", "mmaction.models", "mmaction.models.backbones", "mmaction.models.roi_heads",
                 "mmaction.models.roi_heads.roi_extractors", "mmaction.models.roi_heads.bbox_heads",
                 "mmaction.utils"):
        _stub_package(name, mm_root.joinpath(*name.split(".")[1:]))
    typing_utils = importlib.import_module("mmaction.utils.typing_utils")
    for key in dir(typing_utils):
        setattr(sys.modules["mmaction.utils"], key, getattr(typing_utils, key))
    for name in ("mmdet", "mmdet.models", "mmdet.models.task_modules", "mmdet.models.task_modules.samplers"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["mmdet.models.task_modules.samplers"].SamplingResult = object

    import mmcv
    from mmcv.utils import ext_loader

    ext = _mmcv_roi_align_ext(SCRATCH / "build")
    real_load_ext = ext_loader.load_ext
    ext_loader.load_ext = lambda name, funcs: ext if name == "_ext" else real_load_ext(name, funcs)
    _stub_package("mmcv.ops", Path(mmcv.__file__).parent / "ops")
    roi_align = importlib.import_module("mmcv.ops.roi_align")
    sys.modules["mmcv.ops"].RoIAlign = roi_align.RoIAlign
    sys.modules["mmcv.ops"].RoIPool = None  # imported next to RoIAlign by the extractor, never built here

    slowonly = importlib.import_module("mmaction.models.backbones.resnet3d_slowonly")
    extractor = importlib.import_module("mmaction.models.roi_heads.roi_extractors.single_straight3d")
    head = importlib.import_module("mmaction.models.roi_heads.bbox_heads.bbox_head")
    return slowonly.ResNet3dSlowOnly, extractor.SingleRoIExtractor3D, head.BBoxHeadAVA


def _mmaction2_detector():
    import torch

    slowonly, extractor, head = _mmaction2_modules()
    model = torch.nn.Module()
    model.backbone = slowonly(depth=50, pretrained=None, pretrained2d=False, lateral=False, num_stages=4,
                              conv1_kernel=(1, 7, 7), conv1_stride_t=1, pool1_stride_t=1,
                              spatial_strides=(1, 2, 2, 1))
    model.roi_extractor = extractor(roi_layer_type="RoIAlign", output_size=8, with_temporal_pool=True)
    model.bbox_head = head(background_class=True, in_channels=2048, num_classes=81, multilabel=True,
                           dropout_ratio=0.5)
    return model


def person_rois(count: int, size: int, seed: int = 0):
    """``count`` plausible person boxes (``[0, x1, y1, x2, y2]`` pixels) in a ``size`` x ``size`` frame."""
    import torch

    gen = torch.Generator().manual_seed(seed)
    wh = torch.rand(count, 2, generator=gen) * torch.tensor([0.3, 0.5]) * size + torch.tensor([0.1, 0.3]) * size
    xy = torch.rand(count, 2, generator=gen) * (size - wh)
    return torch.cat([torch.zeros(count, 1), xy, xy + wh], dim=1)


def worker_mm_export(args: argparse.Namespace) -> dict:
    """Seeded peer weights (non-trivial BN) saved as an mmaction2 checkpoint, and the clip and RoIs."""
    import torch

    torch.manual_seed(0)
    model = _mmaction2_detector()
    model.backbone.init_weights()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_((torch.rand(c, generator=gen) - 0.5) * 0.4)
                m.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(c, generator=gen) * 0.8 + 0.4)
                m.bias.copy_((torch.rand(c, generator=gen) - 0.5) * 0.4)
    state = {f"backbone.{k}": v for k, v in model.backbone.state_dict().items()}
    state.update({f"roi_head.bbox_head.{k}": v for k, v in model.bbox_head.state_dict().items()})
    SCRATCH.mkdir(parents=True, exist_ok=True)
    tmp = SCRATCH / (CKPT_NAME + ".tmp")
    torch.save({"state_dict": state, "meta": {"seed": 0, "made_by": "benchmarks/models.py"}}, tmp)
    os.replace(tmp, SCRATCH / CKPT_NAME)
    inputs = {"clip": torch.randn(1, 3, 8, args.size, args.size, generator=gen),
              "rois": person_rois(args.rois, args.size)}
    torch.save(inputs, SCRATCH / "inputs.tmp")
    os.replace(SCRATCH / "inputs.tmp", SCRATCH / "inputs.pt")
    return {"checkpoint": str(SCRATCH / CKPT_NAME), "keys": len(state)}


def _time_forwards(forward, count: int) -> tuple[float, float, object]:
    """Median CPU and wall seconds of ``count`` calls after one warm-up call, and the last output."""
    out = forward()
    cpu, wall = [], []
    for _ in range(count):
        c, w = time.process_time(), time.perf_counter()
        out = forward()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return statistics.median(cpu), statistics.median(wall), out


def _peak_rss_mib() -> float:
    """VmHWM of this process (reset by exec, unlike ``ru_maxrss``, which a child inherits from its parent)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def worker_mm_forward(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(1)
    model = _mmaction2_detector()
    state = torch.load(SCRATCH / CKPT_NAME, weights_only=True)["state_dict"]
    model.backbone.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    model.bbox_head.load_state_dict({k[19:]: v for k, v in state.items() if k.startswith("roi_head.bbox_head.")})
    model.eval()
    inputs = torch.load(SCRATCH / "inputs.pt", weights_only=True)
    clip, rois = inputs["clip"], inputs["rois"]
    features = {}

    def forward():
        # FastRCNN.extract_feat (no neck) then AVARoIHead._bbox_forward
        x = model.backbone(clip)
        roi_feats, _ = model.roi_extractor(x, rois)
        features["backbone"] = x
        return model.bbox_head(roi_feats)

    with torch.no_grad():
        cpu, wall, logits = _time_forwards(forward, args.forwards)
    _save_outputs(args.out, logits, features["backbone"])
    return {"forward_cpu": cpu, "forward_wall": wall, "rss": _peak_rss_mib()}


def _save_outputs(path: str, logits, backbone) -> None:
    import torch

    torch.save({"logits": logits.contiguous(), "backbone": backbone.contiguous()}, path + ".tmp")
    os.replace(path + ".tmp", path)


# ----------------------------------------------------------------------------------------------------------------
# partwise side
# ----------------------------------------------------------------------------------------------------------------

def worker_partwise(args: argparse.Namespace) -> dict:
    import torch

    from partwise.models import fuse
    from partwise.models.checkpoint import load_mmaction2_detector

    torch.set_num_threads(1)
    model, _ = load_mmaction2_detector(SCRATCH / CKPT_NAME)  # strict: raises on any missing or extra key
    model.eval()
    if args.variant != "unfused":
        model = fuse.to_inference(model, compile=args.variant == "compiled", inplace=True)
    inputs = torch.load(SCRATCH / "inputs.pt", weights_only=True)
    clip, rois = inputs["clip"], inputs["rois"]
    features = {}
    # the detector's own forward is timed; a hook keeps the backbone output for the comparison
    model.backbone.register_forward_hook(lambda module, args_, output: features.__setitem__("backbone", output))
    compile_s = 0.0
    with torch.inference_mode():
        if args.variant == "compiled":
            first = time.perf_counter()
            model(clip, rois)  # compiles
            compile_s = time.perf_counter() - first
        cpu, wall, logits = _time_forwards(lambda: model(clip, rois), args.forwards)
    _save_outputs(args.out, logits, features["backbone"])
    return {"forward_cpu": cpu, "forward_wall": wall, "rss": _peak_rss_mib(), "compile_s": compile_s,
            "folded_batchnorms": getattr(model, "folded_batchnorms", 0)}


def worker_compare(args: argparse.Namespace) -> dict:
    import torch

    ref = torch.load(args.reference, weights_only=True)
    out = {}
    for path in args.outputs:
        got = torch.load(path, weights_only=True)
        out[path] = {key: float((got[key] - ref[key]).abs().max()) for key in ("logits", "backbone")}
        out[path]["logits_abs_max"] = float(ref["logits"].abs().max())
        out[path]["backbone_abs_max"] = float(ref["backbone"].abs().max())
    return out


WORKERS = {"mm-export": worker_mm_export, "mm-forward": worker_mm_forward, "partwise": worker_partwise,
           "compare": worker_compare}


# ----------------------------------------------------------------------------------------------------------------
# orchestration (this process imports no torch, so its children's peak RSS is their own)
# ----------------------------------------------------------------------------------------------------------------

def run_child(cmd: list[str]) -> dict:
    """Run an untimed helper ``cmd``; its JSON result (last stdout line)."""
    done = subprocess.run(cmd, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_timed(cmd: list[str]) -> dict:
    """Run a timed worker: its JSON result plus its CPU seconds (user + sys, ``os.wait4``), wall seconds and
    ``ru_maxrss``."""
    import tempfile

    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        child = subprocess.Popen(cmd, stdout=out, stderr=err, text=True, env=env)
        _, status, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - start
        out.seek(0), err.seek(0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{err.read()[-3000:]}")
        result = json.loads(out.read().strip().splitlines()[-1])
    result.update(cpu=usage.ru_utime + usage.ru_stime, wall=wall, ru_maxrss=usage.ru_maxrss / 1024)
    return result


def setup_peer(env: Path) -> None:
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True)
    # the CPU build of torch (PyPI's Linux torch is the CUDA one), the same wheel as partwise's environment
    pip = [str(env / "bin" / "python"), "-m", "pip", "install", "-q", "--extra-index-url", TORCH_CPU_INDEX]
    subprocess.run(pip + PEER_PACKAGES, check=True)
    # mmaction2's own requirements would pull mmcv (full, compiled) and more; its modules need none of them here
    subprocess.run(pip + ["torch==2.13.0", MMACTION2, "--no-deps"], check=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", choices=sorted(WORKERS), help=argparse.SUPPRESS)
    parser.add_argument("--variant", default="fused", choices=("fused", "unfused", "compiled"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--reference", help=argparse.SUPPRESS)
    parser.add_argument("--outputs", nargs="*", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--setup-peer", action="store_true", help="create the peer environment when missing")
    parser.add_argument("--peer-env", type=Path, default=SCRATCH / "venv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--forwards", type=int, default=3, help="timed forwards per process (after one warm-up)")
    parser.add_argument("--rois", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--compile", action="store_true", help="also time partwise fused + torch.compile")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(WORKERS[args.worker](args)))
        return 0

    me = [str(Path(__file__).resolve())]
    common = ["--forwards", str(args.forwards), "--rois", str(args.rois), "--size", str(args.size)]
    peer_python = args.peer_env / "bin" / "python"
    if args.setup_peer and not peer_python.exists():
        setup_peer(args.peer_env)
    peer = peer_python.exists()
    SCRATCH.mkdir(parents=True, exist_ok=True)
    if peer:
        made = run_child([str(peer_python)] + me + ["--worker", "mm-export"] + common)
        print(f"peer: mmaction2 1.2.0 ({peer_python}); weights {made['checkpoint']} ({made['keys']} tensors)")
    else:
        print(f"peer: mmaction2 NOT INSTALLED ({peer_python} missing; run with --setup-peer). Stand-in: partwise's "
              "unfused module (eval mode), which is not mmaction2; seeded partwise weights instead")
        _export_partwise_standin(args)
    variants = (["mmaction2"] if peer else []) + ["partwise fused", "partwise unfused"]
    if args.compile:
        variants.append("partwise compiled")
    commands = {}
    for name in variants:
        out = str(SCRATCH / f"out-{name.replace(' ', '-')}.pt")
        if name == "mmaction2":
            commands[name] = ([str(peer_python)] + me + ["--worker", "mm-forward", "--out", out] + common, out)
        else:
            variant = name.split()[1]
            commands[name] = ([sys.executable] + me + ["--worker", "partwise", "--variant", variant, "--out", out]
                              + common, out)
    results: dict[str, list[dict]] = {name: [] for name in variants}
    for r in range(args.rounds):
        order = variants[r % len(variants):] + variants[:r % len(variants)]  # rotate who goes first
        for name in order:
            results[name].append(run_timed(commands[name][0]))
    print(f"SlowOnly-R50 8x8 AVA detector, clip 1x3x8x{args.size}x{args.size}, {args.rois} RoIs, one thread, "
          f"{args.rounds} rounds x {args.forwards} forwards; medians")
    header = f"  {'variant':<20} {'fwd CPU s':>10} {'fwd wall s':>11} {'proc CPU s':>11} {'proc wall s':>12} " \
             f"{'peak RSS MiB':>13}"
    print(header)
    med = {}
    for name in variants:
        rows = results[name]
        med[name] = {key: statistics.median(row[key] for row in rows)
                     for key in ("forward_cpu", "forward_wall", "cpu", "wall", "rss")}
        m = med[name]
        print(f"  {name:<20} {m['forward_cpu']:>10.3f} {m['forward_wall']:>11.3f} {m['cpu']:>11.2f} "
              f"{m['wall']:>12.2f} {m['rss']:>13.0f}")
        if name == "partwise compiled":
            print(f"  {'':<20} (first call, compilation included: {statistics.median(r['compile_s'] for r in rows):.1f} s)")
    base = med["partwise fused"]
    for name in variants:
        if name == "partwise fused":
            continue
        m = med[name]
        print(f"  ratio {name} / partwise fused: forward CPU {m['forward_cpu'] / base['forward_cpu']:.2f}x, "
              f"forward wall {m['forward_wall'] / base['forward_wall']:.2f}x, process CPU "
              f"{m['cpu'] / base['cpu']:.2f}x, process wall {m['wall'] / base['wall']:.2f}x, "
              f"peak RSS {m['rss'] / base['rss']:.2f}x")
    reference = commands["mmaction2" if peer else "partwise unfused"][1]
    others = [commands[name][1] for name in variants if commands[name][1] != reference]
    diffs = run_child([sys.executable] + me + ["--worker", "compare", "--reference", reference, "--outputs"] + others)
    ref_name = "mmaction2" if peer else "partwise unfused (stand-in)"
    for name in variants:
        path = commands[name][1]
        if path in diffs:
            d = diffs[path]
            print(f"  max |{name} - {ref_name}|: logits {d['logits']:.2e} (|logits| <= {d['logits_abs_max']:.2f}), "
                  f"backbone features {d['backbone']:.2e} (|features| <= {d['backbone_abs_max']:.2f})")
    return 0


def _export_partwise_standin(args: argparse.Namespace) -> None:
    """Without the peer: a seeded partwise detector saved in mmaction2's key layout, so the partwise workers load
    it the same way."""
    code = (
        "import torch, sys; sys.path.insert(0, %r)\n"
        "from partwise.models import create_model\n"
        "import models as bench\n"
        "torch.manual_seed(0); m = create_model('slowonly_r50_8x8')\n"
        "g = torch.Generator().manual_seed(1)\n"
        "for b in m.modules():\n"
        "    if isinstance(b, torch.nn.modules.batchnorm._BatchNorm):\n"
        "        c = b.num_features\n"
        "        b.running_mean.copy_((torch.rand(c, generator=g) - 0.5) * 0.4)\n"
        "        b.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)\n"
        "        b.weight.data.copy_(torch.rand(c, generator=g) * 0.8 + 0.4)\n"
        "        b.bias.data.copy_((torch.rand(c, generator=g) - 0.5) * 0.4)\n"
        "sd = {('roi_head.bbox_head.' + k[5:] if k.startswith('head.') else k): v for k, v in m.state_dict().items()}\n"
        "torch.save({'state_dict': sd}, bench.SCRATCH / bench.CKPT_NAME)\n"
        "torch.save({'clip': torch.randn(1, 3, 8, %d, %d, generator=g), 'rois': bench.person_rois(%d, %d)},"
        " bench.SCRATCH / 'inputs.pt')\n"
    ) % (str(Path(__file__).parent), args.size, args.size, args.rois, args.size)
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


if __name__ == "__main__":
    sys.exit(main())
