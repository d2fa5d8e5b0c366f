"""Scratch folders: each held by its owner while it works, and the sweep of what no one holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from cite_live.jobs import scratch


def test_a_folder_is_removed_when_its_owner_is_done(tmp_path: Path) -> None:
    with scratch.folder(tmp_path, prefix="j7-") as work:
        assert work.parent == tmp_path and work.name.startswith("j7-")
        (work / "poster.rgb").write_bytes(b"frames")
    assert not work.exists()


def test_the_sweep_removes_what_no_one_holds_and_spares_what_is_held(tmp_path: Path) -> None:
    dead = tmp_path / "transcode-old"  # left by a process killed before folders were held
    dead.mkdir()
    (dead / "storyboard.rgb").write_bytes(b"frames")
    (tmp_path / "stray.mp4").write_bytes(b"x")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with scratch.folder(tmp_path, prefix="j1-") as held:
        # Another thread of this process holds it just as another process would.
        assert scratch.sweep(tmp_path) == ["elsewhere", "link", "stray.mp4", "transcode-old"]
        assert held.is_dir() and (held / scratch.OWNER_LOCK).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [scratch.ROOT_LOCK]


def test_the_sweep_of_one_job_leaves_the_others(tmp_path: Path) -> None:
    for name in ("j1-a", "j12-b", "seed-c"):
        (tmp_path / name).mkdir()
    assert scratch.sweep(tmp_path, prefix="j1-") == ["j1-a"]
    assert scratch.sweep(tmp_path / "missing") == []


def test_a_folder_of_a_killed_process_is_swept_and_of_a_live_one_is_not(tmp_path: Path) -> None:
    hold = (
        "import sys, pathlib\n"
        "from cite_live.jobs import scratch\n"
        "with scratch.folder(pathlib.Path(sys.argv[1]), prefix='j5-') as work:\n"
        "    print(work.name, flush=True)\n"
        "    sys.stdin.read()\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", hold, str(tmp_path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            name = process.stdout.readline().strip()
            assert name.startswith("j5-")
            assert scratch.sweep(tmp_path) == []
            assert (tmp_path / name).is_dir()
        finally:
            process.kill()
            process.wait(timeout=10)
    # SIGKILL: no clean-up ran, but the lock went with the process.
    assert (tmp_path / name).is_dir()
    assert scratch.sweep(tmp_path) == [name]


def test_a_job_folder_names_its_attempt_and_the_sweep_keeps_what_the_rule_keeps(
    tmp_path: Path,
) -> None:
    with scratch.for_job(tmp_path, 42, "host:1:2") as work:
        assert scratch.job_of(work.name) == 42
        assert scratch.owner_of(work) == "host:1:2"
    assert [scratch.job_of(name) for name in ("j7-x", "seed-x", "j-x", "jx-1")] == [
        7,
        None,
        None,
        None,
    ]
    for name in ("j1-a", "j2-b", "j3-c"):
        (tmp_path / name).mkdir()
        (tmp_path / name / scratch.OWNER_LOCK).write_text(f"h{name[1]}")
    seen: list[tuple[str, str]] = []

    def keep(name: str, owner: str) -> bool:
        seen.append((name, owner))
        return owner == "h2"

    assert scratch.sweep(tmp_path, keep=keep) == ["j1-a", "j3-c"]
    assert sorted(seen) == [("j1-a", "h1"), ("j2-b", "h2"), ("j3-c", "h3")]
    assert (tmp_path / "j2-b").is_dir()
    # Held folders are never the rule's to decide: their owner is alive.
    with scratch.for_job(tmp_path, 5, "h5") as held:
        assert scratch.sweep(tmp_path, keep=lambda name, owner: False) == ["j2-b"]
        assert held.is_dir()
