"""The README's claims that code can check: its Python API example runs, its demo sizes are demo.sh's."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(title)
    end = README.find("\n#", start + len(title))
    return README[start:end if end > 0 else None]


@pytest.mark.usefixtures("one_torch_thread")
def test_the_python_api_example_runs(ready_home, capsys):
    code = re.search(r"```python\n(.*?)```", section("### Python API"), re.S).group(1)
    songs = ready_home.songs("test")
    code = (code.replace('"H"', repr(str(ready_home.home.root))).replace('"song.mp3"', repr(str(songs[0])))
            .replace('"a.mp3"', repr(str(songs[1]))))
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README's example
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith(ready_home.singer_of(songs[0]) + " ")
    assert "'ok': False" in out[3] and "missing.mp3: no such file" in out[3]
    assert out[4].startswith("['singer0', 'singer1', 'singer2', 'singer3']")


def test_readme_demo_sizes_are_demo_sh_defaults():
    script = (ROOT / "scripts" / "demo.sh").read_text()
    default = {name: re.search(rf"^{name}=\$\{{\w+:-(\d+)\}}", script, re.M).group(1)
               for name in ("SINGERS", "ALBUMS", "SONGS", "SECONDS_PER_SONG")}
    said = re.search(r"generates (\d+) synthetic singers \((\d+) albums each, (\d+) songs of (\d+) s", README)
    assert said is not None, "README must say what the demo generates"
    assert said.groups() == (default["SINGERS"], default["ALBUMS"], default["SONGS"], default["SECONDS_PER_SONG"])
    shown = re.search(r"== 1/4 synthetic corpus: (\d+) singers x (\d+) albums x (\d+) songs x (\d+)s", README)
    assert shown is not None and shown.groups() == said.groups()
