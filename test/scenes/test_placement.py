"""Objects, rooms and placement: dimensions, no overlaps, children on parents, hiding,
determinism."""

import itertools

import numpy as np
import pytest

from recon_ros.scenes.geometry import primitive_sdf
from recon_ros.scenes.objects import OBJECT_CLASSES, VARIANTS, build_object
from recon_ros.scenes.placement import PlacementConfig, footprint_of
from recon_ros.scenes.scene import Scene, generate_scene, scene_seed


@pytest.mark.parametrize("class_name", OBJECT_CLASSES)
def test_every_variant_builds_and_rests_on_the_floor(class_name):
    rng = np.random.default_rng(0)
    for variant in VARIANTS[class_name]:
        for _ in range(3):
            model = build_object(class_name, rng, variant)
            lo, hi = model.bounds()
            assert model.variant == variant
            assert abs(lo[2]) < 1e-9, f"{class_name}/{variant} does not rest on z = 0"
            height = hi[2]
            expected = {
                "table": (0.69, 0.79),
                "chair": (0.7, 1.1),
                "nightstand": (0.44, 0.72),
                "laptop": (0.015, 0.35),
                "bag": (0.15, 0.7),
                "human": (0.3, 2.0),
            }[class_name]
            assert expected[0] <= height <= expected[1], f"{class_name}/{variant} height {height}"
            if model.support is not None:
                assert model.support.z == pytest.approx(height, abs=1e-9)
                assert np.all(np.asarray(model.support.lo) >= lo[:2] - 1e-9)
                assert np.all(np.asarray(model.support.hi) <= hi[:2] + 1e-9)
    with pytest.raises(ValueError, match="variant"):
        build_object(class_name, rng, "no_such_variant")


def test_standing_people_have_realistic_stature():
    rng = np.random.default_rng(5)
    heights = [build_object("human", rng, "standing").bounds()[1][2] for _ in range(20)]
    assert min(heights) > 1.5 and max(heights) < 2.0


def _visible_objects(scene):
    return [o for o in scene.visible_objects() if o.role == "object"]


def _models(scene):
    from recon_ros.scenes.objects import ObjectModel

    return {
        o.instance_id: ObjectModel(o.class_name, o.variant, o.primitives, o.materials, o.support)
        for o in _visible_objects(scene)
    }


SEEDS = [scene_seed(11, i) for i in range(12)]


@pytest.fixture(scope="module")
def scenes(crowded_scene):
    return [generate_scene(seed) for seed in SEEDS] + [crowded_scene]


def test_placed_objects_do_not_overlap(scenes):
    gap = PlacementConfig().gap
    for scene in scenes:
        models = _models(scene)
        boxes = {i: footprint_of(models[i], scene.object(i).pose) for i in models}
        lo, hi = scene.room.interior
        for i, box in boxes.items():
            assert box.inside(lo[:2], hi[:2]), f"seed {scene.seed}: object {i} leaves the room"
        for i, j in itertools.combinations(boxes, 2):
            a, b = scene.object(i), scene.object(j)
            if a.parent_id == j or b.parent_id == i:
                continue
            assert not boxes[i].overlaps(boxes[j], gap - 1e-6), f"seed {scene.seed}: {i} and {j}"


def test_placed_solids_do_not_intersect(scenes):
    """A stricter check than the boxes: no surface point of one object is inside another."""
    rng = np.random.default_rng(0)
    for scene in scenes[:4] + scenes[-1:]:
        objects = _visible_objects(scene)
        for a, b in itertools.permutations(objects, 2):
            points = []
            for prim in a.world_primitives():
                from recon_ros.scenes.geometry import primitive_mesh

                vertices, _ = primitive_mesh(prim, tolerance=5e-3)
                points.append(vertices[rng.choice(len(vertices), min(len(vertices), 50))])
            points = np.concatenate(points)
            inside = min(primitive_sdf(p, points).min() for p in b.world_primitives())
            assert inside > -1e-6, f"seed {scene.seed}: {a.instance_id} inside {b.instance_id}"


def test_children_rest_on_their_parents(scenes):
    children = 0
    for scene in scenes:
        for obj in _visible_objects(scene):
            if obj.parent_id is None:
                continue
            children += 1
            parent = scene.object(obj.parent_id)
            assert obj.class_name in ("laptop", "bag")
            assert parent.class_name in ("table", "nightstand") and not parent.hidden
            # The child's lowest point lies on the parent's top ...
            lo = min(p.bounds()[0][2] for p in obj.world_primitives())
            top = parent.pose[2, 3] + parent.support.z
            assert lo == pytest.approx(top, abs=1e-9)
            # ... and its rectangle within the top, in the parent's frame.
            from recon_ros.scenes.objects import ObjectModel

            child_model = ObjectModel(obj.class_name, obj.variant, obj.primitives, obj.materials)
            relative = np.linalg.inv(parent.pose) @ obj.pose
            box = footprint_of(child_model, relative)
            assert box.inside(parent.support.lo, parent.support.hi)
    assert children > 0


