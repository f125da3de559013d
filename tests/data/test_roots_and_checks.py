"""Data roots, file checks, ensure_data_ok, the check-data command, the clip loader, configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from trees import photo_like, write_png

import dfbench.configs
from dfbench.cli.check_data import check_data
from dfbench.data import cityscapes, kitti, vspw
from dfbench.data.base import DataProblem
from dfbench.data.checks import check_dataset, check_image, ensure_data_ok, error_message
from dfbench.data.loader import clip_loader
from dfbench.data.roots import resolve_root, resolve_root_with_source
from dfbench.errors import DfbenchError
from dfbench.registry import get_dataset_class, get_dataset_spec


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for variable in ("CITYSCAPES_ROOT", "KITTI_ROOT", "VSPW_ROOT"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    return tmp_path / "config" / "dfbench" / "data.yaml"


# ------------------------------------------------------------------------------------ roots


def test_flag_wins_over_environment_which_wins_over_config(clean_env, monkeypatch, tmp_path):
    clean_env.parent.mkdir(parents=True)
    clean_env.write_text("kitti: relative/kitti\nvspw: /data/VSPW_480p\n")
    assert resolve_root_with_source("kitti") == (clean_env.parent / "relative" / "kitti", f"{clean_env} (kitti)")
    monkeypatch.setenv("KITTI_ROOT", str(tmp_path / "from-env"))
    assert resolve_root_with_source("kitti") == (tmp_path / "from-env", "$KITTI_ROOT")
    assert resolve_root("kitti", str(tmp_path / "flag")) == tmp_path / "flag"
    assert resolve_root("vspw") == Path("/data/VSPW_480p")


def test_no_root_anywhere_says_which_flag_and_variable_to_set(clean_env):
    with pytest.raises(DfbenchError, match=r"no data root for cityscapes: pass --data-root DIR, set \$CITYSCAPES_ROOT"):
        resolve_root("cityscapes")


def test_an_explicit_config_must_exist_and_parse(clean_env, tmp_path):
    with pytest.raises(DfbenchError, match="does not exist"):
        resolve_root("vspw", config_path=tmp_path / "absent.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("vspw: [unclosed\n")
    with pytest.raises(DfbenchError, match="cannot read the data config"):
        resolve_root("vspw", config_path=broken)
    listed = tmp_path / "list.yaml"
    listed.write_text("- /data\n")
    with pytest.raises(DfbenchError, match="must map data set names"):
        resolve_root("vspw", config_path=listed)
    good = tmp_path / "good.yaml"
    good.write_text("vspw: /data/vspw\n")
    assert resolve_root("vspw", config_path=good) == Path("/data/vspw")


def test_data_sets_resolve_their_root_from_the_environment(clean_env, monkeypatch, cityscapes_tree):
    root, ids = cityscapes_tree
    monkeypatch.setenv("CITYSCAPES_ROOT", str(root))
    assert cityscapes.CityscapesDataset().sample_ids() == ids


# ----------------------------------------------------------------------------- image checks


def test_check_image_cheap_and_deep(tmp_path):
    good = write_png(tmp_path / "good.png", photo_like(64, 96, "x"))
    assert check_image(good, "frame") is None and check_image(good, "frame", deep=True) is None
    assert check_image(tmp_path / "absent.png", "frame") == DataProblem(str(tmp_path / "absent.png"), "missing frame")
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"not an image at all")
    assert "a readable frame" in check_image(garbage, "frame").expected
    jpeg = tmp_path / "cut.jpg"
    Image.fromarray(photo_like(64, 96, "y")).save(jpeg)
    jpeg.write_bytes(jpeg.read_bytes()[:-100])
    assert "truncated" in check_image(jpeg, "frame").expected
    # Damage inside the compressed pixel data, end marker intact: only a full decode sees it.
    data = bytearray(good.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    damaged = tmp_path / "damaged.png"
    damaged.write_bytes(bytes(data))
    assert check_image(damaged, "frame") is None
    assert "a readable frame" in check_image(damaged, "frame", deep=True).expected


def test_error_message_names_the_first_problems_and_the_count():
    problems = [DataProblem(f"/data/kitti/{i:010d}.png", f"missing frame {i}") for i in range(5)]
    message = error_message("kitti", "/data/kitti", problems)
    assert message.startswith("kitti: 5 problems in /data/kitti: missing frame 0: /data/kitti/0000000000.png; ")
    assert "missing frame 2" in message and "missing frame 3" not in message and "... and 2 more" in message
    assert "--data-root" in message and "\n" not in message


def test_ensure_data_ok_raises_on_problems_and_passes_a_good_tree(tmp_path, vspw_tree):
    ensure_data_ok("vspw", vspw_tree)
    ensure_data_ok(vspw.VspwDataset(str(vspw_tree)), deep=True)
    assert check_dataset("vspw", vspw_tree) == []
    with pytest.raises(DfbenchError, match=r"^vspw: 2 problems in .*: an existing data root folder"):
        ensure_data_ok("vspw", tmp_path / "absent")


# -------------------------------------------------------------------------- check-data CLI


def test_check_data_command_exit_codes(cityscapes_tree, tmp_path):
    root, _ = cityscapes_tree
    runner = CliRunner()
    ok = runner.invoke(check_data, ["--dataset", "cityscapes", "--data-root", str(root)])
    assert ok.exit_code == 0, ok.output
    assert "cityscapes is ready" in ok.output
    (tmp_path / "gtFine" / "val").mkdir(parents=True)
    bad = runner.invoke(check_data, ["--dataset", "cityscapes", "--data-root", str(tmp_path), "--deep"])
    assert bad.exit_code == 2
    error_lines = [line for line in bad.stderr.splitlines() if line.startswith("Error:")]
    assert len(error_lines) == 1 and "cityscapes: 1 problem in" in error_lines[0]
    usage = runner.invoke(check_data, ["--dataset", "vspw", "--data-root", str(root), "--split-file", "x.txt"])
    assert usage.exit_code == 2 and "vspw does not take the option(s) split_file" in usage.stderr


def test_check_data_accepts_the_synthetic_set():
    result = CliRunner().invoke(check_data, ["--dataset", "synthetic", "--deep"])
    assert result.exit_code == 0, result.output
    assert "synthetic (generated, no files)" in result.output and "synthetic is ready" in result.output


def test_check_data_for_kitti_reads_the_split_file(kitti_tree, tmp_path):
    runner = CliRunner()
    result = runner.invoke(check_data, ["--dataset", "kitti", "--data-root", str(kitti_tree), "--split-file", str(tmp_path / "none.txt")])
    assert result.exit_code == 2 and "--split-file" in result.stderr


# ---------------------------------------------------------------------------- clip loader


def test_loader_order_and_content_do_not_depend_on_workers(vspw_tree):
    dataset = vspw.VspwDataset(str(vspw_tree), frame_size=16)
    serial = [clip for batch in clip_loader(dataset, num_workers=0) for clip in batch]
    assert [clip.sample_id for clip in serial] == dataset.sample_ids()
    batches = list(clip_loader(dataset, num_workers=2, batch_size=2, prefetch_factor=1))
    assert [len(batch) for batch in batches] == [2, 2, 1]
    parallel = [clip for batch in batches for clip in batch]
    for a, b in zip(serial, parallel, strict=True):
        assert a.sample_id == b.sample_id
        assert torch.equal(a.frames, b.frames) and torch.equal(a.labels["seg"], b.labels["seg"])
        assert torch.equal(a.timestamps, b.timestamps)
    subset = dataset.sample_ids()[3:0:-1]
    assert [c.sample_id for b in clip_loader(dataset, num_workers=0, sample_ids=subset) for c in b] == subset


# ---------------------------------------------------------------------------- configs, registry


@pytest.mark.parametrize(
    "name,module,cls",
    [("cityscapes", cityscapes, cityscapes.CityscapesDataset), ("kitti", kitti, kitti.KittiDataset), ("vspw", vspw, vspw.VspwDataset)],
)
def test_each_loader_declares_its_spec(name, module, cls, tmp_path):
    """The spec beside the loader is what the registry, the class and its instances report."""
    spec = get_dataset_spec(name)
    assert get_dataset_class(name) is cls and spec is module.SPEC and spec.name == cls.name == name
    assert (cls.tasks, cls.fps) == (dict(spec.tasks), spec.fps)
    assert spec.env == f"{name.upper()}_ROOT" and spec.default_feature_space == "dinov3-vitb16" and spec.decode_workers == 2
    assert not list((Path(dfbench.configs.__file__).parent / "datasets").glob(f"{name}.yaml"))  # no mirrored YAML


def test_a_data_root_comes_from_the_variable_its_spec_names(monkeypatch, clean_env, tmp_path):
    monkeypatch.setenv("VSPW_ROOT", str(tmp_path))
    assert resolve_root_with_source("vspw") == (tmp_path, "$VSPW_ROOT")
    with pytest.raises(DfbenchError, match="synthetic.* no data root"):
        resolve_root("synthetic")


def test_check_data_under_a_protocol_checks_the_files_it_reads(tmp_path):
    """DINO-Foresight's protocol reads Cityscapes' relative depth PNGs: check-data finds a missing one."""
    from trees import cityscapes_depth_path, make_cityscapes_tree

    root = tmp_path / "cityscapes"
    make_cityscapes_tree(root, cities=("lindau",), sequences=2, relative_depth=True)
    runner = CliRunner()
    args = ["--dataset", "cityscapes", "--data-root", str(root)]
    assert runner.invoke(check_data, [*args, "--protocol", "dinoforesight"]).exit_code == 0
    cityscapes_depth_path(root, "val", "lindau", "lindau_000001_000314").unlink()
    assert runner.invoke(check_data, args).exit_code == 0  # DINO-world's protocol reads no depth PNG
    missing = runner.invoke(check_data, [*args, "--protocol", "dinoforesight"])
    assert missing.exit_code == 2
    (line,) = [line for line in missing.stderr.splitlines() if line.startswith("Error:")]
    assert "1 problem" in line
    assert "lindau_000001_000314_leftImg8bit_depth.png" in missing.output
    unknown = runner.invoke(check_data, [*args, "--protocol", "dinofuture"])
    assert unknown.exit_code == 2 and "unknown protocol 'dinofuture'" in unknown.stderr
