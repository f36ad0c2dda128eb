"""Reports: HTML pages (Plotly charts, Jinja templates from ui/templates) of runs.

A backtest's report is `polytrade.report.backtest.render_backtest_report` (the page as text)
or `write_backtest_report` (written atomically). The pages are self-contained: stylesheet,
Plotly's JavaScript and the data are inlined, and nothing is loaded from the network.
"""
