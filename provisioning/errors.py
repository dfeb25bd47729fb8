"""The error every provisioning step raises when it refuses: what is wrong, and what to do about it."""

from __future__ import annotations


class ProvisioningError(Exception):
    """A refusal; nothing was written. `problem` says what is wrong, `fix` what to do."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}. Fix: {fix}")
        self.problem = problem
        self.fix = fix
