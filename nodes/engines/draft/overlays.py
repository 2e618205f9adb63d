"""Text on Draft frames: caption bands, the DRAFT label and the slate card of text-only shots.

Everything that does not change per frame is rendered once with Pillow's bundled scalable font
(no font files needed) and composited per frame with numpy; the per-frame counter uses OpenCV's
built-in Hershey font, which draws in microseconds. Sizes follow the frame height so a 360p
and a 1080p draft look alike.
"""

from __future__ import annotations

import numpy as np

from ...shot.request import FPS

AMBER = (240, 176, 40)
WHITE = (240, 240, 240)
GREY = (150, 154, 162)
SLATE_BG = (24, 26, 31)
ELLIPSIS = "…"


def font(px: int):
    """Pillow's bundled font at ``px`` pixels (its fixed bitmap font where FreeType is missing)."""
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=max(8, int(px)))
    except (TypeError, ValueError, OSError):
        return ImageFont.load_default()


def _fit_line(text: str, fnt, max_w: float) -> str:
    if fnt.getlength(text) <= max_w:
        return text
    while text and fnt.getlength(text + ELLIPSIS) > max_w:
        text = text[:-1]
    return text.rstrip() + ELLIPSIS


def wrap(text: str, fnt, max_w: float, max_lines: int) -> list[str]:
    """Word-wrap ``text`` into at most ``max_lines`` lines of ``max_w`` pixels; an ellipsis marks a cut."""
    lines: list[str] = []
    for para in text.splitlines() or [""]:
        cur = ""
        for word in para.split():
            cand = f"{cur} {word}" if cur else word
            if cur and fnt.getlength(cand) > max_w:
                lines.append(cur)
                cur = word
            else:
                cur = cand
        lines.append(cur)
    lines = [ln for ln in lines if ln] or [""]
    cut = len(lines) > max_lines
    lines = lines[:max_lines]
    if cut:
        last = lines[-1]
        while last and fnt.getlength(last + ELLIPSIS) > max_w:
            last = last[:-1]
        lines[-1] = last.rstrip() + ELLIPSIS
    return [_fit_line(ln, fnt, max_w) for ln in lines]


