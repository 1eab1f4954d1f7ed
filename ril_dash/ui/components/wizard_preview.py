"""The model wizard's live preview as components: the normalised model input and the output.

For a segmentation the output is the display slice with the masks a run would write, in the
colours of their ROIs; for a classification, the probability of every class. The images come
from :func:`ril_dash.models.wizard.preview_images` as PNG data URLs.
"""

from __future__ import annotations

from dash import html

from ril_dash.core.png import encode_png, png_data_url
from ril_dash.models.wizard import Preview, preview_images

__all__ = ["INPUT_IMAGE", "OUTPUT_IMAGE", "preview_view"]

INPUT_IMAGE = "wiz-preview-input"
OUTPUT_IMAGE = "wiz-preview-output"


def _figure(image, image_id: str, caption) -> html.Figure:
    return html.Figure(className="ril-wizard-figure", children=[
        html.Img(id=image_id, src=png_data_url(encode_png(image)), className="ril-wizard-img"),
        html.Figcaption(caption)])


def preview_view(preview: Preview, manifest, colors: dict[str, str]) -> list:
    """Components showing ``preview`` of ``manifest``; ``colors``: ROI name → ``#rrggbb``."""
    inp = manifest.input
    channel_colors = {}
    if manifest.task == "segmentation":
        channel_colors = {c.channel: colors.get(c.roi, "#ffff00")
                          for c in manifest.output.channels}
    grey, overlay = preview_images(preview, channel_colors)
    lo, hi = preview.input_range
    rows, cols = grey.shape
    centre = inp.slices // 2
    shown = [_figure(grey, INPUT_IMAGE,
                     f"Model input: {rows} × {cols}, channel {centre} of {inp.channels} "
                     f"(slice {preview.index}), values {lo:.3g} … {hi:.3g}")]
    if manifest.task == "segmentation":
        counts = ", ".join(f"{c.roi} {int(preview.masks[c.channel].sum())} px"
                           for c in manifest.output.channels) or "nothing mapped"
        shown.append(_figure(overlay, OUTPUT_IMAGE,
                             f"What a run writes on {inp.plane} slice {preview.index}: "
                             f"{counts}"))
    else:
        result = preview.classification
        shown.append(html.Figure(className="ril-wizard-figure", children=[
            html.Table(id=OUTPUT_IMAGE, className="ril-stats-table", children=[
                html.Tr([html.Th(f"{manifest.output.text_field}"), html.Th("probability")]),
                *(html.Tr([html.Td(html.B(name) if name == result.value else name),
                           html.Td(f"{p:.3f}")])
                  for name, p in result.probabilities.items())]),
            html.Figcaption(f"On slice {preview.index} alone the model says "
                            f"{result.value!r} ({result.probability:.2f}); a run "
                            f"aggregates the slices ({manifest.output.aggregate})")]))
    return [html.Div(className="ril-wizard-previews", children=shown),
            html.P(f"{preview.seconds_per_slice:.3g} s per slice in the model worker",
                   className="ril-muted")]
