"""The Ray Tune harness: sweeps over one model of a family, each trial a Ray Train run (or, for RL,
an RLlib algorithm).

- ``space``: ``tune.<family>.search_space`` -> ``ray.tune`` domains, the default point, schedulers;
- ``overrides``: the tuned file (``tuned/<family>.yaml``) and applying its values to a model's params;
- ``trial``: what one trial runs (a child MLflow run + the train harness's ``fit``);
- ``rl_trial``: an RL sweep's trial: the RLlib algorithm itself as the Tune trainable (``tune.rl``);
- ``sweep``: the driver (``Tuner`` and each trial's record); ``figures``: metric vs params.

Imports are lazy: ``overrides`` (read by every train stage) pulls in neither Ray nor torch.
"""
