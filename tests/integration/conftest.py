"""Integration fixtures: one local Ray session for the whole tier, tiny prepared data."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory):
    """A local 2-CPU Ray, started once (start-up costs seconds) and shared by every test."""
    import ray

    from components.runtime import ray_init

    ray_init(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture
def prepared(workdir, prepare_data):
    """``workdir`` with the tiny datasets written by the real prepare stage (once per pytest worker,
    then copied: ``prepare_data``)."""
    prepare_data(workdir)
    return workdir
