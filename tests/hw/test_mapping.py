"""The mapping as its own input: validation, defaults per architecture, files, dotted-path overrides."""

import pytest
import yaml

from sparseattn.hw import (
    ConfigError,
    Mapping,
    Tile,
    load_arch,
    load_mapping,
    load_model_shape,
    simulate,
    with_overrides,
)
from sparseattn.hw.config import validated

LLAMA_2K = load_model_shape("llama2-7b").shape(2048)


def test_a_mapping_is_validated_and_states_its_defaults():
    m = validated(Mapping, {"formal": {"q": 64, "k": 32}}, "m.yaml")
    assert m.prediction == m.formal == Tile(q=64, k=32)
    assert (m.stage_overlap, m.double_buffered, m.cross_stage_reuse, m.gqa_share, m.kv_residency) == (
        True, True, False, True, "auto")
    assert not m.shares_k_read
    for bad, expect in [
        ({"formal": {"q": 0, "k": 64}}, r"m.yaml: invalid configuration\n  formal\.q: Input should be greater than 0"),
        ({"formal": {"q": 64, "k": 40}}, r"formal\.k: must be a multiple of the profile's base tile 16"),
        ({"formal": {"q": 64, "k": 64}, "tiles": 3}, r"tiles: Extra inputs are not permitted"),
        ({"formal": {"q": 64, "k": 64}, "predict": {"q": 64}}, r"predict\.k: Field required"),
        ({}, r"formal: Field required"),
    ]:
        with pytest.raises(ConfigError, match=expect):
            validated(Mapping, bad, "m.yaml")


def test_cross_stage_reuse_needs_equal_tiles():
    same = validated(Mapping, {"formal": {"q": 128, "k": 64}, "cross_stage_reuse": True}, "m")
    assert same.shares_k_read
    apart = same.model_copy(update={"predict": Tile(q=128, k=128)})
    assert not apart.shares_k_read and apart.prediction == Tile(q=128, k=128)


def test_every_architecture_carries_its_default_mapping_and_load_mapping_reads_it(tmp_path):
    sofa = load_arch("sofa")
    assert sofa.mapping.formal == Tile(q=128, k=64) and sofa.mapping.cross_stage_reuse
    assert load_mapping("sofa") == sofa.mapping
    own = tmp_path / "m.yaml"
    own.write_text(yaml.safe_dump({"formal": {"q": 64, "k": 64}, "stage_overlap": False}))
    assert load_mapping(own) == Mapping(formal=Tile(q=64, k=64), stage_overlap=False)
    with pytest.raises(ConfigError, match="unknown mapping 'tpu'"):
        load_mapping("tpu")
    with pytest.raises(ConfigError, match=r"mapping file .* does not exist"):
        load_mapping(tmp_path / "none.yaml")
    with pytest.raises(ConfigError, match=r"architecture of kind .gpu. has no mapping block"):
        load_mapping("h100")


def test_simulate_takes_a_mapping_apart_from_the_architecture(tmp_path):
    sofa = load_arch("sofa")
    default = simulate(sofa, "sofa", LLAMA_2K)
    assert default.mapping == sofa.mapping.model_dump()
    assert simulate(sofa, "sofa", LLAMA_2K, sofa.mapping).latency_s == default.latency_s
    serial = sofa.mapping.model_copy(update={"stage_overlap": False})
    slow = simulate(sofa, "sofa", LLAMA_2K, serial)
    assert slow.latency_s > default.latency_s and slow.mapping["stage_overlap"] is False
    path = tmp_path / "serial.yaml"
    path.write_text(yaml.safe_dump(serial.model_dump()))
    assert simulate(sofa, "sofa", LLAMA_2K, path).latency_s == slow.latency_s
    with pytest.raises(ConfigError, match="mapping must be a Mapping"):
        simulate(sofa, "sofa", LLAMA_2K, {"formal": {"q": 64, "k": 64}})


def test_with_formal_and_overrides_by_dotted_path():
    sofa = load_arch("sofa")
    assert sofa.mapping.with_formal(k=128).formal == Tile(q=128, k=128)
    with pytest.raises(ConfigError, match=r"formal\.q: Input should be greater than 0"):
        sofa.mapping.with_formal(q=0)
    wide = with_overrides(sofa, {"units.sa_qk.count": 512, "units.sa_qk.cols": 4, "mapping.formal.k": 128,
                                 "buffers.0.kb": 256, "dram.gbps": 512})
    assert isinstance(wide, type(sofa)) and wide is not sofa
    qk = next(u for u in wide.units if u.name == "sa_qk")
    assert (qk.count, qk.cols, wide.mapping.formal.k, wide.buffers[0].kb, wide.dram.gbps) == (512, 4, 128, 256, 512)
    assert sofa.mapping.formal.k == 64  # the original is untouched
    assert with_overrides(sofa.mapping, {"predict": Tile(q=128, k=128)}).prediction == Tile(q=128, k=128)
    for overrides, expect in [
        ({"units.sa_qk.count": 300}, r"units\.4\.rows: Value error|rows x cols \(128x2\) must equal count \(300\)"),
        ({"units.nope.count": 1}, r"override 'units.nope.count': no item 'nope'; items: dlzs, lze"),
        ({"mapping.formal.z": 1}, r"override 'mapping.formal.z': unknown key 'z'; known: k, q"),
        ({"mapping.predict.q": 64}, r"override 'mapping.predict.q': 'q' is inside a value that is not a block"),
        ({"mapping.kv_residency": "always"}, r"(?s)sofa with overrides .*mapping\.kv_residency: Input should be"),
    ]:
        with pytest.raises(ConfigError, match=expect):
            with_overrides(sofa, overrides)
