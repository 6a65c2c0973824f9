"""Bad search spaces give clear errors that name the parameter and what is wrong."""

from __future__ import annotations

import copy
import re

import pytest

from sparseattn.dse import SpaceError, load_space, read_space, space_names

from .conftest import SMALL, space_of, write_space


def with_param(**param):
    data = copy.deepcopy(SMALL)
    data["parameters"] = [param]
    return data


@pytest.mark.parametrize("param, message", [
    ({"path": "mapping.formal.k", "low": 64, "high": 16}, "empty range: low (64) must be below high (16)"),
    ({"path": "mapping.formal.k", "low": 64, "high": 64}, "empty range"),
    ({"path": "mapping.formal.k", "values": []}, "`values` is empty"),
    ({"path": "mapping.formal.k", "values": [16, 16]}, "duplicates"),
    ({"path": "mapping.formal.k", "low": 16, "high": 100, "step": 16}, "multiple of step"),
    ({"path": "mapping.formal.k", "low": 0, "high": 64, "log": True}, "log range needs low > 0"),
    ({"path": "mapping.formal.k"}, "give either `values`"),
    ({"path": "units.exp.count", "values": [1], "per_layer": [0]}, "per_layer applies to method parameters"),
])
def test_malformed_parameters(param, message):
    with pytest.raises(SpaceError, match=re.escape(message)):
        space_of(with_param(**param))


@pytest.mark.parametrize("path, message", [
    ("units.nosuch.count", "no item 'nosuch'"),
    ("mapping.formal.z", "unknown key 'z'"),
    ("buffers.token.colour", "unknown key 'colour'"),
    ("method.nosuch", "'method.nosuch' is not a parameter of method 'star'; its parameters: keys, k, Tc"),
])
def test_unknown_paths_are_checked_against_the_real_models(path, message):
    with pytest.raises(SpaceError, match=message):
        space_of(with_param(path=path, values=[1, 2]))


def test_values_the_schema_refuses_name_the_parameter():
    with pytest.raises(SpaceError, match=r"parameter 'formal.k' = 24 is refused: (.|\n)*multiple of the profile"):
        space_of(with_param(path="mapping.formal.k", values=[16, 24]))
    with pytest.raises(SpaceError, match=r"parameter .k. = 1.5 is refused: (.|\n)*k"):
        space_of(with_param(path="method.k", values=[0.1, 1.5]))
    with pytest.raises(SpaceError, match="count must be a multiple of 128"):
        space_of(with_param(path="units.sa_qk.count", values=[256, 300]))


def test_constraints_no_point_satisfies():
    data = copy.deepcopy(SMALL)
    data["constraints"] = {"area_mm2_max": 1.0}
    with pytest.raises(SpaceError, match=r"no point of space 'small-test' satisfies its constraints \(checked every "
                                         r"point, 16 points\).*area .* exceeds the budget of 1.0 mm2"):
        space_of(data)
    data = with_param(path="mapping.formal.q", values=[512, 1024])
    with pytest.raises(SpaceError, match=r"does not fit 'star'.*over by"):
        space_of(data)


def test_bad_objectives_and_structure():
    with pytest.raises(SpaceError, match="unknown objective 'speed'"):
        space_of(SMALL, objectives=["speed"])
    with pytest.raises(SpaceError, match="takes no options"):
        space_of(SMALL, objectives=[{"name": "latency_ms", "alpha": 1.0}])
    with pytest.raises(SpaceError, match="unknown paper model 'gpt5'"):
        space_of(SMALL, objectives=[{"name": "sofa", "paper_model": "gpt5"}])
    with pytest.raises(SpaceError, match="objective 'sofa' needs a SOFA-family method"):
        space_of(SMALL, workload={"arch": "pade"}, objectives=["sofa"])
    with pytest.raises(SpaceError, match="accuracy objectives need finite method parameters"):
        space_of(with_param(path="method.k", low=0.05, high=0.5), objectives=["nll"])
    with pytest.raises(SpaceError, match="parameters: List should have at least 1 item"):
        space_of(SMALL, parameters=[])
    with pytest.raises(SpaceError, match="colour: Extra inputs are not permitted"):
        space_of(SMALL, colour="red")
    with pytest.raises(SpaceError, match="workload: unknown architecture 'nosuch'"):
        space_of(SMALL, workload={"arch": "nosuch"})


def test_grid_needs_finite_parameters():
    space = space_of(with_param(path="dram.gbps", low=100.0, high=400.0))
    with pytest.raises(SpaceError, match="continuous range: the grid sampler needs `values` or a `step`"):
        space.grid()


def test_bundled_spaces_and_files_resolve(tmp_path):
    assert {"star-tiling", "star-arch", "sofa-paper"} <= set(space_names())
    for name in space_names():
        assert read_space(name).name == name
    assert load_space("star-tiling", seq=16384).shape.q_len == 16384
    path = write_space(tmp_path, SMALL)
    assert load_space(path).grid_size() == 16
    with pytest.raises(SpaceError, match="does not exist"):
        load_space(tmp_path / "missing.yaml")
    with pytest.raises(SpaceError, match="unknown search space 'nosuch'; bundled: "):
        load_space("nosuch")
