"""The same float results on x86-64 machines of one CPU vendor, with or without AVX-512: every stage
pins PyTorch's CPU kernels to AVX2 before torch is imported (``pipelines/__init__.py`` calls :func:`pin_cpu_isa`).

PyTorch chooses its CPU code paths by the instruction set it finds at start-up: ATen's vectorised
kernels (``ATEN_CPU_CAPABILITY``: default, avx2, avx512), oneDNN's convolutions
(``ONEDNN_MAX_CPU_ISA``) and MKL's matrix products (``MKL_CBWR``, MKL's conditional numerical
reproducibility). Each path rounds differently, and training amplifies the difference: 50 AdamW
steps of a small CNN ended with parameter sums -20.728 (ATen ``default``), -20.948 (``avx2``) and
-20.846 (oneDNN capped at SSE4.1); FCN's 3-epoch stage scored val mIoU 0.8126577 on the machine of
one session and 0.8139430 on another's, same commit and data; and a U-Net sweep whose rung
decisions sit within that noise stopped a trial on one machine that won on the other (issue 31).
Pinning all three to AVX2, which every x86-64 CPU of the last decade has, gives machines with
AVX-512 the same kernels as those without; it costs nothing where AVX2 is the best there is.

What it cannot pin: thread counts (the params set them: ``trainer.cpus_per_worker``), GPU kernels,
other architectures (aarch64 is left alone), MKL on a non-Intel CPU, which picks its own path
whatever ``MKL_CBWR`` says (on the AMD EPYC machines here ``AVX2`` and ``SSE4_2`` gave the same
numbers as no setting), and oneDNN's blocking, sized by the CPU's caches. So results repeat on one
machine type, idle or loaded, but not across vendors: FCN's stage scored 0.8139430 on an AMD EPYC
and 0.8048158 on an Intel Xeon. MKL's ``COMPATIBLE`` branch, documented as equal on Intel and other
CPUs, runs float GEMMs at 40% of ``AVX2`` (``bench/mkl_branch.py``) and leaves the convolutions
as they are; it is not set. ``COURSELAB_NATIVE_CPU=1`` opts out (the fastest kernels, machine-dependent
numbers); a variable already set in the environment wins over the pin.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import MutableMapping
from pathlib import Path

PINNED_ISA = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
OPT_OUT = "COURSELAB_NATIVE_CPU"


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The instruction-set flags of the first CPU in ``/proc/cpuinfo`` (empty where it is unreadable)."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def pin_cpu_isa(environ: MutableMapping[str, str] = os.environ, machine: str | None = None,
                flags: set[str] | None = None) -> dict[str, str]:
    """Set :data:`PINNED_ISA` in ``environ`` (a value already there wins) on an x86-64 CPU with
    AVX2, unless ``COURSELAB_NATIVE_CPU`` is set or torch is already imported (a pin that its own
    process ignores but its children obey would split one run's numerics). Returns what it set."""
    if environ.get(OPT_OUT) or "torch" in sys.modules:
        return {}
    if (machine or platform.machine()) not in ("x86_64", "AMD64") or "avx2" not in (
            cpu_flags() if flags is None else flags):
        return {}
    pinned = {name: value for name, value in PINNED_ISA.items() if name not in environ}
    environ.update(pinned)
    return pinned
