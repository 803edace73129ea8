"""components/numerics.py: the CPU kernel pin every stage starts with."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from components import numerics, runtime
from components.numerics import PINNED_ISA, pin_cpu_isa

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
AVX2 = {"sse4_2", "avx", "avx2", "fma"}


def test_pins_every_variable_on_an_x86_cpu_with_avx2(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # as in a stage before its first import
    environ: dict[str, str] = {}
    assert pin_cpu_isa(environ, "x86_64", AVX2 | {"avx512f"}) == PINNED_ISA
    assert environ == {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def test_a_value_already_set_wins(monkeypatch):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    environ = {"ATEN_CPU_CAPABILITY": "default"}
    assert pin_cpu_isa(environ, "x86_64", AVX2) == {"ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
    assert environ["ATEN_CPU_CAPABILITY"] == "default"


@pytest.mark.parametrize(("environ", "machine", "flags"), [
    ({"COURSELAB_NATIVE_CPU": "1"}, "x86_64", AVX2),  # opted out
    ({}, "aarch64", {"asimd", "sve"}),  # another architecture
    ({}, "x86_64", {"sse4_2", "avx"}),  # an x86 CPU without AVX2: its kernels are below the pin anyway
])
def test_leaves_the_environment_alone(monkeypatch, environ, machine, flags):
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    before = dict(environ)
    assert pin_cpu_isa(environ, machine, flags) == {}
    assert environ == before


def test_does_nothing_once_torch_is_imported():
    import torch  # noqa: F401  (this process's kernels are chosen; children must not differ)

    environ: dict[str, str] = {}
    assert pin_cpu_isa(environ, "x86_64", AVX2) == {}
    assert environ == {}


def test_reads_the_flags_line_of_cpuinfo(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse4_2 avx avx2 fma\n")
    assert numerics.cpu_flags(cpuinfo) == {"fpu", "sse4_2", "avx", "avx2", "fma"}
    assert numerics.cpu_flags(tmp_path / "missing") == set()


def test_ray_workers_get_the_pins(monkeypatch):
    for name, value in PINNED_ISA.items():
        monkeypatch.setenv(name, value)
    assert PINNED_ISA.items() <= runtime.forwarded_env().items()


@pytest.mark.skipif("avx2" not in numerics.cpu_flags(), reason="needs an x86-64 CPU with AVX2")
def test_a_stage_process_runs_torch_on_the_pinned_kernels():
    """Importing ``pipelines`` (as ``python -m pipelines.<stage>`` does first) pins ATen's dispatch;
    without the package torch picks what the CPU offers, and a variable set by the user wins."""
    probe = "import torch; print(torch.backends.cpu.get_cpu_capability())"
    env = {k: v for k, v in os.environ.items() if k not in PINNED_ISA and k != numerics.OPT_OUT}

    def capability(code: str, **extra: str) -> str:
        return subprocess.run([sys.executable, "-c", code], cwd=REPO, env={**env, **extra}, check=True,
                              capture_output=True, text=True).stdout.strip()

    assert capability("import pipelines; " + probe) == "AVX2"
    assert capability("import pipelines; " + probe, ATEN_CPU_CAPABILITY="default") == "DEFAULT"
