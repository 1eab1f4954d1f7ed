"""The Dash user interface and its Flask routes: the only package that imports dash, flask and
plotly. Pages and routes stay thin; they call :mod:`ril_dash.application`.
"""
