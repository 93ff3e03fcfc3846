"""The reference trainer: a small 2-D segmentation program driven by config_train.json.

Entry points live in `loop` (`train`, `evaluate`, `TrainingInterrupted`). Nothing here is
imported by the engine, so torch is loaded only by the processes that train.
"""
