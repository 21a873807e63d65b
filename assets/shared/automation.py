"""When assets re-materialize on their own: on new upstream data or changed code."""

from __future__ import annotations

from dagster import AutomationCondition

# eager() reacts to new upstream data but never to a code version change (a changed
# prompt or training config); code_version_changed() adds that, and
# since_last_handled() keeps a change seen while the asset could not run (an
# upstream in progress) pending until it is handled.
# (Annotated as a plain AutomationCondition: its generic variants do not compose under type checkers.)
_CODE_CHANGED: AutomationCondition = AutomationCondition.code_version_changed()
ON_UPSTREAM_OR_CODE_CHANGE = AutomationCondition.eager() | _CODE_CHANGED.since_last_handled()
# A report corpus has no upstream: it is first extracted on request, then again when the prompt changes.
ON_CODE_CHANGE = _CODE_CHANGED.since_last_handled()
