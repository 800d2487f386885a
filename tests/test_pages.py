"""From an executed notebook to a chapter's pages: clean outputs, answer first, details on a sub-page; the number
format and the figure helper's layout."""

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from repro import pages
from repro.plotting import MAX_WIDTH_IN, figure
from repro.report import number


def executed_notebook():
    stderr = new_output("stream", name="stderr", text="/usr/lib/python3/site-packages/tqdm/auto.py:21: TqdmWarning\n")
    figure_out = new_output("display_data", data={"image/png": "iVBOR", "text/plain": "<Figure>"})
    nb = new_notebook(cells=[
        new_markdown_cell("# Title: subtitle\n\n**Claim**: something."),
        new_code_cell("lr = 0.1", metadata={"tags": ["parameters"]}),
        new_code_cell("lr = 0.2", metadata={"tags": ["injected-parameters"]}),
        new_code_cell("result = run()", outputs=[stderr]),
        new_markdown_cell("## Story"),
        new_code_cell("plot()", metadata={"tags": ["summary-figure"]}, outputs=[figure_out]),
        new_code_cell("legend()", outputs=[new_output("execute_result", data={"text/plain": "<Legend at 0x7f>"})]),
        new_markdown_cell("## Ablation", metadata={"tags": ["details"]}),
        new_code_cell("ablation()", metadata={"tags": ["details", "hide-input"]}, outputs=[figure_out]),
        new_markdown_cell("## Verdict", metadata={"tags": ["summary"]}),
        new_code_cell("verdict()", metadata={"tags": ["summary"]},
                      outputs=[new_output("display_data", data={"text/markdown": "- **reproduced**"})]),
    ])
    nb.metadata["papermill"] = {"input_path": "/home/someone/x.ipynb", "output_path": "/tmp/y.ipynb"}
    return nb


def test_clean_removes_stderr_stray_reprs_parameters_and_paths():
    nb = pages.clean(executed_notebook())
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert "remove-cell" in tags[1] and "remove-cell" in tags[2]  # parameters: once, as a table, not as code
    assert nb.cells[3].outputs == [] and "remove-cell" in tags[3]  # stderr gone, nothing left to show
    assert nb.cells[6].outputs == [] and "remove-cell" in tags[6]  # `<Legend at 0x...>`
    assert "remove-input" in tags[5] and "hide-input" not in tags[8] and "remove-input" in tags[8]
    assert "input_path" not in nb.metadata["papermill"] and "output_path" not in nb.metadata["papermill"]


def test_answer_first_and_details_sub_page(tmp_path):
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
    assert sources[2:5] == ["## Verdict", "verdict()", "plot()"]  # the verdict, then the one figure
    assert "ablation()" not in sources and "ch_details.ipynb" in sources[-1]
    details = nbformat.read(written[1], as_version=4)
    assert details.cells[0].source.startswith("# Title: details")
    assert [c.source for c in details.cells[1:]] == ["## Ablation", "ablation()"]
    assert nbformat.read(executed, as_version=4).metadata["repro"]["preset"] == "book"  # for the execution page
    page = pages.execution_page(tmp_path, {"ch": "Title: subtitle", "other": "Other: x"}, executed.parent)
    text = page.read_text()
    assert "| [Title](ch.ipynb) | `book` | 1 s | d | cpu | `abc` |" in text and "not run" in text


def test_number_format_three_significant_figures():
    assert [number(v) for v in (2.2, 0.123456, 1234.567, 12.3456, 99.95, -0.04567, 3, 0.0, 1.5e-5, float("nan"))] \
        == ["2.20", "0.123", "1,230", "12.3", "100", "-0.0457", "3", "0", "1.50e-05", "–"]


def test_figure_wraps_wide_rows_to_two_panels_and_fits_the_page():
    fig, axes = figure(ncols=3, nrows=2, width=4.2)
    assert len(axes) == 6 and axes[0].get_subplotspec().get_gridspec().ncols == 2
    assert fig.get_size_inches()[0] <= MAX_WIDTH_IN + 1e-9
    fig, axes = figure(ncols=3, width=4.2)
    assert len(axes) == 3 and len(fig.axes) == 3  # the fourth slot of the 2 x 2 grid is removed