def test_hidden_objects_have_no_pose_and_no_primitives_in_the_world(crowded_scene):
    hidden = [o for o in crowded_scene.objects if o.hidden]
    assert hidden
    for obj in hidden:
        assert obj.pose is None and obj.world_primitives() == []
        assert obj.attempts in (0, 3)
        assert obj.to_dict()["hidden"] is True
    table = crowded_scene.primitive_table()
    assert not set(table.instance_ids) & {o.instance_id for o in hidden}


def test_counts_follow_the_config():
    config_counts = {"table": 1, "chair": 0, "nightstand": 0, "laptop": 0, "bag": 0, "human": 2}
    from recon_ros.scenes.scene import SceneConfig

    config = SceneConfig(
        placement=PlacementConfig(max_counts=config_counts, min_counts=config_counts)
    )
    scene = generate_scene(4, config)
    classes = sorted(o.class_name for o in scene.objects if o.role == "object")
    assert classes == ["human", "human", "table"]
    with pytest.raises(ValueError, match="max_counts"):
        PlacementConfig(max_counts={"sofa": 1})
    with pytest.raises(ValueError, match="min_counts"):
        PlacementConfig(max_counts={"table": 1}, min_counts={"table": 2})


def test_rooms_are_closed():
    """Rays from anywhere in the room, in any direction, hit a surface: nothing leaks out
    through doors, windows or passages."""
    from recon_ros.scenes.render import Renderer

    for seed in range(8):
        scene = generate_scene(scene_seed(3, seed))
        lx, ly, h = scene.room.size
        assert 4.0 <= lx <= 8.0 and 3.0 <= ly <= 6.0 and 2.4 <= h <= 3.0
        rng = np.random.default_rng(seed)
        origins = rng.uniform([0.05, 0.05, 0.05], [lx - 0.05, ly - 0.05, h - 0.05], (4000, 3))
        directions = rng.normal(size=(4000, 3))
        rays = np.concatenate([origins, directions], axis=1).astype(np.float32)
        hits = Renderer(scene).cast(rays)
        assert np.all(np.isfinite(hits["t_hit"])), f"seed {seed}: rays escape the room"
    kinds = {o.kind for s in range(8) for o in generate_scene(scene_seed(3, s)).room.openings}
    assert kinds == {"door", "window", "passage"}


def test_generation_is_deterministic_and_round_trips_through_json():
    a, b = generate_scene(123), generate_scene(123)
    assert a.to_dict() == b.to_dict()
    assert generate_scene(124).to_dict() != a.to_dict()
    again = Scene.from_dict(a.to_dict())
    assert again.to_dict() == a.to_dict()
    points = np.random.default_rng(0).uniform([0, 0, 0], a.room.size, size=(200, 3))
    np.testing.assert_array_equal(again.sdf(points)[0], a.sdf(points)[0])


def test_variant_sets_split_the_shapes_between_training_and_held_out_data():
    """ "train" never draws a held-out variant, "held_out" only those (unseen shapes for the
    Everted U-Net's test scenes); the choice survives the JSON round trip."""
    from recon_ros.scenes.objects import HELD_OUT_VARIANTS
    from recon_ros.scenes.scene import SceneConfig

    placement = PlacementConfig(max_counts={c: 2 for c in OBJECT_CLASSES})
    seen = {"train": set(), "held_out": set()}
    for variant_set, drawn in seen.items():
        config = SceneConfig(placement=placement, variant_set=variant_set)
        assert SceneConfig.from_dict(config.to_dict()) == config
        for seed in range(6):
            for obj in generate_scene(seed, config).objects:
                if obj.role == "object":
                    drawn.add((obj.class_name, obj.variant))
    held_out = set(HELD_OUT_VARIANTS.items())
    assert seen["held_out"] and seen["held_out"] <= held_out
    assert seen["train"] and not seen["train"] & held_out
    rng = np.random.default_rng(0)
    assert build_object("chair", rng, variant_set="held_out").variant == "armchair"
    with pytest.raises(ValueError, match="variant_set"):
        SceneConfig(variant_set="unseen")
