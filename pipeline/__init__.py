"""kayse-etl: move leads and cases from spreadsheets and legacy CRMs into Kayse.

Use from Python through `pipeline.run` (validate, plan, load); the CLI (`kayse-etl`) is a thin
layer over the same functions.
"""

__version__ = "0.1.0"
