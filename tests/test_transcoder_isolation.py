"""The transcoder is a library: no web, database or S3 code, no global configuration."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import transcoder

FORBIDDEN = {"cite_live", "starlette", "sqlalchemy", "boto3", "botocore", "uvicorn", "httpx"}
PACKAGE = Path(transcoder.__file__).parent


def test_importing_transcoder_loads_no_app_web_db_or_s3_module() -> None:
    code = (
        "import sys, transcoder, transcoder.pipeline\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(FORBIDDEN)!r})\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_no_module_of_transcoder_imports_them_even_lazily() -> None:
    modules = sorted(PACKAGE.glob("*.py"))
    assert len(modules) >= 10
    for path in modules:
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                assert name.split(".")[0] not in FORBIDDEN, f"{path.name} imports {name}"


def test_no_module_reads_the_environment() -> None:
    for path in PACKAGE.glob("*.py"):
        source = path.read_text()
        assert "os.environ" not in source and "getenv" not in source, path.name


def test_public_api_is_exported() -> None:
    for name in (
        "Transcoder",
        "TranscoderSettings",
        "Limits",
        "Tags",
        "MediaInfo",
        "Rendition",
        "TranscodeResult",
        "TranscodeError",
        "InputRefused",
        "TranscodeFailed",
    ):
        assert name in transcoder.__all__ and hasattr(transcoder, name)
    assert issubclass(transcoder.InputRefused, transcoder.TranscodeError)
    assert issubclass(transcoder.TranscodeFailed, transcoder.TranscodeError)


def test_every_public_function_has_a_docstring() -> None:
    for path in PACKAGE.glob("*.py"):
        tree = ast.parse(path.read_text(), str(path))
        public = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
        for node in list(public):
            if isinstance(node, ast.ClassDef):
                public += [n for n in node.body if isinstance(n, ast.FunctionDef)]
        for node in public:
            if not node.name.startswith("_"):
                assert ast.get_docstring(node), f"{path.name}: {node.name} has no docstring"
