"""docs/DATA.md's column list is the schema's (regenerate it with
``python -m pipelines.layout``), and the paths it names are the ones written."""
from pathlib import Path

from pipelines import layout
from pipelines.schema import CLEAN_SCHEMA

DOC = Path(__file__).parents[2] / "docs" / "DATA.md"


def test_column_list_matches_the_schema():
    text = DOC.read_text()
    assert layout.DOC_BEGIN in text and layout.DOC_END in text
    assert layout.doc_with_columns(text) == text, "docs/DATA.md is stale: run python -m pipelines.layout"
    for f in CLEAN_SCHEMA:
        assert f"| `{f.name}` | `{f.type}` |" in text


def test_paths_in_the_doc_are_the_layouts():
    text = DOC.read_text()
    assert "OUT/week=<W>/manifest.json" in text and "manifests/<week>.json" not in text
    assert layout.clean_path("OUT/week=<W>", "<P>", "<B>") == "OUT/week=<W>/clean/port-<P>/part-<B>.parquet"
    assert "OUT/week=<W>/clean/port-<P>/part-<B>.parquet" in text
    assert f"OUT/{layout.VIEW_DIR}/<W> -> ../week=<W>/{layout.CLEAN_DIR}" in text
    assert "clean/port=" not in text   # no hive port folder is promised
