"""The orchestrator: the whole flow on one page.

extract → map → validate → plan → load → report. Each function here calls the stages in
order and hands each the previous one's value; the stages never call each other. The CLI and
any Python caller (a cron script, an Airflow or Dagster task) go through these functions.
"""

from __future__ import annotations
