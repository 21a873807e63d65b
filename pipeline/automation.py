"""When assets re-materialize on their own: on new upstream data or changed code."""

from __future__ import annotations

from dagster import AssetSelection, AutomationCondition, AutomationConditionSensorDefinition, DefaultSensorStatus

# eager() reacts to new upstream data but never to a code version change (a changed
# prompt or training config); code_version_changed() adds that, and
# since_last_handled() keeps a change seen while the asset could not run (an
# upstream in progress) pending until it is handled.
ON_UPSTREAM_OR_CODE_CHANGE = (
    AutomationCondition.eager() | AutomationCondition.code_version_changed().since_last_handled()
)


def automation_sensor(minimum_interval_seconds: int = 30) -> AutomationConditionSensorDefinition:
    """The sensor that evaluates the conditions above; running by default."""
    return AutomationConditionSensorDefinition(
        "kmerl_automation",
        target=AssetSelection.all(),
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=minimum_interval_seconds,
    )
