"""``earmark corpus check``: every problem of a manifest and its audio, reported at once.

Manifest problems (``earmark.core.manifest`` validation: bad JSON, wrong types, spans outside the
text, duplicate ids...) have reason ``invalid`` or ``duplicate_id``; audio problems have the
reason codes of ``earmark.core.audio.AUDIO_REASONS``; a recorded ``duration`` or ``sample_rate``
that disagrees with the file is ``mismatch``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from earmark.core.audio import AudioConfig, inspect_audio
from earmark.core.errors import AudioError, ManifestError
from earmark.core.manifest import ManifestRow, iter_rows

#: Allowed gap between a recorded duration and the file's (manifests round to 0.1 ms).
DURATION_TOLERANCE_S = 0.01


@dataclass(frozen=True)
class CheckIssue:
    """One problem: the manifest line, the row id when known, a reason code and a detail."""

    line: int
    id: str | None
    reason: str
    detail: str


@dataclass
class CheckReport:
    """All problems of one manifest; ``ok`` when there are none."""

    manifest: str
    rows: int = 0
    audio_checked: int = 0
    issues: list[CheckIssue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def reasons(self) -> Counter[str]:
        return Counter(issue.reason for issue in self.issues)

    @property
    def bad_lines(self) -> int:
        return len({issue.line for issue in self.issues})

    def to_dict(self) -> dict[str, Any]:
        return {
            "manifest": self.manifest,
            "rows": self.rows,
            "audio_checked": self.audio_checked,
            "ok": self.ok,
            "problems": len(self.issues),
            "reasons": dict(sorted(self.reasons.items())),
            "issues": [asdict(issue) for issue in self.issues],
        }


def _nonblank_lines(path: Path) -> list[int]:
    """Line numbers of the non-blank lines: ``iter_rows`` yields once for each, in order."""
    try:
        with open(path, encoding="utf-8") as f:
            return [n for n, line in enumerate(f, start=1) if line.strip()]
    except UnicodeDecodeError as exc:
        raise ManifestError(f"{path}: not UTF-8 text ({exc}); is this a manifest?") from exc


def _audio_issues(row: ManifestRow, line: int, config: AudioConfig) -> list[CheckIssue]:
    utt = row.utterance
    if utt.audio is None:
        return []
    try:
        info = inspect_audio(utt.audio, config=config)
    except AudioError as exc:
        return [CheckIssue(line, row.id, exc.reason, f"{exc.path}: {exc.detail}")]
    issues = []
    if utt.sample_rate is not None and utt.sample_rate != info.sample_rate:
        issues.append(
            CheckIssue(
                line,
                row.id,
                "mismatch",
                f"sample_rate is {utt.sample_rate} but {utt.audio} is {info.sample_rate} Hz; "
                "the file changed since import: re-import it or fix the field",
            )
        )
    if utt.duration is not None and abs(utt.duration - info.duration) > DURATION_TOLERANCE_S:
        issues.append(
            CheckIssue(
                line,
                row.id,
                "mismatch",
                f"duration is {utt.duration:g} s but {utt.audio} lasts {info.duration:.4f} s; "
                "the file changed since import: re-import it or fix the field",
            )
        )
    return issues


def check_manifest(
    path: str | Path,
    *,
    config: AudioConfig | None = None,
    check_audio: bool = True,
    progress: Callable[[int, int], None] | None = None,
) -> CheckReport:
    """Validate every line of ``path`` and inspect every audio file it names.

    Never stops at the first problem. Raises ``ManifestError`` only when the manifest file
    itself is missing. ``progress(done, total)`` is called once per non-blank line.
    """
    config = config or AudioConfig()
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    lines = _nonblank_lines(path)
    report = CheckReport(str(path))
    for done, (row, problems) in enumerate(iter_rows(path, check_audio=False), start=1):
        if progress is not None:
            progress(done, len(lines))
        for p in problems:
            reason = "duplicate_id" if p.code == "duplicate_id" else "invalid"
            report.issues.append(
                CheckIssue(p.line, p.id, reason, f"field '{p.field}': {p.message}")
            )
        if row is None:
            continue
        report.rows += 1
        if check_audio and row.utterance.audio is not None:
            report.audio_checked += 1
            report.issues.extend(_audio_issues(row, lines[done - 1], config))
    report.issues.sort(key=lambda issue: issue.line)
    return report
