"""Finding a Chinese font reportlab can embed.

reportlab embeds TrueType (glyf) outlines as a subset, so a PDF made here
shows its Chinese on a PC with no Chinese fonts at all. It cannot embed
PostScript (CFF) outlines — Noto Sans CJK .otf and .ttc are those — so they
are skipped. Search order: a configured path, resources/fonts, then the
system's usual places (Windows SimHei/YaHei/SimSun; Linux WenQuanYi and the
TTF builds of Noto Sans SC).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

from core.errors import CbtError
from core.paths import resource

FONT_NAME = "CBT-CJK"

_WINDOWS = ("simhei.ttf", "msyh.ttc", "msyh.ttf", "simsun.ttc", "simkai.ttf", "simfang.ttf",
            "Deng.ttf")
_LINUX = (
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/wenquanyi/wqy-zenhei/wqy-zenhei.ttc",
    "/usr/share/fonts/truetype/noto/NotoSansSC-Regular.ttf",
    "/usr/share/fonts/truetype/noto/NotoSerifSC-Regular.ttf",
    "/usr/share/fonts/truetype/arphic/uming.ttc",
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
)
_MAC = ("/System/Library/Fonts/STHeiti Light.ttc", "/Library/Fonts/Arial Unicode.ttf")


class FontNotFoundError(CbtError):
    pass


@dataclass(frozen=True)
class FontChoice:
    path: Path
    index: int          # the face inside a .ttc
    name: str = FONT_NAME


def candidates(configured: str | os.PathLike[str] | None = None) -> list[Path]:
    out: list[Path] = []
    if configured:
        out.append(Path(configured))
    fonts_dir = resource("fonts")
    if fonts_dir.is_dir():
        out += sorted(p for p in fonts_dir.iterdir() if p.suffix.lower() in (".ttf", ".ttc"))
    if sys.platform == "win32":
        windir = Path(os.environ.get("WINDIR", r"C:\Windows")) / "Fonts"
        out += [windir / name for name in _WINDOWS]
    elif sys.platform == "darwin":
        out += [Path(p) for p in _MAC]
    else:
        out += [Path(p) for p in _LINUX]
    return out


_registered: FontChoice | None = None


def register(configured: str | os.PathLike[str] | None = None) -> FontChoice:
    """Register the first usable CJK TrueType font with reportlab (once)."""
    global _registered
    if _registered is not None and (configured is None or
                                    Path(configured) == _registered.path):
        return _registered
    import hashlib
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFError, TTFont

    if configured and not Path(configured).is_file():
        raise FontNotFoundError(f"指定的字体文件不存在：{configured}")
    tried: list[str] = []
    # A configured font must work as given: falling back would print with
    # another font while the settings say this one.
    for path in ([Path(configured)] if configured else candidates()):
        if not path.is_file():
            continue
        if path.suffix.lower() == ".otf":
            tried.append(f"{path.name}（PostScript轮廓，不能嵌入）")
            continue
        # Each file under its own name: reportlab keeps the first font
        # registered under a name, so switching fonts needs a new one.
        name = f"{FONT_NAME}-{hashlib.blake2b(str(path).encode(), digest_size=4).hexdigest()}"
        try:
            font = TTFont(name, str(path), subfontIndex=0)
            if not _has_chinese(font):
                tried.append(f"{path.name}（不含中文）")
                continue
        except TTFError as exc:
            tried.append(f"{path.name}（{'PostScript轮廓，不能嵌入' if 'postscript' in str(exc).lower() else exc}）")
            continue
        except Exception as exc:  # noqa: BLE001 - a broken font file: try the next one
            tried.append(f"{path.name}（{exc}）")
            continue
        pdfmetrics.registerFont(font)
        _registered = FontChoice(path, 0, name)
        return _registered
    hint = ("Windows 请确认 C:\\Windows\\Fonts 下有 黑体(simhei.ttf) 或 微软雅黑(msyh.ttc)；"
            "Linux 请安装文泉驿正黑：apt install fonts-wqy-zenhei；"
            "也可把任一中文 TrueType 字体（.ttf/.ttc）放到 resources/fonts 目录，或在设置中指定。")
    detail = ("已检查：" + "、".join(tried) + "。") if tried else ""
    if configured:
        raise FontNotFoundError(f"指定的字体不能使用。{detail}请换一个 TrueType 字体（.ttf/.ttc）。")
    raise FontNotFoundError(f"没有找到可以嵌入PDF的中文字体。{detail}{hint}")


def font_name() -> str:
    """The registered font's name, registering the default one if needed."""
    return (_registered or register()).name


def _has_chinese(font) -> bool:
    cmap = font.face.charToGlyph
    return all(ord(ch) in cmap for ch in "参保缴费")
