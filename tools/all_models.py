"""The ``dvc exp run`` arguments that list every model of every family in ``pipeline.<family>``.

    python -m tools.all_models      # -S 'pipeline.segmentation=[fcn,unet,segnet,dilated]' -S ...

``make repro-all`` runs ``dvc exp run`` with them: the default pipeline trains each family's headline
models (params.yaml's ``pipeline`` section, within the 60-minute budget on 2 cores); this trains all of
them (about 125 minutes there). Like any ``dvc exp run -S``, it writes the lists into params.yaml.
"""

from __future__ import annotations

import shlex

from components.families import FAMILIES


def arguments() -> list[str]:
    return [arg for family in FAMILIES.values()
            for arg in ("-S", f"pipeline.{family.name}=[{','.join(family.models)}]")]


def main() -> None:
    print(" ".join(shlex.quote(arg) for arg in arguments()))


if __name__ == "__main__":
    main()
