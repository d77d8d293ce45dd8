"""Bar charts as PNG for email (mail clients run no script and many show no SVG), drawn with Pillow.
Integers only: bar heights are worked out with integer arithmetic from the figures."""

from __future__ import annotations

import io

from PIL import Image, ImageDraw, ImageFont

from partnerpay.web.charts import PALETTE, nice_step

WIDTH, HEIGHT = 640, 240
LEFT, RIGHT, TOP, BOTTOM = 64, 12, 32, 40


def bar_chart_png(*, title: str, labels: list[str], series: list[tuple[str, list[int]]]) -> bytes:
    """Grouped bars, one group per label (a day), one bar per series; a legend under the title."""
    if any(len(values) != len(labels) for _, values in series):
        raise ValueError("every series needs one value per label")
    image = Image.new("RGB", (WIDTH, HEIGHT), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=13)  # Pillow's bundled FreeType font: the same on every machine
    draw.text((8, 6), title, fill="#1f2a44", font=font)
    x = 8 + int(draw.textlength(title, font=font)) + 16
    for i, (name, _) in enumerate(series):
        colour = PALETTE[i % len(PALETTE)]
        draw.rectangle((x, 9, x + 10, 19), fill=colour)
        draw.text((x + 13, 6), name, fill="#333333", font=font)
        x += 13 + int(draw.textlength(name, font=font)) + 14
    top_value = max([v for _, values in series for v in values if v > 0], default=0)
    step = nice_step(max(top_value, 1))
    scale_top = step * 4
    plot_h = HEIGHT - TOP - BOTTOM
    baseline = TOP + plot_h
    for k in range(5):
        y = baseline - plot_h * k // 4
        draw.line((LEFT, y, WIDTH - RIGHT, y), fill="#dddddd")
        text = f"{step * k:,}"
        draw.text((LEFT - 6 - int(draw.textlength(text, font=font)), y - 7), text, fill="#666666", font=font)
    groups = max(len(labels), 1)
    group_w = (WIDTH - LEFT - RIGHT) // groups
    bar_w = max(1, (group_w - 6) // max(len(series), 1))
    for g, label in enumerate(labels):
        gx = LEFT + g * group_w + 3
        for i, (_, values) in enumerate(series):
            value = max(values[g], 0)
            height = plot_h * value // scale_top
            if height:
                x0 = gx + i * bar_w
                draw.rectangle((x0, baseline - height, x0 + bar_w - 2, baseline), fill=PALETTE[i % len(PALETTE)])
        draw.text((gx, baseline + 6), label, fill="#666666", font=font)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
