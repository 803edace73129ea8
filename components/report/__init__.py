"""The comparison report built from the stages' outputs and MLflow (stage `report`).

collect.py  what the report shows: rows per metrics file, sweeps, missing stages, curves' CSVs, figures
runs.py     MLflow run links (experiment id looked up by run id), degrading to notes
curves.py   learning-curve charts (matplotlib PNG per family)
text.py     number and params formatting shared by the pages
markdown.py reports/index.md;  html.py  reports/index.html (static, escaped)
build.py    writes the report folder atomically (pages + assets/)
"""
