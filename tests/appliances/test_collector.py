import gc

from mesh.appliances.collector import MESH_THRESHOLDS, collector_tuned


def test_thresholds_are_raised_inside_and_restored_after():
    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with collector_tuned():
            assert gc.get_threshold() == MESH_THRESHOLDS
        assert gc.get_threshold() == (700, 10, 10)
    finally:
        gc.set_threshold(*before)


def test_higher_thresholds_are_never_lowered():
    before = gc.get_threshold()
    try:
        gc.set_threshold(50_000, 5, 500)
        with collector_tuned():
            assert gc.get_threshold() == (50_000, MESH_THRESHOLDS[1], 500)
        assert gc.get_threshold() == (50_000, 5, 500)
    finally:
        gc.set_threshold(*before)
