"""``smartta-observer watch``: keep verifying new blocks as they come, and raise the alarm on
the first failure (exit non-zero, and POST the report to a webhook if one is given).

A node that cannot be read for a while is not a failure of the chain: the watcher retries,
and gives up (alerting as "unreachable") only after ``max_down`` seconds without an answer.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from observer.abc import SourceError
from observer.verify import Report, Verifier


def post(url: str, payload: dict[str, Any], timeout: float = 10.0) -> str | None:
    """POST ``payload`` as JSON; None if delivered, else why not."""
    request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status >= 300:
                return f"the webhook answered HTTP {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"the webhook could not be reached: {exc}"
    return None


@dataclass
class Outcome:
    kind: str
    """"failure", "equivocation" or "unreachable"."""
    report: Report
    detail: str = ""


class Watcher:
    def __init__(self, verifier: Verifier, *, interval: float = 2.0, max_down: float = 300.0,
                 webhook: str | None = None, sleep: Callable[[float], None] = time.sleep,
                 on_round: Callable[[Report], None] | None = None,
                 warn: Callable[[str], None] = print) -> None:
        self.verifier = verifier
        self.interval = interval
        self.max_down = max_down
        self.webhook = webhook
        self.sleep = sleep
        self.on_round = on_round
        self.warn = warn

    def run(self, rounds: int | None = None) -> Outcome | None:
        """Verify, wait, verify again... until something is wrong (its outcome) or ``rounds``
        rounds have passed (None: for ever)."""
        down_since: float | None = None
        done = 0
        while rounds is None or done < rounds:
            done += 1
            try:
                report = self.verifier.advance()
            except SourceError as exc:
                now = time.monotonic()
                down_since = down_since if down_since is not None else now
                if now - down_since >= self.max_down:
                    return self._alarm(Outcome("unreachable", self.verifier.report, str(exc)))
                self.warn(f"node unreadable, retrying: {exc}")
                self.sleep(self.interval)
                continue
            down_since = None
            if self.on_round is not None:
                self.on_round(report)
            if report.evidence:
                return self._alarm(Outcome("equivocation", report))
            if report.failure is not None:
                return self._alarm(Outcome("failure", report, str(report.failure)))
            self.sleep(self.interval)
        return None

    def _alarm(self, outcome: Outcome) -> Outcome:
        if self.webhook is not None:
            payload = {"event": f"smartta-observer.{outcome.kind}", "detail": outcome.detail,
                       "report": outcome.report.to_json()}
            problem = post(self.webhook, payload)
            if problem is not None:
                self.warn(problem)
        return outcome
