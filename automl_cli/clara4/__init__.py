"""Clara Train 4.x training configs, trained with MONAI's engines: `build` reads Clara's
config language, `names` finds components and maps renamed arguments, `trainer` runs the
trainer contract, `check` is what `automl validate` says about such a config."""
