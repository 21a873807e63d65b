"""Zero-shot, linear-probe and partial-lead evaluation with bootstrap confidence intervals."""

from kmerl.model.evaluation.evaluate import Evaluation, evaluate_encoder, read_evaluation, write_evaluation
from kmerl.model.evaluation.metrics import MacroAuroc, auroc, macro_auroc
from kmerl.model.evaluation.table import results_markdown
from kmerl.model.evaluation.tasks import EvalClass, EvalTask, challenge_task, ptbxl_superclass_task, tasks_for_sources

__all__ = [
    "EvalClass",
    "EvalTask",
    "Evaluation",
    "MacroAuroc",
    "auroc",
    "challenge_task",
    "evaluate_encoder",
    "macro_auroc",
    "ptbxl_superclass_task",
    "read_evaluation",
    "results_markdown",
    "tasks_for_sources",
    "write_evaluation",
]
