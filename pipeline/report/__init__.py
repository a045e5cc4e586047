"""Views of the pipeline's results: text for a person, JSON and CSV files for a person or a machine.

The report stage computes nothing new: every figure is already in a ValidationResult or a run's
result. It must never touch the network, and never write a cell that a spreadsheet would run
as a formula.
"""
