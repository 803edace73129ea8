"""The Ray Tune harness: sweeps over one model of a family, each trial a Ray Train run.

- ``space``: ``tune.<family>.search_space`` -> ``ray.tune`` domains, the default point, schedulers;
- ``overrides``: the tuned file (``tuned/<family>.yaml``) and applying its values to a model's params;
- ``trial``: what one trial runs (a child MLflow run + the train harness's ``fit``);
- ``sweep``: the driver (``Tuner``, the parent MLflow run, the summary); ``figures``: metric vs params.

Imports are lazy: ``overrides`` (read by every train stage) pulls in neither Ray nor torch.
"""
