"""Rewritten newsletters look like the originals in a real browser (headless Chromium).

Each newsletter of tests/newsletters is rewritten (with the honeypot link), and one page shows
every original beside its rewritten copy, each in an ``<iframe srcdoc>`` that a script sizes to
its document. One Chromium run takes one screenshot of it all; each pair of frames must then have
the same width, heights that differ by at most the pixel's own line (a 1-pixel block at the end
of the body), and the same pixels over their common height.

Chromium gets no network: every host name fails to resolve, so the newsletters' remote images
fail alike in both copies, and so do the pixel and the honeypot (on an ``.invalid`` host).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

from browser import chromium, run_browser
from PIL import Image, ImageChops
from rewrite_checks import BASE
from webbugger.minting import tracking_url
from webbugger.refs import Ref
from webbugger.rewrite import rewrite_message
from webbugger.tokens import KeyRing

if TYPE_CHECKING:
    from PIL.Image import Image as PillowImage

NEWSLETTERS = Path(__file__).resolve().parents[1] / "newsletters"
FRAME_WIDTH = 720
GAP = 20
WINDOW = (GAP + 2 * (FRAME_WIDTH + GAP), 4200)
BACKDROP = (255, 0, 255)  # the page behind the frames: never a newsletter's colour
CHANNEL_TOLERANCE = 16
MAX_DIFFERENT_SHARE = 0.001
PIXEL_LINE = 1  # the pixel is a display:block image, 1 px high, at the end of the body
RING = KeyRing("k1", {"k1": b"b" * 32})

_PAGE = """<!doctype html><html><head><style>
html, body {{ margin: 0; background: rgb{backdrop}; }}
.pair {{ display: flex; gap: {gap}px; padding: {gap}px; align-items: flex-start; }}
iframe {{ width: {width}px; height: 100px; border: 0; background: #fff; display: block; }}
</style></head><body>{pairs}
<script>
for (const frame of document.querySelectorAll("iframe")) {{
  const size = () => {{ frame.style.height = frame.contentDocument.documentElement.scrollHeight + "px"; }};
  frame.addEventListener("load", size);
  if (frame.contentDocument && frame.contentDocument.readyState === "complete") size();
}}
</script></body></html>"""


def _frame(document: str) -> str:
    return f'<iframe scrolling="no" srcdoc="{html.escape(document)}"></iframe>'


def _frames(shot: PillowImage, x: int) -> list[tuple[int, int]]:
    """The vertical extents of the frames in the column starting at ``x``, top to bottom."""
    column = [shot.getpixel((x + FRAME_WIDTH // 2, y)) for y in range(shot.height)]
    extents, top = [], None
    for y, colour in enumerate(column):
        inside = colour[:3] != BACKDROP
        if inside and top is None:
            top = y
        elif not inside and top is not None:
            extents.append((top, y))
            top = None
    assert top is None, "a frame runs off the bottom of the window: make WINDOW taller"
    return extents


def test_rewritten_newsletters_render_like_the_originals(tmp_path: Path) -> None:
    binary = chromium()
    names = sorted(path.name for path in NEWSLETTERS.glob("*.html"))
    pairs = []
    for name in names:
        original = (NEWSLETTERS / name).read_text(encoding="utf-8")
        rewritten = rewrite_message(
            original,
            recipient=Ref("recipient", "ada@example.com"),
            campaign=Ref("campaign", "launch"),
            link_id_for=lambda url: "n1",
            mint=lambda claims: tracking_url(BASE, claims, RING),
            honeypot=True,
        )
        assert rewritten.pixel
        pairs.append(f'<div class="pair">{_frame(original)}{_frame(rewritten.html)}</div>')
    page = tmp_path / "pairs.html"
    page.write_text(
        _PAGE.format(backdrop=BACKDROP, gap=GAP, width=FRAME_WIDTH, pairs="".join(pairs)), encoding="utf-8"
    )
    shot_path = tmp_path / "pairs.png"
    seen = run_browser(
        binary,
        tmp_path,
        page.as_uri(),
        f"--screenshot={shot_path}",
        "--host-resolver-rules=MAP * ~NOTFOUND",
        "--virtual-time-budget=5000",
        "--hide-scrollbars",
        window=WINDOW,
    )
    assert seen.returncode == 0, seen.stderr[-2000:]
    with Image.open(shot_path) as image:
        shot = image.convert("RGB")
    left, right = _frames(shot, GAP), _frames(shot, 2 * GAP + FRAME_WIDTH)
    assert len(left) == len(right) == len(names), (left, right)
    for name, (top, bottom), (top2, bottom2) in zip(names, left, right, strict=True):
        assert top == top2, name
        height, height2 = bottom - top, bottom2 - top2
        assert height > 200, f"{name}: the frame was not sized to its document ({height} px)"
        assert 0 <= height2 - height <= PIXEL_LINE, f"{name}: {height} px high, rewritten {height2} px"
        original = shot.crop((GAP, top, GAP + FRAME_WIDTH, bottom))
        copy = shot.crop((2 * GAP + FRAME_WIDTH, top, 2 * GAP + 2 * FRAME_WIDTH, top + height))
        red, green, blue = ImageChops.difference(original, copy).split()
        largest = ImageChops.lighter(ImageChops.lighter(red, green), blue)
        different = sum(largest.histogram()[CHANNEL_TOLERANCE + 1 :])
        assert different <= MAX_DIFFERENT_SHARE * FRAME_WIDTH * height, (
            f"{name}: {different} of {FRAME_WIDTH * height} pixels differ"
        )
