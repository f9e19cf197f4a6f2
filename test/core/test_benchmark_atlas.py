"""The Atlas benchmark runs end to end (tiny settings; speed is not asserted here)."""

import argparse

from recon_ros.apps.benchmarks.atlas import add_parser, benchmark_atlas, format_result
from recon_ros.core.atlas_model import AtlasModelConfig
from recon_ros.core.reconstructor import ReconstructorConfig


def test_benchmark_reports_every_stage():
    model_config = AtlasModelConfig.small(
        backbone_widths=(4, 8, 8, 8, 8),
        fpn_channels=8,
        merge_channels=8,
        feature_channels=4,
        base_channels_3d=4,
        image_size=(128, 96),
    )
    config = ReconstructorConfig(window_dims=(32, 32, 32), max_map_chunks=64)
    result = benchmark_atlas(
        "cpu",
        frames=6,
        update_every=2,
        model_config=model_config,
        config=config,
        reference_dims=(4, 4, 4),
    )
    for stage in (
        "feature_extraction",
        "backprojection",
        "window_shift",
        "cnn_3d",
        "merge",
        "meshing",
    ):
        assert result["timings_ms"][stage]["count"] > 0
    assert result["peak_rss_mib"] > 0 and result["backprojection"]["speedup"] > 0
    text = format_result(result)
    assert "3D CNN over the window" in text and "speed-up" in text


def test_parser_registers_bench():
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "--device", "cpu", "--frames", "3"])
    assert args.func.__name__ == "run" and args.frames == 3
