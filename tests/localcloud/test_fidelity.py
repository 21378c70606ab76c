"""localcloud/FIDELITY.md is a contract: every rule names a source and a test that exists."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEST = re.compile(r"^(tests/[\w/]+\.py)::(\w+)(\[.*\])?$")


def rules() -> list[tuple[int, list[str]]]:
    found = []
    for number, line in enumerate((ROOT / "localcloud" / "FIDELITY.md").read_text().splitlines(), 1):
        if line.startswith(("#", "Format:")) or line.count(" | ") < 2:
            continue
        found.append((number, [part.strip() for part in line.split(" | ")]))
    return found


def test_every_rule_has_a_source_and_names_tests_that_exist():
    problems = []
    listed = rules()
    assert len(listed) >= 20  # the file is read, not skipped
    for number, parts in listed:
        rule, source, tests = parts[0], " | ".join(parts[1:-1]), parts[-1]
        if not rule or not source:
            problems.append(f"line {number}: a rule needs its words and a source")
        for name in re.split(r",\s+(?=tests/)", tests):
            match = TEST.match(name)
            if match is None:
                problems.append(f"line {number}: {name[:80]!r} is not path::test")
                continue
            path = ROOT / match.group(1)
            if not path.is_file() or not re.search(rf"^def {match.group(2)}\(", path.read_text(), re.M):
                problems.append(f"line {number}: {name[:100]} does not exist")
    assert not problems, "\n".join(problems)
