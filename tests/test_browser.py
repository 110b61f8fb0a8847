"""The Voilà dashboards as a person sees them, in Debian's chromium.

Only what a browser can show is tested here: that a dashboard renders with no error and no request
to any host but its own server (the deployment has no internet). What the notebooks compute is
tested with papermill in test_notebooks.py.
"""

from __future__ import annotations

import pytest

# `make test` runs pytest-xdist with --dist loadfile: this file runs on one worker, which starts
# one Voilà server and one chromium for all its tests.
pytestmark = [pytest.mark.browser, pytest.mark.slow]

# Voilà streams the page while the kernel runs the cells, so the page loads when they are done.
RENDER_TIMEOUT_MS = 180_000
# Voilà's text for a failed cell, with or without --show_tracebacks.
ERROR_MARKERS = ("Traceback (most recent call last)", "There was an error when executing cell")


def test_tree_lists_the_data_quality_notebook(page, page_log, voila_url):
    page.goto(voila_url)
    page.get_by_text("data_quality.ipynb", exact=True).wait_for(timeout=30_000)

    # Not checked here: console errors. Voilà's tree page logs some of its own (the widgets
    # manager cannot start without a kernel), which no dashboard shows.
    assert page_log.external_requests == [], "the tree page reached outside the machine"


def test_data_quality_dashboard_renders_offline(page, page_log, voila_url):
    page.goto(f"{voila_url}voila/render/data_quality.ipynb", timeout=RENDER_TIMEOUT_MS)
    # Voilà shows #rendered_cells (window.voila_finish) once every cell has run.
    cells = page.locator("#rendered_cells")
    cells.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)

    summary = cells.locator("table", has_text="opportunities")
    # waited for: the page may draw its outputs after it shows the cells
    summary.first.wait_for(state="visible", timeout=RENDER_TIMEOUT_MS)

    stderr = cells.locator('[data-mime-type="application/vnd.jupyter.stderr"]').all_inner_texts()
    errors = [text for text in stderr if any(marker in text for marker in ERROR_MARKERS)]
    assert errors == [], "a cell failed:\n\n" + "\n\n".join(errors)

    assert page_log.page_errors == []
    assert page_log.console_errors == []
    assert page_log.external_requests == [], "the dashboard reached outside the machine"
