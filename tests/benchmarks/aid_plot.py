"""The AID benchmark's plot: strokes per series by round (a dot per series, a bar for the
median), the draft's volume Dice under each AID round. Drawn with Pillow (no plotting library
is a dependency), from ``results/aid.json``.

Run: ``python tests/benchmarks/aid_plot.py [RESULTS_JSON] [OUT_PNG]`` (default: the results file
and ``assets/readme/aid-strokes.png``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

HERE = Path(__file__).resolve().parent
WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 640, 360, 60, 60, 40


def plot_rounds(out: dict, path: Path) -> Path:
    """Draw ``out`` (what :func:`bench_aid.main` returns) as a PNG at ``path``."""
    rounds = out["rounds"]
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)
    top_value = max(max(row["strokes"] for row in r["series"]) for r in rounds)
    top_value = max(50, -(-top_value // 50) * 50)
    plot_h = HEIGHT - BOTTOM - TOP

    def y_of(value: float) -> float:
        return HEIGHT - BOTTOM - plot_h * value / top_value

    for tick in range(0, top_value + 1, 50):
        draw.line([(LEFT, y_of(tick)), (WIDTH - 20, y_of(tick))], fill="#e0e0e0")
        draw.text((LEFT - 8, y_of(tick)), str(tick), fill="black", font=font, anchor="rm")
    draw.line([(LEFT, TOP), (LEFT, HEIGHT - BOTTOM), (WIDTH - 20, HEIGHT - BOTTOM)],
              fill="black")
    step = (WIDTH - 20 - LEFT) / len(rounds)
    for i, r in enumerate(rounds):
        centre = LEFT + step * (i + 0.5)
        median = r["median_strokes"]
        colour = "#9e9e9e" if r["round"] == 0 else "#3f7fbf"
        draw.rectangle([centre - step * 0.3, y_of(median), centre + step * 0.3, y_of(0)],
                       fill=colour)
        draw.text((centre, y_of(median) - 4), f"{median:g}", fill="black", font=font,
                  anchor="mb")
        for k, row in enumerate(r["series"]):
            x = centre - step * 0.2 + step * 0.4 * k / max(1, len(r["series"]) - 1)
            y = y_of(row["strokes"])
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], outline="black", fill="white")
        label = "from scratch" if r["round"] == 0 else f"AID round {r['round']}"
        draw.text((centre, HEIGHT - BOTTOM + 8), label, fill="black", font=font, anchor="mt")
        dice = [row["start_dice"] for row in r["series"]]
        note = "empty start" if r["round"] == 0 else \
            f"drafts Dice {min(dice):.2f}-{max(dice):.2f}"
        draw.text((centre, HEIGHT - BOTTOM + 26), note, fill="#555555", font=font, anchor="mt")
    draw.text((LEFT, 12), f"Strokes per series to slice Dice >= 0.95 ({out['roi']}, "
              f"{out['k']} series per round; bar: median)", fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    return path


if __name__ == "__main__":
    source = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "results" / "aid.json"
    target = Path(sys.argv[2]) if len(sys.argv) > 2 else \
        HERE.parent.parent / "assets" / "readme" / "aid-strokes.png"
    print(plot_rounds(json.loads(source.read_text()), target))
