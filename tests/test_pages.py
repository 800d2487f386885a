"""From an executed notebook to a chapter's pages: clean outputs, source order kept, details on a sub-page, verdicts
taken for the scoreboard, figure data offered as CSV; the number format and the figure helper's layout."""

import json

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from repro import pages
from repro.fmt import number, percent, pm, ratio, signed
from repro.plotting import MAX_WIDTH_IN, figure
from repro.report import FIGURE_DATA, VERDICTS_MIME


def executed_notebook():
    stderr = new_output("stream", name="stderr", text="/usr/lib/python3/site-packages/tqdm/auto.py:21: TqdmWarning\n")
    figure_out = new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"})
    csv_out = new_output("display_data", data={"text/csv": "x,y\n1,2\n"}, metadata={FIGURE_DATA: "curve"})
    verdicts = new_output("display_data", data={VERDICTS_MIME: {"chapter": "ch", "scale": "book", "verdicts": [],
                                                                "sections": {}}})
    nb = new_notebook(cells=[
        new_markdown_cell("# Title: subtitle\n\n**Claim**: something."),
        new_code_cell("lr = 0.1", metadata={"tags": ["parameters"]}),
        new_code_cell("lr = 0.2", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("result = run()", outputs=[stderr]),
        new_code_cell("show_verdicts()", outputs=[
            new_output("display_data", data={"text/markdown": "- **reproduced**"}), verdicts]),
        new_code_cell("show_figure()", outputs=[figure_out, csv_out]),
        new_markdown_cell("## Story"),
        new_code_cell("legend()", outputs=[new_output("execute_result", data={"text/plain": "<Legend at 0x7f>"})]),
        new_markdown_cell("## Ablation", metadata={"tags": ["details"]}),
        new_code_cell("ablation()", metadata={"tags": ["details", "hide-input"]}, outputs=[figure_out, csv_out]),
    ])
    nb.cells[-1].outputs[1] = new_output("display_data", data={"text/csv": "a\n3\n"},
                                         metadata={FIGURE_DATA: "ablation"})
    nb.metadata["papermill"] = {"input_path": "/home/someone/x.ipynb", "output_path": "/tmp/y.ipynb"}
    return nb


def test_clean_removes_stderr_stray_reprs_parameters_paths_verdicts_and_figure_data():
    nb = pages.clean(executed_notebook())
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert "remove-cell" in tags[1] and "remove-cell" in tags[2]  # parameters: once, as a table, not as code
    assert nb.cells[3].outputs == [] and "remove-cell" in tags[3]  # stderr gone, nothing left to show
    assert nb.cells[7].outputs == [] and "remove-cell" in tags[7]  # `<Legend at 0x...>`
    assert [list(o["data"]) for o in nb.cells[4].outputs] == [["text/markdown"]]  # the verdicts' record is not shown
    assert [list(o["data"]) for o in nb.cells[5].outputs] == [["image/png", "text/plain"]]  # nor the figure's CSV
    assert "remove-input" in tags[5] and "hide-input" not in tags[9] and "remove-input" in tags[9]
    assert "input_path" not in nb.metadata["papermill"] and "output_path" not in nb.metadata["papermill"]


def test_pages_keep_source_order_split_details_take_verdicts_and_figure_data(tmp_path):
    executed = tmp_path / "notebooks" / "ch.ipynb"
    executed.parent.mkdir()
    nbformat.write(executed_notebook(), executed)
    source = tmp_path / "ch.py"
    source.write_text("# %%\n")
    written = pages.write_pages(executed, tmp_path, "ch", source, {"preset": "book", "wall_time_s": 1.0,
                                                                   "device": "cpu", "commit": "abc", "date": "d"})
    assert [p.name for p in written] == ["ch.ipynb", "ch_details.ipynb"]
    main = nbformat.read(written[0], as_version=4)
    sources = [c.source for c in main.cells]
    assert sources[0].startswith("# Title")
    assert "{download}`executed notebook (.ipynb) <notebooks/ch.ipynb>`" in sources[1]
    assert "source (.py) <ch.py>" in sources[1]
    at = sources.index("show_verdicts()")  # source order: the verdicts, the figure, its data, then the story
    assert sources[at + 1] == "show_figure()" and sources[at + 3] == "## Story"
    assert sources[at + 2] == "<small>Data of the figure above (CSV): {download}`curve <data/ch-curve.csv>`</small>"
    assert "ablation()" not in sources and "ch_details.ipynb" in sources[-1]
    details = nbformat.read(written[1], as_version=4)
    assert details.cells[0].source.startswith("# Title: details")
    assert [c.source for c in details.cells[1:3]] == ["## Ablation", "ablation()"]
    assert "{download}`ablation <data/ch-ablation.csv>`" in details.cells[3].source  # the link follows its figure
    assert (tmp_path / "data" / "ch-curve.csv").read_text() == "x,y\n1,2\n"
    assert (tmp_path / "data" / "ch-ablation.csv").read_text() == "a\n3\n"
    assert json.loads((tmp_path / "verdicts" / "ch.json").read_text()) == [
        {"chapter": "ch", "scale": "book", "verdicts": [], "sections": {}}]
    downloaded = nbformat.read(executed, as_version=4)  # the download keeps figures, not CSV or verdict records
    assert downloaded.metadata["repro"]["preset"] == "book"  # for the execution page
    assert not [o for c in downloaded.cells for o in c.get("outputs", [])
                if "text/csv" in o.get("data", {}) or VERDICTS_MIME in o.get("data", {})]
    assert not any("Data of the figure" in c.source for c in downloaded.cells)
    page = pages.execution_page(tmp_path, {"ch": "Title: subtitle", "other": "Other: x"}, executed.parent)
    text = page.read_text()
    assert "| [Title](ch.ipynb) | `book` | 1 s | d | cpu | `abc` |" in text and "not run" in text


def test_number_format_three_significant_figures():
    assert [number(v) for v in (2.2, 0.123456, 1234.567, 12.3456, 99.95, -0.04567, 3, 0.0, 1.5e-5, float("nan"))] \
        == ["2.20", "0.123", "1,230", "12.3", "100", "-0.0457", "3", "0", "1.50e-05", "–"]
    assert pm(0.2764, 0.0123) == "0.276 ± 0.0123" and ratio(3.149) == "3.15×" and percent(0.9781) == "97.8%"
    assert [signed(v) for v in (0.0123, -0.0456, 0.0)] == ["+0.0123", "−0.0456", "0"]


def test_figure_wraps_wide_rows_to_two_panels_and_fits_the_page():
    fig, axes = figure(ncols=3, nrows=2, width=4.2)
    assert len(axes) == 6 and axes[0].get_subplotspec().get_gridspec().ncols == 2
    assert fig.get_size_inches()[0] <= MAX_WIDTH_IN + 1e-9
    fig, axes = figure(ncols=3, width=4.2)
    assert len(axes) == 3 and len(fig.axes) == 3  # the fourth slot of the 2 x 2 grid is removed
