"""Every use of a private Ray module, in one place (checked against ray 2.60.0, the pinned version).

Ray's private modules (``_internal``, ``_private``, a leading underscore) change between releases
without notice. The rest of the code imports what it needs from here, so an upgrade has one file
to check: each name below says what is used, why, and where it lives at 2.60.0. Nothing here
imports Ray at import time (``components.runtime`` imports this module in Ray's worker setup hook).

Used (all of them loggers: quieting Ray's own log lines, no behaviour depends on them):

- ``ray.train.v2._internal.execution.context``: it logs each ``ray.train.report`` at INFO through
  ``logging.getLogger(__file__)``, a logger named by the file's *path*, which ``LoggingConfig``
  misses; local mode logs the whole metrics dict there every epoch, which the harness's progress
  line already says. :func:`quiet_train_report_loggers` sets it to the job's ``ray_log_level``.
- ``ray.train.v2._internal.execution.train_fn_utils`` (logger ``__name__``): local mode's report
  lines; :func:`quiet_train_report_loggers` sets it to WARNING.
- ``ray.train._internal.storage`` (logger ``__name__``): Ray Tune logs each checkpoint it stores
  (PBT) at INFO; :func:`quiet_tune_storage_logger` sets it to WARNING (``components/tune/trial.py``).
- ``ray.train.v2._internal.execution.controller.placement_group_cleaner`` (logger ``__name__``):
  without the dashboard's state API it warns "Failed to query Ray Train Controller actor state"
  every second; :data:`PLACEMENT_GROUP_CLEANER_LOGGER` is silenced by ``components.runtime``'s
  ``worker_process_setup_hook``.

Private *attributes* of public Ray classes are used elsewhere, where the subclass is, and are not
routed through here: ``components/tune/schedulers.py`` overrides ``PopulationBasedTraining.
_checkpoint_or_exploit`` and adjusts ``AsyncHyperBandScheduler._num_stopped`` (both checked at 2.60.0).
"""

from __future__ import annotations

import logging

RAY_VERSION_CHECKED = "2.60.0"

TRAIN_CONTEXT_MODULE = "ray.train.v2._internal.execution.context"
TRAIN_FN_UTILS_LOGGER = "ray.train.v2._internal.execution.train_fn_utils"
TUNE_STORAGE_LOGGER = "ray.train._internal.storage"
PLACEMENT_GROUP_CLEANER_LOGGER = "ray.train.v2._internal.execution.controller.placement_group_cleaner"


def quiet_train_report_loggers(report_level: str | int) -> None:
    """Ray Train's per-report log lines on a worker (or in local mode): the context's at
    ``report_level`` (the job's ``ray_log_level``), local mode's at WARNING."""
    import importlib

    context = importlib.import_module(TRAIN_CONTEXT_MODULE)
    logging.getLogger(context.__file__).setLevel(report_level)
    logging.getLogger(TRAIN_FN_UTILS_LOGGER).setLevel(logging.WARNING)


def quiet_tune_storage_logger() -> None:
    """Ray Tune's INFO line for every checkpoint it stores (PBT), at WARNING."""
    logging.getLogger(TUNE_STORAGE_LOGGER).setLevel(logging.WARNING)
