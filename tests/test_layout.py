"""The shape of the web layer, read from the source: every path of the site is written once, in
cite_live/web/urls.py, and no handler module leans on another (what two audiences share lives
in a module of its own)."""

from __future__ import annotations

import ast
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from cite_live.web.urls import PATHS

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "cite_live"
URLS = "cite_live/web/urls.py"

#: How the paths of the site start (the first segment of each of PATHS but "/"): a string in
#: the code that starts so is a path written outside the URL builder.
SITE_PATH_STARTS = (
    "/artists",
    "/productions",
    "/venues",
    "/tags",
    "/search",
    "/collections",
    "/lang/",
    "/login",
    "/logout",
    "/account",
    "/invite",
    "/studio",
    "/admin",
    "/feed.atom",
    "/podcast.rss",
    "/podcast.jpg",
    "/embed",
    "/oembed",
    "/partners",
    "/api/",
    "/media/",
    "/static",
    "/healthz",
    "/readyz",
    "/metrics",
)
#: Strings that may stay, each with the reason. Empty: every path goes through the builder.
ALLOWED: frozenset[tuple[str, str]] = frozenset()

HANDLER_MODULES = frozenset(
    {
        "catalogue",
        "studio",
        "admin",
        "account",
        "api",
        "openapi",
        "feeds",
        "embeds",
        "oembed",
        "ops",
        "media",
        "tus",
        "profiles",
    }
)
WEB = "cite_live.web"


def _modules() -> Iterator[tuple[str, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path.relative_to(ROOT).as_posix(), ast.parse(path.read_text(encoding="utf-8"))


def _docstrings(tree: ast.Module) -> set[int]:
    """The ids of the docstring nodes of ``tree``: prose, not code."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                found.add(id(body[0].value))
    return found


def _site_paths(tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, text) of each string constant of ``tree`` that starts like a path of the site,
    the literal parts of f-strings included (they are constants in the tree too)."""
    docstrings = _docstrings(tree)
    found = {
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and node.value.startswith(SITE_PATH_STARTS)
    }
    yield from sorted(found)


def _imported(module: str, tree: ast.Module) -> Iterator[tuple[int, str]]:
    """(line, module name) of every import in ``tree`` (``module``'s), at any level: a
    function's own imports count."""
    package = module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            yield node.lineno, base
            # ``from cite_live.web import studio`` imports the module ``studio``.
            for alias in node.names:
                yield node.lineno, f"{base}.{alias.name}"


def test_the_site_path_starts_cover_every_path() -> None:
    for name, path in PATHS.items():
        if path != "/":
            assert (path + "/").startswith(SITE_PATH_STARTS), name


def test_no_module_but_the_url_builder_writes_a_path_of_the_site() -> None:
    offenders = []
    for name, tree in _modules():
        if name == URLS:
            continue
        offenders += [
            f"{name}:{line}: {text!r}"
            for line, text in _site_paths(tree)
            if (name, text) not in ALLOWED
        ]
    assert not offenders, "paths written outside cite_live/web/urls.py:\n" + "\n".join(offenders)


def test_no_handler_module_imports_another() -> None:
    offenders = []
    for handler in sorted(HANDLER_MODULES):
        module = f"{WEB}.{handler}"
        tree = ast.parse((PACKAGE / "web" / f"{handler}.py").read_text(encoding="utf-8"))
        found = set()
        for line, imported in _imported(module, tree):
            other = imported.removeprefix(f"{WEB}.").partition(".")[0]
            if imported.startswith(f"{WEB}.") and other in HANDLER_MODULES and other != handler:
                found.add((line, other))
        offenders += [
            f"cite_live/web/{handler}.py:{line} imports {WEB}.{other}"
            for line, other in sorted(found)
        ]
    assert not offenders, "handler modules importing handler modules:\n" + "\n".join(offenders)


def test_no_file_keeps_the_marks_of_an_unresolved_merge() -> None:
    # A browser skips a stylesheet's rules it cannot read, and a template renders the marks as
    # text: nothing else would fail on them.
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    marks = re.compile(r"^(<{7} |={7}$|>{7} )", re.M)
    left = [
        name
        for name in tracked
        if (ROOT / name).is_file()
        and (ROOT / name).suffix in {".py", ".html", ".css", ".js", ".md", ".po", ".yaml", ".toml"}
        and marks.search((ROOT / name).read_text(encoding="utf-8", errors="replace"))
    ]
    assert left == []
