import pytest
import yaml

from sparseattn.hw import AcceleratorArch, ConfigError, GpuArch, arch_names, kinds, load_arch
from sparseattn.hw.config import validated
from tests.hw.conftest import tiny_arch_dict

REQUIRED = {"star", "sofa", "pade", "sanger", "dota", "spatten", "energon", "elsa", "a3", "a100", "h100"}


def test_every_required_architecture_is_bundled_and_valid():
    assert REQUIRED <= set(arch_names())
    for name in arch_names():
        arch = load_arch(name)
        assert arch.name == name
        if isinstance(arch, AcceleratorArch):
            assert arch.units and arch.buffers and arch.published.area_mm2 is not None
            assert arch.mapping.formal.q % 16 == 0 and arch.mapping.prediction == arch.mapping.formal
            assert arch.method in name or name == "star" or arch.method == name
        else:
            assert isinstance(arch, GpuArch) and arch.board_power_w > 0


def test_baselines_carry_the_iso_pade_setting():
    for name in ("sanger", "dota", "spatten", "energon", "elsa", "a3"):
        iso = load_arch(name).iso
        assert iso is not None and (iso.node_nm, iso.clock_mhz, iso.sram_kb, iso.dram_gbps) == (28, 800, 352, 256)


@pytest.mark.parametrize(
    ("path", "value", "expect"),
    [
        (("units", 0, "kind"), "tensor_core", r"units\.0\.kind: Input should be 'mac_array'.*'systolic_array'"),
        (("units", 1, "count"), -4, r"units\.1\.count: Input should be greater than 0"),
        (("units", 0, "executes"), ["qk/fma"], r"units\.0\.executes: .*unknown op 'fma'.*allowed: mac, mul"),
        (("units", 0, "executes"), ["formal/*"], r"unknown stage 'formal'.*allowed: quantize"),
        (("dram", "kind"), "hbm9", r"dram\.kind: Input should be 'hbm2'"),
        (("mapping", "formal", "q"), 24, r"mapping\.formal\.q: .*multiple of the profile's base tile 16"),
        (("mapping", "formal", "k"), 0, r"mapping\.formal\.k: Input should be greater than 0"),
        (("mapping", "pipelined"), True, r"mapping\.pipelined: Extra inputs are not permitted"),
        (("mapping", "kv_residency"), "always",
         r"mapping\.kv_residency: Input should be 'auto', 'never' or 'survivors'"),
        (("operands", "q_tile"), 64, r"operands\.q_tile: Extra inputs are not permitted"),
        (("buffers", 0, "holds"), ["kv"], r"buffers\.0\.holds\.0: Input should be 'q'"),
        (("clock_mhz",), 0, r"clock_mhz: Input should be greater than 0"),
        (("surprise",), 1, r"surprise: Extra inputs are not permitted"),
    ],
)
def test_bad_config_names_the_key_path_and_allowed_values(path, value, expect):
    data = tiny_arch_dict()
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(ConfigError, match=expect):
        validated(AcceleratorArch, data, "tiny.yaml")


def test_missing_keys_and_inconsistent_systolic_shape_are_errors():
    data = tiny_arch_dict()
    del data["dram"]
    with pytest.raises(ConfigError, match=r"dram: Field required"):
        validated(AcceleratorArch, data, "x")
    data = tiny_arch_dict()
    data["units"][0].update(rows=4, cols=4)  # 16 != count 64
    with pytest.raises(ConfigError, match=r"rows x cols \(4x4\) must equal count \(64\)"):
        validated(AcceleratorArch, data, "x")
    data = tiny_arch_dict()
    data["units"][1]["name"] = "pe"
    with pytest.raises(ConfigError, match="names must be unique"):
        validated(AcceleratorArch, data, "x")
    data = tiny_arch_dict()
    data["units"][0]["lanes"] = {"scoreboard": 8}  # a MAC array has no bit-serial lanes
    with pytest.raises(ConfigError, match=r"lanes .* needs kind bit_serial_lanes, not mac_array"):
        validated(AcceleratorArch, data, "x")
    data = tiny_arch_dict()
    del data["mapping"]
    with pytest.raises(ConfigError, match=r"mapping: Field required"):
        validated(AcceleratorArch, data, "x")


def test_load_arch_from_path_and_bad_files(tmp_path):
    good = tmp_path / "mine.yaml"
    good.write_text(yaml.safe_dump(tiny_arch_dict()))
    assert load_arch(good).name == "tiny"
    bad = tmp_path / "bad.yaml"
    bad.write_text("units: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_arch(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_arch(listy)
    with pytest.raises(ConfigError, match="unknown architecture 'tpu'; bundled: a100"):
        load_arch("tpu")
    with pytest.raises(ConfigError, match="does not exist"):
        load_arch(tmp_path / "missing.yaml")
    alien = tmp_path / "alien.yaml"
    alien.write_text(yaml.safe_dump({**tiny_arch_dict(), "kind": "tpu"}))
    with pytest.raises(ConfigError, match=r"alien.yaml: kind: unknown architecture kind 'tpu'; registered: "
                                          r"accelerator, gpu, mesh, replicated"):
        load_arch(alien)
    assert {"accelerator", "gpu", "replicated"} <= set(kinds())


def test_gpu_configs_need_their_roofline_fields():
    from sparseattn.hw.schema import CONFIG_DIR

    data = yaml.safe_load((CONFIG_DIR / "h100.yaml").read_text())
    data["compute_efficiency"] = 1.5
    with pytest.raises(ConfigError, match=r"compute_efficiency: Input should be less than or equal to 1"):
        validated(GpuArch, data, "h100.yaml")
