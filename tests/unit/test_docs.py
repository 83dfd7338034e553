from docs.architecture import OUT, draw
from include.plots import png_size


def test_architecture_diagram_is_generated_from_its_source(tmp_path):
    """docs/architecture.png is what docs/architecture.py draws (re-run the script after editing it)."""
    fresh = draw(tmp_path / "architecture.png")
    assert png_size(fresh.read_bytes()) == (1280, 720)
    assert fresh.read_bytes() == OUT.read_bytes()
