"""The K-MERL encoder, its pretraining and its evaluation.

    config        pydantic configuration (ModelConfig: features, training, evaluation)
    encoder       lead-aware ECG encoder (per-lead tokens) and the joint-token baseline
    masking       token validity, dynamic lead masking, segment masking
    query         the cardiac query network
    losses        contrastive and knowledge losses
    network       the pretraining model that ties them together
    train         train() and ``python -m kmerl.model.train`` (torchrun-ready)
    runs          run directories and the run store: finished runs, the current one
    evaluation    zero-shot, linear probe, partial leads, bootstrap intervals
    experiments   K-MERL vs baseline and ablations; ``python -m kmerl.model.experiments``
    plots         loss curves, ROC curves, partial-lead charts (PNG bytes)

Submodules are imported where used: importing the configuration does not import torch.
"""
