"""A bounded fuzz run (issue 9): a few hundred malformed images, compressed images, CameraInfo and
transforms, with good frames among them, against a live atlas_node over DDS. The node stays up,
its worker never dies, every image is accounted for and good frames are still mapped.
`recon-ros bench-fuzz --messages 10000` is the long run (bench/fuzz.md)."""

import pytest

from recon_ros.apps.benchmarks.fuzz import format_figures, passed, run_fuzz


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_bounded_fuzz_run(transport, tmp_path):
    figures = run_fuzz(200, seed=7, workdir=tmp_path, log=lambda *_: None, transport=transport)
    image_kind = "compressed" if transport == "compressed" else "image"
    assert sum(figures["sent"].values()) == 200
    assert set(figures["sent"]) == {image_kind, "camera_info", "tf", "good_frame"}
    assert passed(figures), format_figures(figures)
