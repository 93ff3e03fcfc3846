"""automl: hyperparameter search for deep-learning MMARs."""

__version__ = "0.1.0"
