"""The DVC stages' entry points (``python -m pipelines.<stage>``). Importing the package pins
PyTorch's CPU kernels before any stage imports torch (see components/numerics.py)."""

from components.numerics import pin_cpu_isa

pin_cpu_isa()
