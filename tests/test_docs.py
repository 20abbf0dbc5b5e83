"""The documentation cannot rot silently: every config key is documented, README's example runs, links resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from priorl.config import config_keys

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = sorted((ROOT / "docs").glob("*.md"))
EXAMPLE_HEADING = "**In your own loop**"

_FENCE = re.compile(r"^(```|~~~).*?^\1[ \t]*$", re.S | re.M)
_CODE_SPAN = re.compile(r"`[^`\n]*`")
_LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


def leaf_keys() -> list[str]:
    """The dotted keys of the run config that are values, not sections (``train.lr``, not ``train``)."""
    keys = config_keys()
    return [k for k in keys if not any(other.startswith(k + ".") for other in keys)]


def test_every_config_key_is_in_the_config_reference() -> None:
    text = (ROOT / "docs" / "config.md").read_text()
    missing = [k for k in leaf_keys() if f"`{k}`" not in text]
    assert not missing, f"docs/config.md lacks these run-config keys (as `key`): {', '.join(missing)}"


def readme_example() -> str:
    """The first ```python block under README's example heading."""
    text = README.read_text()
    start = text.index(EXAMPLE_HEADING)
    block = re.search(r"^```python\n(.*?)^```", text[start:], re.S | re.M)
    assert block is not None, f"no ```python block under {EXAMPLE_HEADING!r} in README.md"
    return block.group(1)


def test_readme_example_runs(tmp_path: Path) -> None:
    code = readme_example()
    assert 5 <= len(code.splitlines()) <= 25, "README's front-door example should stay short"
    script = tmp_path / "example.py"
    script.write_text(code + "\nassert batch and len(batch) >= len(fresh)\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr


SAMPLERS = ("PrioritizedPassSampler", "PrioritizedSampler", "UniformSampler")


def test_readme_says_which_sampler_own_loop_uses() -> None:
    # The paragraph that points at examples/own_loop.py may call it like the example above only in what they
    # share: it names the sampler the script uses, and "the example above" is not said of a script whose
    # sampler differs from the example's.
    text = README.read_text()
    paragraph = next(p for p in text.split("\n\n") if "(examples/own_loop.py)" in p)
    script = (ROOT / "examples" / "own_loop.py").read_text()
    used = {s for s in SAMPLERS if re.search(rf"\b{s}\(", script)}
    shown = {s for s in SAMPLERS if re.search(rf"\b{s}\(", readme_example())}
    assert used and all(s in paragraph for s in used), paragraph
    if used != shown:
        assert "is the example above" not in paragraph, paragraph


def relative_links(path: Path) -> list[str]:
    """Targets of the Markdown links and images in ``path`` that point into the repository (code is skipped)."""
    text = _CODE_SPAN.sub("", _FENCE.sub("", path.read_text()))
    targets = []
    for target in _LINK.findall(text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I) or target.startswith("#"):
            continue  # http:, https:, mailto:, or an anchor in the same file
        targets.append(target.split("#", 1)[0])
    return targets


@pytest.mark.parametrize("path", [README, *DOCS], ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path: Path) -> None:
    broken = [t for t in relative_links(path) if not (path.parent / t).exists()]
    assert not broken, f"{path.relative_to(ROOT)} links to missing files: {', '.join(broken)}"


def test_link_check_sees_links() -> None:
    """The link pattern finds README's links at all (an empty list would pass the check above vacuously)."""
    assert "docs/config.md" in relative_links(README)


def readme_block(after: str, language: str) -> str:
    """The first ```language block after the text ``after`` in README."""
    text = README.read_text()
    block = re.search(rf"^```{language}\n(.*?)^```", text[text.index(after) :], re.S | re.M)
    assert block is not None, f"no ```{language} block after {after!r} in README.md"
    return block.group(1)


def test_readme_front_door_is_in_the_first_40_lines() -> None:
    head = "\n".join(README.read_text().splitlines()[:40])
    for needed in ("pip install", "PriorlGRPOTrainer", "priorl compare", "make demo"):
        assert needed in head, needed


def test_readme_trl_snippet_runs(tmp_path: Path) -> None:
    pytest.importorskip("trl")
    code = readme_block("**In a TRL script**", "python")
    assert len(code.splitlines()) <= 16, "README's TRL snippet should stay short"
    script = tmp_path / "trl_snippet.py"
    script.write_text(code + "\nassert trainer.priorl_replay.metrics()['replayed'] > 0, 'replay never acted'\n")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_readme_command_line_snippet_runs(tmp_path: Path) -> None:
    # `priorl train` as written, cut to one step; `make demo` is the Makefile's demo; compare's flags parse and plan.
    logical, current = [], ""
    for line in readme_block("**From the command line**", "bash").splitlines():
        line = line.split("#", 1)[0].strip()
        current += " " + line.removesuffix("\\").strip()
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    commands = [c.removeprefix("priorl ") for c in logical if c.startswith("priorl ")]
    train = next(c for c in commands if c.startswith("train "))
    out = tmp_path / "mine"
    args = train.split()[1:]
    args[args.index("--out") + 1] = str(out)
    cli = [sys.executable, "-m", "priorl.cli"]
    done = subprocess.run([*cli, "train", *args, "--max-steps", "1", "--set", "eval.before=false", "--set",
                           "eval.after=false", "--set", "train.max_rollouts=null"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert (out / "summary.json").is_file()
    assert (
        "make demo" in logical
        and "priorl compare -c configs/study.yaml --presets grpo,$(DEMO_PRESET)" in (ROOT / "Makefile").read_text()
    )
    compare = next(c for c in commands if c.startswith("compare "))
    done = subprocess.run([*cli, *compare.split(), "--dry-run", "--out", str(tmp_path / "cmp")], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert "plan:" in done.stdout and "will not act" not in done.stdout
