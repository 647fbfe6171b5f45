"""``fake``: the scripted test model (never makes a request; see :mod:`crewchief.models.fake`)."""

from __future__ import annotations

from langchain_core.language_models.chat_models import BaseChatModel

from crewchief.models.providers import BuildRequest, register


@register("fake", real=False)
def build(req: BuildRequest) -> BaseChatModel:
    """A :class:`~crewchief.models.fake.FakeChatModel` following the script named by the spec."""
    from crewchief.models.fake import FakeChatModel, script_for_spec

    return FakeChatModel(script=script_for_spec(req.name), effort=req.effort, model_name=req.name)
