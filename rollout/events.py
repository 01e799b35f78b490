"""The run's structured log: one JSON object per line in `events.jsonl` under the run's output directory.

Every line has `ts` (Unix seconds), `run_id` and `event`; a resumed run appends to the same file, so the file
tells the whole history of a run (starts, tasks finished, retried or failed, shards written, ends).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class EventLog:
    def __init__(self, out_dir: str | Path, run_id: str):
        self.path = Path(out_dir) / "events.jsonl"
        self.run_id = run_id
        self._file = open(self.path, "a", buffering=1)  # line-buffered: a killed run keeps its lines

    def emit(self, event: str, **fields: Any) -> None:
        self._file.write(json.dumps({"ts": round(time.time(), 3), "run_id": self.run_id, "event": event, **fields}) + "\n")

    def close(self) -> None:
        self._file.close()
