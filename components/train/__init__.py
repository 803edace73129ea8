"""The Ray Train harness: one loop that drives every family through the :class:`Task` interface."""
