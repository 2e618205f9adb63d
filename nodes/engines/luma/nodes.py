"""ComfyUI glue: the Luma Engine node (settings in, a DIRECTOR_ENGINE out). No key widget, ever."""

from __future__ import annotations

from pathlib import Path

from comfy_api.latest import io

from ...common import glue
from .engine import LumaEngine
from .flow import RESOLVE_INPUT
from .keys import BASE_URL_ENV, ENV_VAR, KEY_FILE
from .ledger import LEDGER_FILE
from .mapping import MODELS


class DirectorLumaEngine(io.ComfyNode):
    """Luma Ray3.2 through the Luma Agents API, for the Generate Video node."""

    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id="DirectorLumaEngine",
            display_name="Luma Engine (Ray3.2)",
            category=f"{glue.CATEGORY}/Engines",
            description=(
                "Renders shots with Luma Ray3.2 (paid). The API key comes from the environment variable "
                f"{ENV_VAR} or the file <ComfyUI user folder>/{KEY_FILE.as_posix()}, never from the graph. "
                f"Set {BASE_URL_ENV} to go through a proxy. Every job is remembered in "
                f"<user folder>/{LEDGER_FILE.as_posix()}: re-queuing a graph resumes or reuses its jobs instead "
                "of paying again. A shot whose send may have made a job stops until you resolve it (the last "
                f"input, {RESOLVE_INPUT}, or: director ledger)."
            ),
            inputs=[
                io.Combo.Input("model", options=list(MODELS), default=MODELS[0], tooltip="Luma's video model (Ray3.2 on the Agents API)."),
                io.Float.Input("poll_interval", default=3.0, min=0.5, max=60.0, step=0.5,
                               tooltip="Seconds between status checks of a running job."),
                io.Int.Input("max_concurrent_jobs", default=0, min=0, max=64,
                             tooltip="0 (default): learn your Luma plan's concurrent-job limit. Jobs go out "
                                     "together; the first time Luma says the limit is reached, the rest wait "
                                     "here for a free slot. A number is a ceiling never passed. Shared by every "
                                     "graph of this ComfyUI."),
                io.Int.Input("max_credits_per_job", default=0, min=0, max=1_000_000, step=10,
                             tooltip="Refuse any shot that costs more credits than this (0 = no cap)."),
                io.Int.Input("max_credits_per_session", default=0, min=0, max=100_000_000, step=100,
                             tooltip="Stop submitting once this ComfyUI has spent this many credits "
                                     "with this key (0 = no cap). Resumed and reused jobs cost nothing."),
                io.String.Input("user_id", default="", optional=True,
                                tooltip="Optional opaque end-user tag Luma uses for abuse attribution (no personal data)."),
                io.String.Input(RESOLVE_INPUT, default="", optional=True,
                                tooltip="Only when a shot stopped as 'uncertain' (its message names the ledger row): "
                                        "'ROW JOB_ID' with the job found in Luma's app (it is polled and delivered), "
                                        "or 'ROW resend' to allow one new send (billed again). Applied once; "
                                        "clear it afterwards. Same as: director ledger resolve / resend."),
            ],
            outputs=[glue.Engine.Output("engine", display_name="engine")],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model: str = MODELS[0], poll_interval: float = 3.0, max_concurrent_jobs: int = 0,
                max_credits_per_job: int = 0, max_credits_per_session: int = 0, user_id: str = "",
                resolve_uncertain: str = "") -> io.NodeOutput:
        engine = LumaEngine(user_dir=glue.user_dir(), model=model, poll_interval_s=poll_interval,
                            max_concurrent_jobs=max_concurrent_jobs, max_credits_per_job=max_credits_per_job,
                            max_credits_per_session=max_credits_per_session, user_id=user_id or "",
                            resolve=resolve_uncertain or "")
        source = engine.key_source()  # a missing key is reported here, at the engine node
        where = (glue.shown_path(engine.ledger_path) if isinstance(engine.ledger_path, Path)
                 else "the shared ledger database (DIRECTOR_LEDGER_URL)")  # never the URL: history keeps this line
        line = f"Luma {model}: key from {source}; jobs remembered in {where}"
        glue.status_text(cls.hidden.unique_id, line)
        return io.NodeOutput(engine, ui={"text": [line]})


NODES = [DirectorLumaEngine]
