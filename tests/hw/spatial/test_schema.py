"""The mesh YAML: bundled configs, the registry, and errors that name the key path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sparseattn.hw import ConfigError, kinds, load_arch, method_of, simulate
from sparseattn.hw.registry import arch_kind
from sparseattn.hw.schema import CONFIG_DIR
from sparseattn.hw.spatial import MeshArch, MeshResult, load_mesh, mesh_names, mesh_path

from .conftest import small_shape

BUNDLED = mesh_path("spatial-star-4x4")


def _write(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load(BUNDLED.read_text())
    for dotted, value in changes.items():
        node = data
        *parents, last = dotted.split(".")
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[last] = value
    path = tmp_path / "mesh.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_bundled_meshes_load_and_register_the_mesh_kind():
    assert {"spatial-star-2x2", "spatial-star-4x4", "spatial-star-8x8"} <= set(mesh_names())
    assert "mesh" in kinds()
    for name in mesh_names():
        arch = load_mesh(name)
        assert isinstance(arch, MeshArch) and arch.core.name == "star"
        assert arch_kind(arch).name == "mesh" and method_of(arch) == "star"
    assert load_mesh("spatial-star-8x8").cores == 64


def test_simulate_takes_a_mesh_yaml_path(star_trace):
    result = simulate(str(BUNDLED), star_trace, small_shape(4096, heads=16))
    assert isinstance(result, MeshResult) and result.kind == "mesh"
    assert result.latency_s > 0 and result.tokens_per_s == pytest.approx(4096 / result.latency_s)
    assert len(result.core_utilisation) == 4 and len(result.core_utilisation[0]) == 4


@pytest.mark.parametrize(("key", "value", "names"), [
    ("mesh.rows", 0, "mesh.rows"),
    ("mesh.cols", -2, "mesh.cols"),
    ("hbm.stacks.1.index", 3, "hbm.stacks.1"),
    ("hbm.stacks", [], "hbm.stacks"),
    ("noc.link_gbps", 0, "noc.link_gbps"),
    ("core", "no-such-core", "core"),
    ("core", "h100", "core"),
])
def test_bad_configs_name_the_key_path(tmp_path, key, value, names):
    with pytest.raises(ConfigError) as err:
        load_arch(_write(tmp_path, **{key: value}))
    assert names in str(err.value)


def test_unreachable_stack_says_why(tmp_path):
    with pytest.raises(ConfigError, match="unreachable"):
        load_arch(_write(tmp_path, **{"hbm.stacks.0.span": 9}))


def test_a_core_whose_sram_cannot_hold_its_shard_is_refused(tmp_path, star_trace):
    core = yaml.safe_load((CONFIG_DIR / "star.yaml").read_text())
    core["buffers"][0]["kb"] = 64
    core_path = tmp_path / "tiny-star.yaml"
    core_path.write_text(yaml.safe_dump(core))
    path = _write(tmp_path, core=str(core_path))
    with pytest.raises(ConfigError, match="does not fit"):
        simulate(path, star_trace, small_shape(4096, heads=16))
