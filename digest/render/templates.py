"""Finding and loading the email templates: the admin's folder first, then the built-in ones."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2

from digest.errors import TemplateError
from digest.resources import email_templates_dir


@functools.lru_cache(maxsize=8)
def environment(override_dir: Path | None = None) -> jinja2.Environment:
    """A jinja2 environment: HTML autoescaped, undefined names are errors, not blanks.

    One per templates folder, kept: it keeps its templates compiled (compiling both took
    a tenth of a second, once per segment of every edition) and still reloads a template
    whose file changed."""
    search = [str(override_dir)] if override_dir else []
    search.append(str(email_templates_dir()))
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(search),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html", "html.j2")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    return env


def load(env: jinja2.Environment, name: str) -> jinja2.Template:
    """The named template, or TemplateError naming the file and line at fault."""
    try:
        return env.get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateError(
            f"{exc.filename or name}:{exc.lineno}: template syntax error: {exc.message}",
            _fix_hint(exc.filename),
        ) from exc
    except jinja2.TemplateNotFound as exc:
        raise TemplateError(f"template {name!r} not found", "check the templates folder") from exc


def render(template: jinja2.Template, **context: object) -> str:
    """Render, turning a runtime error (an unknown variable, say) into TemplateError."""
    try:
        return template.render(**context)
    except jinja2.TemplateError as exc:
        line = _template_line(exc, template)
        raise TemplateError(
            f"{template.filename}:{line}: {type(exc).__name__}: {exc}",
            _fix_hint(template.filename),
        ) from exc


def _fix_hint(filename: str | None) -> str:
    """What to do about a template that fails: the admin's own is theirs to fix; digest's
    own failing means code and templates of two versions (an upgrade under a running
    daemon), or a copy of an older one in the admin's folder."""
    builtin = email_templates_dir().resolve()
    if filename and Path(filename).resolve().is_relative_to(builtin):
        return (
            "this is digest's own template: if digest was just upgraded, restart the daemon "
            "(or the command) so code and templates match; nothing was sent"
        )
    return "fix the template (or copy digest's current one over it); nothing was sent"


def _template_line(exc: Exception, template: jinja2.Template) -> int | str:
    import traceback

    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == template.filename:
            return frame.lineno or "?"
    return "?"
