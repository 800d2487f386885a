"""A small Sphinx extension for the rendered book (listed in _config.yml): pages load cleanly in a browser.

- every script is included once (sphinx-thebe's configuration script is otherwise added twice with Sphinx 7.4,
  a `const` declared twice: a console error on every page);
- the theme's colour mode defaults to light (an empty mode is a console error of the theme's script).
"""

from __future__ import annotations

from typing import Any


def _once(app, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    scripts, seen = context.get("script_files"), set()
    if scripts is not None:
        unique = []
        for js in scripts:
            key = (getattr(js, "filename", str(js)) or "",  # an inline script's filename is None or ""
                   tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
            if key not in seen:
                seen.add(key)
                unique.append(js)
        scripts[:] = unique
    if not context.get("default_mode"):
        context["default_mode"] = "light"


def setup(app) -> dict[str, Any]:
    app.connect("html-page-context", _once, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
