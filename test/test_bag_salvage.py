"""Damaged bags (issue 9.6): an MCAP cut off by a killed recorder, or with a broken
metadata.yaml, is read record by record up to the damage and replayed; a bag that cannot be read
at all gives one line naming it."""

import shutil

import pytest

from recon_ros.apps.demo import default_demo_bag
from recon_ros.io.bag_salvage import SalvagedMcap, readable_bag
from recon_ros.io.bagfile import BagReader


def damaged_copy(tmp_path, keep: float):
    """A copy of the demo bag whose .mcap keeps only its first ``keep`` share of bytes."""
    target = tmp_path / "damaged"
    shutil.copytree(default_demo_bag(), target, symlinks=False)
    mcap = next(target.glob("*.mcap"))
    data = mcap.read_bytes()
    mcap.write_bytes(data[: int(len(data) * keep)])
    return target


def test_salvage_reads_the_intact_prefix(tmp_path):
    with BagReader(default_demo_bag()) as intact:
        full = [(m.topic, m.timestamp_ns) for m in intact.messages()]
        counts = {t: i.count for t, i in intact.topics.items()}
    whole = SalvagedMcap(default_demo_bag())
    assert whole.stopped is None
    assert {t: i.count for t, i in whole.topics.items()} == counts
    assert sorted((m.topic, m.timestamp_ns) for m in whole.messages()) == sorted(full)
    damaged = damaged_copy(tmp_path, 0.6)
    with pytest.raises(Exception):  # noqa: B017 - the regular reader refuses the file whole
        BagReader(damaged).open()
    with readable_bag(damaged) as (bag, damage):
        assert isinstance(bag, SalvagedMcap) and "is cut off" in damage
        got = [(m.topic, m.timestamp_ns) for m in bag.messages()]
        images = bag.topics["/camera/color/image_raw"].count
    assert 0 < images < counts["/camera/color/image_raw"]
    assert set(got) <= set(full) and len(got) > 0.4 * len(full)
    first = next(bag.messages(["/camera/color/image_raw"]))
    assert first.msg.width > 0 and len(first.msg.data) == first.msg.step * first.msg.height


def test_broken_metadata_and_unreadable_bags(tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(default_demo_bag(), broken, symlinks=False)
    (broken / "metadata.yaml").write_text("rosbag2_bagfile_information: [unclosed")
    with readable_bag(broken) as (bag, damage):
        assert "damaged" in damage and bag.topics["/camera/color/image_raw"].count == 60
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "metadata.yaml").write_text("not: a bag")
    (junk / "junk.db3").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="junk"), readable_bag(junk):
        pass


def test_replay_of_a_cut_off_bag_maps_what_was_recorded(tmp_path):
    from recon_ros.apps.replay import replay_bag

    damaged = damaged_copy(tmp_path, 0.4)
    report = replay_bag(
        damaged, tmp_path / "out", {"device": "cpu"}, render=False, progress=False,
        log=lambda *_: None,
    )  # fmt: skip
    assert report.integrated > 0 and report.images < 60
    assert any("damaged" in w for w in report.warnings)
    assert "the map holds what was read" in (tmp_path / "out" / "report.md").read_text()
