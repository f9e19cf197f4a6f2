"""`recon-ros bench-models` runs its rows (speed itself is the benchmark's business, not a test's):
every requested model gives timed rows with the parameter counts of the models it ran."""

from recon_ros.apps.benchmarks.models import benchmark_models, format_result


def test_bench_models_rows_for_the_object_model():
    result = benchmark_models(models=("r2n2",), devices=("cpu",), iterations=1, warmup=0)
    rows = result["rows"]
    assert [r["model"] for r in rows] == ["r2n2"] * 3
    assert all(r["median_ms"] > 0 and r["device"] == "cpu" for r in rows)
    baseline, ours = rows[0], rows[1]
    assert baseline["baseline"] and baseline["parameters"] > 3 * ours["parameters"]
    assert "faster than the baseline" in format_result(result)


def test_bench_models_rows_for_the_rig_and_single_image_models():
    result = benchmark_models(models=("everted", "ifnet"), devices=("cpu",), iterations=1, warmup=0)
    assert [r["model"] for r in result["rows"]] == ["everted"] * 2 + ["ifnet"] * 7
    assert all(r["median_ms"] > 0 for r in result["rows"])
    stages = {r["what"].split(",")[0].split(" (")[0]: r for r in result["rows"]}
    # the whole single-image model is its three stages: more parameters than any one of them
    whole = stages["ifnet image to occupancy grid"]
    assert all(whole["parameters"] >= r["parameters"] for r in result["rows"][2:])
