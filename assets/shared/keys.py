"""The pipeline's asset keys, in stage order."""

from dagster import AssetKey

RAW_ARCHIVES = AssetKey("raw_ecg_archives")
ECG_SIGNALS = AssetKey("ecg_signals")
EXTRACTION_PROMPT = AssetKey("extraction_prompt")
REPORT_KNOWLEDGE = AssetKey("report_knowledge")
CORPUS_KNOWLEDGE = AssetKey("report_corpus_knowledge")
FEATURE_STORE = AssetKey("feature_store")
KMERL_ENCODER = AssetKey("kmerl_encoder")
ENCODER_EVALUATION = AssetKey("encoder_evaluation")
EXTERNAL_EVALUATION = AssetKey("external_evaluation")
MODEL_COMPARISON = AssetKey("model_comparison")
ROTATED_EVALUATION = AssetKey("rotated_evaluation")
