"""Ray: a local Ray cluster with 2 workers runs a study to the same trials (and so the same best trial) as the
local process pool with the same seed, sampler and batch."""

from __future__ import annotations

import pytest

from sparseattn.dse import StudyConfig, run_study

ray = pytest.importorskip("ray", reason="Ray is not installed: pip install 'sparseattn[dse]'")


def run(space, **executor):
    cfg = StudyConfig(sampler="tpe", n_trials=12, seed=3, n_startup=4, storage="memory", study_name="ray",
                      batch=2, progress=False, **executor)
    return run_study(space, cfg)


def test_ray_matches_the_local_pool(tiling_space):
    local = run(tiling_space, workers=2)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        distributed = run(tiling_space, ray=True)
    finally:
        ray.shutdown()
    assert (local.executor, local.workers) == ("pool", 2)
    assert (distributed.executor, distributed.workers) == ("ray", 2)
    assert [r.point for r in distributed.records] == [r.point for r in local.records]
    assert [r.objectives for r in distributed.records] == [r.objectives for r in local.records]
    assert distributed.best[0].number == local.best[0].number
    assert distributed.best[0].objectives == local.best[0].objectives
