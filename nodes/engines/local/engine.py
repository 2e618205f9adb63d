"""The Local engine: Director shots on the user's own LTX-Video / Wan VACE / Wan Animate models, in ComfyUI.

It never runs a model itself. Generate Video asks it for a :class:`~.plan.Plan` and returns
that plan as a node expansion of ComfyUI's native nodes, so ComfyUI's own memory management,
GGUF/fp8 loaders and LoRAs apply and the weights are loaded once. ``check`` refuses, before
anything is sampled, what the chosen model cannot do; it costs no credits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

from ...common.errors import EngineUnsupported
from ...shot.engine import Engine, RenderHooks, RenderTarget, ShotResult
from ...shot.request import FPS, ShotRequest
from .families import Family, ModelFacts, check_model_parts
from .plan import Given, Plan, Settings, plan_shot
from .plan_animate import character_of, check_character_family, plan_wan_animate


@dataclass
class Inputs:
    """The user's native values the expansion uses: ``values`` (name -> object) and, where the
    engine node's input was a link, that link (name -> [node id, slot]) so the expansion links
    to the same upstream output (linked values are cached by ComfyUI, raw values are not)."""

    values: Mapping[str, Any] = field(default_factory=dict)
    links: Mapping[str, list] = field(default_factory=dict)


class LocalEngine(Engine):
    name = "local"
    display_name = "Local"
    billed = False

    def __init__(self, family: Family, family_note: str, settings: Settings, inputs: Inputs,
                 facts: ModelFacts | None = None):
        self.family = family
        self.family_note = family_note
        self.settings = settings
        self.inputs = inputs
        self.facts = facts or ModelFacts()

    def __repr__(self) -> str:
        return f"LocalEngine({self.family.label}, {self.settings})"

    def has(self, name: str) -> bool:
        """Whether the user connected the native input ``name`` (e.g. clip_vision)."""
        return name in self.inputs.values or name in self.inputs.links

    def fingerprint(self) -> str:
        s = self.settings
        return (f"local/1:{self.family.key}:seed={s.seed}:steps={s.steps}:cfg={s.cfg}:{s.sampler}:{s.scheduler}:"
                f"ws={s.working_size}:deliver={int(s.deliver_shot_size)}:win={s.max_window}"
                + (":clip_vision" if self.has("clip_vision") else ""))

    def check(self, request: ShotRequest) -> None:
        if request.hdr or request.exr:
            which = "exr" if request.exr else "hdr"
            raise EngineUnsupported(
                f"Local engine: {which.upper()} is not available (LTX-Video and Wan make 8-bit SDR video); turn "
                f"{which} off or choose the Luma engine.", field=which)
        if request.fps != FPS:
            raise EngineUnsupported(f"Local engine: {request.fps} fps is not available; shots are {FPS} fps.",
                                    field="fps")
        if request.loop:
            raise EngineUnsupported("Local engine: loop is not available (the native nodes cannot close a loop); "
                                    "turn loop off or choose another engine.", field="loop")
        check_model_parts(self.family, self.facts, {})
        self.plan(request, "director/shots/shot")

    def plan(self, request: ShotRequest, prefix: str, preview_frames: int = 0) -> Plan:
        """Modify with a character: Wan 2.2 Animate (plan_animate.py); everything else: plan.py."""
        check_character_family(request, self.family, self.facts.model_class)
        if request.task == "modify" and character_of(request)[0] is not None:
            plan = plan_wan_animate(request, self.family, self.settings, prefix, preview_frames,
                                    clip_vision=self.has("clip_vision"))
        else:
            plan = plan_shot(request, self.family, self.settings, prefix, preview_frames)
        if self.family_note and self.family_note != self.family.label:
            plan.notes.insert(0, f"family {self.family_note}")
        # the shot card beside the MP4 (shot/card.py): what was asked for, for the editorial timeline
        model = self.family.label + (f" ({self.facts.model_class})" if self.facts.model_class else "")
        plan.node(plan.output).inputs.update(shot=Given("request"), seed=int(self.settings.seed), model=model)
        return plan

    async def render(self, request: ShotRequest, target: RenderTarget, hooks: RenderHooks) -> ShotResult:
        raise EngineUnsupported(
            "Local engine: shots render inside ComfyUI as native nodes; connect this engine to Generate Video.",
            field="engine")
