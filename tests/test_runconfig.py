"""A run's settings as a file: written and read back the same, every key and type checked, overrides layered."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

import pytest
import yaml

from medssl_lab.augment import MultiCropConfig
from medssl_lab.errors import ConfigError, MedsslError
from medssl_lab.pretrain import PretrainConfig
from medssl_lab.runconfig import (
    CONFIG_NAME,
    DataSettings,
    Section,
    _Loader,  # the loader read_config uses
    check,
    merge,
    parse_assignment,
    read_config,
    resolve,
    to_yaml,
    write_config,
    write_run_config,
)

PRETRAIN = Section(
    PretrainConfig,
    {
        "augment": Section(MultiCropConfig, exclude=("n_global", "n_local", "global_size", "local_size")),
        "data": Section(DataSettings),
    },
)


@dataclass
class Knobs:
    """Every kind of field the package's settings use."""

    count: int = 1
    rate: float = 0.1
    limit: int | None = None
    name: str = "a"
    flag: bool = False
    seeds: tuple[int, ...] = (0,)
    pair: tuple[int, int] | None = (5, 100)
    tasks: dict[str, tuple[float, ...]] = field(default_factory=lambda: {"x": (0.1,)})


def test_a_config_is_read_back_as_it_was_written(tmp_path: Path) -> None:
    config = PretrainConfig.for_profile("smoke", augment={"global_scale": (0.3, 1.0)}, weight_decay=1e-5, amp="off")
    data = {"sources": ["mednist", "store/1e5"], "data_dir": None, "synthetic": False}
    path = write_run_config(tmp_path, "pretrain", asdict(config), data)
    assert path == tmp_path / CONFIG_NAME and [p.name for p in tmp_path.iterdir()] == [CONFIG_NAME]
    text = path.read_text()
    assert text.startswith("# Every setting of this run") and "medssl-lab pretrain --config THIS_FILE" in text
    assert "amp: 'off'\n" in text and "global_scale: [0.3, 1.0]\n" in text  # 'off' quoted: YAML 1.1 reads a bool
    values = check(read_config(path), PRETRAIN, str(path))
    assert values["augment"] == {"global_scale": (0.3, 1.0)} and values.pop("data")["sources"] == (
        "mednist",
        "store/1e5",
    )
    assert PretrainConfig(**values) == config


def test_without_data_the_file_says_so(tmp_path: Path) -> None:
    text = write_run_config(tmp_path, "pretrain", {"lr": 0.1}, None).read_text()
    assert "No data section" in text and "data:" not in text


def test_yaml_as_1_2_reads_it() -> None:
    text = "flag: true\nname: off\nrate: 1e-3\ncount: 3\nlimit:\nseeds: [1, 2]\npair: [1, 2]\ntasks: {x: [0.5, 1]}\n"
    path_values = check(_load(text), Section(Knobs), "f")
    assert path_values == {
        "flag": True,
        "name": "off",
        "rate": 0.001,
        "count": 3,
        "limit": None,
        "seeds": (1, 2),
        "pair": (1, 2),
        "tasks": {"x": (0.5, 1.0)},
    }
    assert isinstance(path_values["rate"], float) and Knobs(**path_values).seeds == (1, 2)
    assert check({"rate": 2}, Section(Knobs), "f")["rate"] == 2.0  # an int where a float goes


def _load(text: str) -> dict:
    return yaml.load(text, Loader=_Loader)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"cout": 2}, "f.yaml: unknown key cout; did you mean count?"),
        ({"zzz": 2}, "f.yaml: unknown key zzz; the keys here are count, rate, limit, name, flag, seeds, pair, tasks"),
        ({"rate": "fast"}, "f.yaml: rate expects float, got 'fast' (str)"),
        ({"count": 2.5}, "f.yaml: count expects int (a whole number), got 2.5 (float)"),
        ({"count": True}, "f.yaml: count expects int (a whole number), got True (bool)"),
        ({"rate": [1, 2]}, "f.yaml: rate expects float, got [1, 2] (list)"),
        ({"limit": "x"}, "f.yaml: limit expects int (a whole number) or null, got 'x' (str)"),
        ({"name": 3}, "f.yaml: name expects str, got 3 (int)"),
        ({"flag": "yes"}, "f.yaml: flag expects bool (true or false), got 'yes' (str)"),
        ({"seeds": [1, "a"]}, "f.yaml: seeds expects a list of int (a whole number), got [1, 'a'] (list)"),
        ({"pair": [1]}, "f.yaml: pair expects a list of 2 (int (a whole number), int (a whole number)) or null"),
        ({"tasks": [1]}, "f.yaml: tasks expects a mapping of str to a list of float, got [1] (list)"),
    ],
)
def test_unknown_keys_and_wrong_types_name_the_file_the_key_and_what_fits(values: dict, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        check(values, Section(Knobs), "f.yaml")
    assert str(caught.value).startswith(message)
    assert isinstance(caught.value, MedsslError) and isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "values, message",
    [
        ({"augment": {"global_scal": [0.1, 1]}}, "unknown key augment.global_scal; did you mean augment.global_scale?"),
        ({"augment": {"n_local": 2}}, "unknown key augment.n_local;"),
        ({"augment": [1]}, "augment expects a mapping (key: value lines), got [1] (list)"),
        ({"data": {"sorces": ["mednist"]}}, "unknown key data.sorces; did you mean data.sources?"),
        ({"data": {"synthetic": "yes"}}, "data.synthetic expects bool (true or false), got 'yes' (str)"),
    ],
)
def test_sections_are_checked_against_their_own_dataclass(values: dict, message: str) -> None:
    with pytest.raises(ConfigError, match="^f.yaml: ") as caught:
        check(values, PRETRAIN, "f.yaml")
    assert message in str(caught.value)


