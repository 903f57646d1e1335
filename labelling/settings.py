"""Configuration of the Label Studio integration (``configs/studio.yaml``), and where things live.

The workspace holds everything local: ``<workspace>/studio/`` has the server's data folder,
its log, the 0600 secret files (token, admin password, pseudonymisation key) and the state
JSONL files (what was pushed and imported).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from earmark.core.config import load_config
from earmark.core.errors import ConfigError

REPO_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "studio.yaml"
ENV_URL = "EARMARK_LS_URL"
ENV_TOKEN = "EARMARK_LS_TOKEN"
ENV_VENV = "EARMARK_LS_VENV"
ENV_WORKSPACE = "EARMARK_WORKSPACE"


@dataclass(frozen=True)
class ServerConfig:
    version: str = "1.23.*"
    venv: str = ""
    host: str = "127.0.0.1"
    port: int = 8085
    admin_email: str = "admin@earmark.local"
    annotator_email: str = "annotator@earmark.local"
    start_timeout_s: float = 180.0


@dataclass(frozen=True)
class ClientConfig:
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5


@dataclass(frozen=True)
class ProjectsConfig:
    transcription_title: str = "earmark: transcription"
    understanding_title: str = "earmark: understanding"
    # Several annotators per task, for agreement figures (``labelling.agreement``): a share of
    # the tasks (``overlap_share``, chosen per utterance by a keyed hash, so both of its tasks
    # alike) is given to ``overlap`` annotators, the rest to one.
    overlap: int = 1
    overlap_share: float = 1.0
    # How differing answers on one task are settled (``labelling.decisions``): ``majority`` =
    # the answer more than half of the annotators gave (a 1-1 tie reopens the task for one
    # more annotator, within ``privacy.max_listeners``); ``unanimous`` = any difference
    # rejects the task for review.
    resolution: Literal["majority", "unanimous"] = "majority"

    def __post_init__(self) -> None:
        if self.overlap < 1:
            raise ConfigError(f"config key 'projects.overlap': at least 1, got {self.overlap}")
        if not 0.0 <= self.overlap_share <= 1.0:
            raise ConfigError(
                f"config key 'projects.overlap_share': a share of tasks in [0, 1], "
                f"got {self.overlap_share}"
            )


@dataclass(frozen=True)
class PushConfig:
    uncertain_word_confidence: float = 0.6
    # None (the default): every utterance is transcribed by a person first. A number: ASR at
    # least this sure goes straight to understanding, and its label trains the NLU only.
    asr_confident: float | None = None


@dataclass(frozen=True)
class PrivacyConfig:
    # Once a transcription is decided (its transcript confirmed, or the clip flagged), its
    # uploaded audio is deleted from the server's data folder: nobody can play it there again
    # (the run keeps the original). A flagged task is also closed to further annotators.
    delete_audio_after_import: bool = True
    # Voice anonymisation of the audio annotators hear (the McAdams coefficient method,
    # ``labelling.anonymise``): None = off; 0.8 is the VoicePrivacy baseline, smaller is
    # stronger. The transcript, the models and the run keep the original audio.
    mcadams_alpha: float | None = None
    # The most people who may hear one clip: a transcription task that has had this many
    # annotations (skips included) is closed and its uploaded audio deleted, decided or not;
    # a tie or a rejected answer is then left to ``earmark review``. None = no limit.
    max_listeners: int | None = 3


@dataclass(frozen=True)
class StudioConfig:
    server: ServerConfig = field(default_factory=ServerConfig)
    client: ClientConfig = field(default_factory=ClientConfig)
    projects: ProjectsConfig = field(default_factory=ProjectsConfig)
    push: PushConfig = field(default_factory=PushConfig)
    privacy: PrivacyConfig = field(default_factory=PrivacyConfig)

    def __post_init__(self) -> None:
        limit = self.privacy.max_listeners
        if limit is not None and limit < self.projects.overlap:
            raise ConfigError(
                f"config key 'privacy.max_listeners': {limit} is below projects.overlap "
                f"({self.projects.overlap}): a task could never get the annotators it asks for"
            )


def load_studio_config(
    path: str | Path | None = None, overrides: tuple[str, ...] | list[str] = ()
) -> StudioConfig:
    """``configs/studio.yaml`` (or ``path``) plus dotted overrides such as ``server.port=9000``."""
    if path is None and REPO_CONFIG.is_file():
        path = REPO_CONFIG
    return load_config(StudioConfig, path, list(overrides))


def default_workspace() -> Path:
    return Path(os.environ.get(ENV_WORKSPACE) or "work")


def venv_dir(config: StudioConfig) -> Path:
    """The server's own virtual environment: config, then ``$EARMARK_LS_VENV``, then the cache."""
    if config.server.venv:
        return Path(config.server.venv).expanduser()
    if os.environ.get(ENV_VENV):
        return Path(os.environ[ENV_VENV]).expanduser()
    return Path.home() / ".cache" / "earmark" / "labelstudio-venv"


@dataclass(frozen=True)
class Paths:
    """Files of one workspace's Label Studio integration."""

    root: Path

    @classmethod
    def of(cls, workspace: str | Path) -> Paths:
        return cls(Path(workspace) / "studio")

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    @property
    def server_json(self) -> Path:
        return self.root / "server.json"

    @property
    def secrets(self) -> Path:
        return self.root / "secrets"

    @property
    def token(self) -> Path:
        return self.secrets / "token"

    @property
    def state(self) -> Path:
        return self.root / "state"