class CaptionBand:
    """A caption rendered once as a translucent strip along the bottom of the frame."""

    def __init__(self, text: str, width: int, height: int):
        from PIL import Image, ImageDraw

        px = max(10, round(height * 0.034))
        fnt = font(px)
        pad = max(4, px // 2)
        lines = wrap(text, fnt, width - 2 * pad, 2)
        line_h = round(px * 1.25)
        self.height = min(height, 2 * pad + line_h * len(lines))
        img = Image.new("RGBA", (width, self.height), (0, 0, 0, 150))
        draw = ImageDraw.Draw(img)
        for i, line in enumerate(lines):
            draw.text((pad, pad + i * line_h), line, font=fnt, fill=WHITE + (255,))
        rgba = np.asarray(img).astype(np.uint16)
        alpha = rgba[..., 3:4]
        self._pre = rgba[..., :3] * alpha  # premultiplied, at most 255 * 255
        self._inv = 255 - alpha

    def draw(self, dst: np.ndarray) -> None:
        """Composite the band onto the bottom of ``dst`` (H, W, 3) uint8, in place."""
        region = dst[dst.shape[0] - self.height:]
        mixed = region.astype(np.uint16) * self._inv + self._pre + 127
        region[...] = ((mixed + (mixed >> 8)) >> 8).astype(np.uint8)  # ~ round(x / 255), no overflow


class Label:
    """The small "DRAFT  f037  1.54 s" label in a top corner of image frames: top-left, unless the
    pictures have their own writing there (a burn-in) and the top-right is clearer."""

    def __init__(self, width: int, height: int, images=()):
        import cv2

        self._cv2 = cv2
        self.scale = max(0.35, height / 1400.0)
        self.thick = 1 if height < 900 else 2
        (tw, th), base = cv2.getTextSize("DRAFT  f0000  00.00 s", cv2.FONT_HERSHEY_SIMPLEX, self.scale, self.thick)
        m = max(3, height // 120)
        left = (m, m, 3 * m + tw, 3 * m + th + base)
        right = (width - 3 * m - tw, m, width - m, 3 * m + th + base)
        self.box = left if burn_in(images, left) <= burn_in(images, right) + BURN_IN_MARGIN else right
        self.origin = (self.box[0] + m, 2 * m + th)

    def draw(self, dst: np.ndarray, frame: int) -> None:
        cv2 = self._cv2
        x0, y0, x1, y1 = self.box
        dst[y0:y1, x0:x1] = (dst[y0:y1, x0:x1] >> 2)  # darken behind the text (1/4 brightness)
        cv2.putText(dst, f"DRAFT  f{frame:03d}  {frame / FPS:5.2f} s", self.origin, cv2.FONT_HERSHEY_SIMPLEX,
                    self.scale, AMBER, self.thick, cv2.LINE_AA)


BURN_IN_MARGIN = 2.0  # how much clearer (mean edge strength, 0..255) the top-right must be to take the label


def burn_in(images, box) -> float:
    """How much writing (fine edges: text, a timecode) the pictures have in ``box`` = (x0, y0, x1,
    y1), grown by half its height: the mean absolute Laplacian of its grey, the most of any picture."""
    import cv2

    x0, y0, x1, y1 = box
    pad = (y1 - y0) // 2
    most = 0.0
    for img in images:
        h, w = img.shape[:2]
        patch = np.ascontiguousarray(img[max(0, y0 - pad):min(h, y1 + pad), max(0, x0 - pad):min(w, x1 + pad)])
        if patch.size:
            grey = cv2.cvtColor(patch, cv2.COLOR_RGB2GRAY)
            most = max(most, float(np.abs(cv2.Laplacian(grey, cv2.CV_16S)).mean()))
    return most


class Slate:
    """The card a text-only draft shows: prompt, shot facts, a frame counter and a progress bar.

    The bottom 16 % is left empty for caption bands.
    """

    def __init__(self, prompt: str, facts: str, width: int, height: int, last_frame: int,
                 ticks: tuple[int, ...] = ()):
        from PIL import Image, ImageDraw

        self.width, self.height, self.last = width, height, max(1, last_frame)
        img = Image.new("RGB", (width, height), SLATE_BG)
        draw = ImageDraw.Draw(img)
        mx = round(width * 0.06)
        big = font(round(height * 0.075))
        draw.text((mx, round(height * 0.05)), "DRAFT", font=big, fill=AMBER)
        body_px = max(10, round(height * 0.048))
        body = font(body_px)
        top, bottom = round(height * 0.2), round(height * 0.68)
        line_h = round(body_px * 1.3)
        lines = wrap(prompt.strip(), body, width - 2 * mx, max(1, (bottom - top) // line_h))
        for i, line in enumerate(lines):
            draw.text((mx, top + i * line_h), line, font=body, fill=WHITE)
        small = font(max(9, round(height * 0.03)))
        draw.text((mx, round(height * 0.71)), _fit_line(facts, small, width - 2 * mx), font=small, fill=GREY)
        self.bar = (mx, round(height * 0.78), width - mx, round(height * 0.78) + max(2, height // 90))
        x0, y0, x1, y1 = self.bar
        draw.rectangle((x0, y0, x1 - 1, y1 - 1), fill=(56, 60, 68))
        for f in ticks:
            x = x0 + round((x1 - x0 - 1) * f / self.last)
            draw.rectangle((x, y0 - max(2, height // 90), x + max(1, width // 640), y1 + max(2, height // 90)), fill=WHITE)
        self._base = np.asarray(img).copy()
        import cv2

        self._cv2 = cv2
        self._scale = max(0.4, height / 1000.0)
        self._thick = 1 if height < 700 else 2
        (tw, th), _ = cv2.getTextSize(self._counter(self.last), cv2.FONT_HERSHEY_SIMPLEX, self._scale, self._thick)
        self._counter_at = (width - mx - tw, round(height * 0.05) + th + max(2, height // 60))

    def _counter(self, frame: int) -> str:
        return f"frame {frame:03d} / {self.last:03d}   {frame / FPS:5.2f} s"

    def draw(self, dst: np.ndarray, frame: int) -> None:
        cv2 = self._cv2
        dst[...] = self._base
        x0, y0, x1, y1 = self.bar
        xf = x0 + round((x1 - x0) * frame / self.last)
        dst[y0:y1, x0:xf] = AMBER
        cv2.putText(dst, self._counter(frame), self._counter_at, cv2.FONT_HERSHEY_SIMPLEX, self._scale, WHITE,
                    self._thick, cv2.LINE_AA)
