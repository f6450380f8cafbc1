"""The sweep's offline HTML report: the page (page.py) and its plots (plots.py, importance.py)."""

from automl.report.page import ReportError, build_report

__all__ = ["ReportError", "build_report"]
