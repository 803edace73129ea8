"""Apply a params profile (``params-<name>.yaml``) as ``dvc exp run -S`` overrides.

    python -m tools.profile gpu [--gpus N] [--storage URI] [--synthetic]      # print the -S arguments
    python -m tools.profile gpu ... --write PATH                             # the merged params file
    python -m tools.profile gpu ... --exp-run [-- DVC-ARGS ...]              # dvc exp run with them

A profile is a partial params tree (params-gpu.yaml: every family at its papers' size on a GPU).
Going through ``dvc exp run -S`` keeps DVC the record: the experiment's params.yaml holds every
value, ``dvc exp show`` compares it with the embedded default, and nothing reads the profile at
run time. Keys missing from params.yaml (a family trainer's own ``use_gpu``, say) become
``++key=value``, DVC's (Hydra's) syntax for adding a key. The merged params are validated first,
so a wrong key fails here in one line, not in the middle of ``dvc repro``.

- ``--gpus N``: N Ray Train workers per stage (one GPU each: ``trainer.num_workers``).
- ``--storage URI``: ``runtime.storage_path``; shared storage (``s3://``, ``gs://``, an NFS path)
  when workers span nodes.
- ``--synthetic``: ``data.<dataset>.synthetic: true`` for every dataset the profile trains on, so
  it runs end to end without the real data (generated stand-ins at the real sizes).
"""

from __future__ import annotations

import argparse
import copy
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from components.config import flatten, parse_params
from components.errors import exit_on_user_error

_PLAIN = re.compile(r"[\w./-]+")  # a string Hydra's override grammar reads unquoted


PROFILES = Path(__file__).resolve().parents[1]  # profiles live beside this repository's params.yaml


def profile_path(name: str) -> Path:
    return PROFILES / f"params-{name}.yaml"


def profile_overrides(name: str, *, gpus: int | None = None, storage: str | None = None,
                      synthetic: bool = False) -> dict[str, Any]:
    """The profile as flat ``{"a.b.c": value}`` overrides, with the options applied."""
    path = profile_path(name)
    if not path.is_file():
        profiles = sorted(p.stem.removeprefix("params-") for p in PROFILES.glob("params-*.yaml"))
        raise SystemExit(f"no profile {name!r}: {path} does not exist (profiles: {', '.join(profiles) or 'none'})")
    tree = yaml.safe_load(path.read_text()) or {}
    flat = flatten(tree)
    if gpus is not None:
        flat["trainer.num_workers"] = gpus
    if storage is not None:
        flat["runtime.storage_path"] = storage
    if synthetic:
        for key, dataset in list(flat.items()):
            if key.count(".") == 1 and key.endswith(".dataset"):
                flat[f"data.{dataset}.synthetic"] = True
    return flat


def merged(base: dict, overrides: dict[str, Any]) -> dict:
    """``base`` (a raw params dict) with every dotted override set, missing levels created."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = copy.deepcopy(value)
    return out


def _hydra_value(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_hydra_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ",".join(f"{k}:{_hydra_value(v)}" for k, v in value.items()) + "}"
    if isinstance(value, str) and not _PLAIN.fullmatch(value):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return str(value)


def set_param_args(base: dict, overrides: dict[str, Any]) -> list[str]:
    """``-S key=value`` pairs for ``dvc exp run``; ``++key=value`` where params.yaml lacks the key."""
    present = set(flatten(base))
    args = []
    for key, value in overrides.items():
        prefix = "" if key in present or any(k.startswith(key + ".") for k in present) else "++"
        args += ["-S", f"{prefix}{key}={_hydra_value(value)}"]
    return args


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", help="the profile: params-<name>.yaml")
    parser.add_argument("--gpus", type=int, default=None, help="Ray Train workers per stage, one GPU each")
    parser.add_argument("--storage", default=None, help="runtime.storage_path (shared storage for several nodes)")
    parser.add_argument("--synthetic", action="store_true", help="generated stand-ins for the profile's datasets")
    parser.add_argument("--params", default="params.yaml", help="the base params file")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", metavar="PATH", help="write the merged params file here")
    action.add_argument("--exp-run", nargs=argparse.REMAINDER, metavar="DVC-ARGS",
                        help="run `dvc exp run` with the overrides and these arguments")
    args = parser.parse_args(argv)
    if args.gpus is not None and args.gpus < 1:
        parser.error("--gpus must be >= 1")
    base = yaml.safe_load(Path(args.params).read_text())
    overrides = profile_overrides(args.name, gpus=args.gpus, storage=args.storage, synthetic=args.synthetic)
    raw = merged(base, overrides)
    parse_params(raw, source=f"{args.params} + params-{args.name}.yaml")  # one line naming a bad key
    if args.write:
        Path(args.write).write_text(yaml.safe_dump(raw, sort_keys=False))
    elif args.exp_run is not None:
        extra = [a for a in args.exp_run if a != "--"]
        command = [sys.executable, "-m", "dvc", "exp", "run", *set_param_args(base, overrides), *extra]
        print(" ".join(command), flush=True)
        raise SystemExit(subprocess.call(command))
    else:
        print(" ".join(set_param_args(base, overrides)))


if __name__ == "__main__":
    main()
