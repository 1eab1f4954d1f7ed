"""Bare Dash apps that the benchmarks measure ril_dash against, in the same run.

``python baseline_app.py slice VOLUME --port P``: one callback turns a slice index into the
Pillow-encoded PNG of that slice (same window, same PNG compression level as ril_dash).
``python baseline_app.py grid ROWS.json --port P``: one AG Grid showing the given rows.
"""

from __future__ import annotations

import argparse
import base64
import io
import json

import dash
import dash_ag_grid as dag
import nibabel as nib
import numpy as np
from dash import Input, Output, dcc, html
from PIL import Image


def slice_app(volume_path: str) -> dash.Dash:
    data = np.asanyarray(nib.load(volume_path).dataobj)
    app = dash.Dash(__name__, update_title=None)
    app.layout = html.Div([dcc.Input(id="idx", type="number", value=data.shape[2] // 2),
                           html.Img(id="img")])

    @app.callback(Output("img", "src"), Input("idx", "value"))
    def show(index):
        plane = data[::-1, ::-1, int(index)].T
        scaled = (plane.astype(np.float32) - (40 - 200)) * (255.0 / 400)
        image = np.clip(scaled, 0, 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, format="PNG", compress_level=1)
        return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()

    return app


def grid_app(rows_path: str) -> dash.Dash:
    with open(rows_path) as fh:
        rows = json.load(fh)
    app = dash.Dash(__name__, update_title=None)
    columns = [{"field": key} for key in rows[0]]
    app.layout = html.Div([html.Span(f"{len(rows)} series", id="count"),
                           dag.AgGrid(id="grid", rowData=rows, columnDefs=columns,
                                      style={"height": "800px"})])
    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("kind", choices=["slice", "grid"])
    parser.add_argument("path")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = slice_app(args.path) if args.kind == "slice" else grid_app(args.path)
    import waitress

    print("baseline ready", flush=True)
    waitress.serve(app.server, host="127.0.0.1", port=args.port, threads=8)


if __name__ == "__main__":
    main()