def test_an_unknown_key_says_the_note_of_its_section() -> None:
    section = Section(Knobs, exclude=("name",), note="name is set elsewhere")
    with pytest.raises(ConfigError, match=r"unknown key name; .* \(name is set elsewhere\)"):
        check({"name": "x"}, section, "f")


@pytest.mark.parametrize(
    "text, message",
    [
        ("lr: [1, 2\n", "not a YAML file"),
        ("lr: 1\n  epochs: 2\n", "not a YAML file"),
        ("- lr\n- epochs\n", "holds a list, not a mapping of settings"),
        ("just words\n", "holds a str, not a mapping of settings"),
    ],
)
def test_a_file_that_is_no_yaml_mapping_is_named(text: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=f"^{path}: {message}"):
        read_config(path)


def test_a_missing_file_is_named_and_an_empty_one_sets_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"^{tmp_path / 'nope.yaml'}: no such settings file"):
        read_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=f"^{tmp_path}: not a readable YAML settings file"):
        read_config(tmp_path)
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert read_config(tmp_path / "empty.yaml") == {}


def test_assignments_are_yaml_values_under_dotted_keys() -> None:
    assert parse_assignment("lr=0.3") == {"lr": 0.3}
    assert parse_assignment("amp=off") == {"amp": "off"} and parse_assignment("balance=") == {"balance": None}
    assert parse_assignment("data.sources=[mednist, /my store]") == {"data": {"sources": ["mednist", "/my store"]}}
    assert parse_assignment("pretrain_overrides.augment.hflip_p=0.5") == {
        "pretrain_overrides": {"augment": {"hflip_p": 0.5}}
    }
    for bad in ("lr", "=3", "a..b=1", "lr rate=3"):
        with pytest.raises(ConfigError, match=f"--set {bad}: want KEY=VALUE"):
            parse_assignment(bad)
    with pytest.raises(ConfigError, match=r"--set lr=\[: the value is not YAML"):
        parse_assignment("lr=[")


def test_merge_goes_into_sections() -> None:
    base = {"lr": 1, "data": {"sources": ["a"], "data_dir": "/x"}}
    assert merge(base, {"data": {"data_dir": "/y"}, "epochs": 2}) == {
        "lr": 1,
        "data": {"sources": ["a"], "data_dir": "/y"},
        "epochs": 2,
    }
    assert base["data"]["data_dir"] == "/x"  # not changed in place


def test_precedence_file_then_flags_then_set(tmp_path: Path) -> None:
    write_config(tmp_path / "c.yaml", {"count": 1, "rate": 0.5, "name": "file", "tasks": {"x": [0.1]}})
    flags = {"count": 2, "name": None, "limit": None}  # None: an option not given
    settings = resolve(Section(Knobs), tmp_path / "c.yaml", flags, ["count=3", "rate=0.25", "rate=0.125"])
    assert settings == {"count": 3, "rate": 0.125, "name": "file", "tasks": {"x": (0.1,)}}
    assert resolve(Section(Knobs), None, {"count": 2}, []) == {"count": 2}
    with pytest.raises(ConfigError, match="^--set cont=3: unknown key cont; did you mean count?"):
        resolve(Section(Knobs), None, {}, ["cont=3"])
    with pytest.raises(ConfigError, match="^the command line: count expects int"):
        resolve(Section(Knobs), None, {"count": "x"}, [])


def test_values_yaml_cannot_hold_write_nothing(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot represent"):
        write_config(tmp_path / "c.yaml", {"x": object()})
    assert list(tmp_path.iterdir()) == []
    assert to_yaml({"seeds": (0, 1), "name": "1e5"}) == "seeds: [0, 1]\nname: '1e5'\n"
