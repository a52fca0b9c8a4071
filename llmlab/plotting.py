"""Plot helpers shared by the notebooks."""
from __future__ import annotations

import glob
import os
import re
import warnings

# Fonts that draw Chinese, most common first: Linux (Noto, WenQuanYi), Windows, macOS.
CJK_FONTS = [
    "Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei",
    "Microsoft YaHei", "SimHei", "PingFang SC", "Hiragino Sans GB", "Heiti SC", "Arial Unicode MS",
]
_CJK_FILE = re.compile(r"wqy|cjk|sourcehan|simhei|msyh|pingfang|hiragino|heiti|arialuni", re.I)
_INSTALL_HINT = "install one (Debian/Ubuntu: apt install fonts-wqy-microhei; anywhere: pip install mplfonts)"


def find_cjk_font() -> str | None:
    """Name of an installed font that draws Chinese, registering system and ``mplfonts`` fonts that
    matplotlib's font cache has not seen yet (fonts installed after the cache was built)."""
    from matplotlib import font_manager

    names = {f.name for f in font_manager.fontManager.ttflist}
    if not any(n in names for n in CJK_FONTS):
        paths = [p for p in font_manager.findSystemFonts() if _CJK_FILE.search(os.path.basename(p))]
        try:
            import mplfonts  # optional: ships Noto Sans CJK SC

            paths += glob.glob(os.path.join(os.path.dirname(mplfonts.__file__), "fonts", "NotoSansCJK*"))
        except ImportError:
            pass
        for path in paths:
            try:
                font_manager.fontManager.addfont(path)
            except Exception:  # an unreadable font file is not our problem
                continue
        names = {f.name for f in font_manager.fontManager.ttflist}
    return next((n for n in CJK_FONTS if n in names), None)


def use_cjk_font() -> str | None:
    """Make matplotlib draw Chinese characters; returns the font used, or None (with a warning)."""
    from matplotlib import rcParams

    name = find_cjk_font()
    if name is None:
        warnings.warn(f"no Chinese font found, so Chinese in plots shows as boxes: {_INSTALL_HINT}", stacklevel=2)
        return None
    rcParams["font.family"] = "sans-serif"
    rcParams["font.sans-serif"] = [name] + [f for f in rcParams["font.sans-serif"] if f != name]
    rcParams["axes.unicode_minus"] = False  # CJK fonts often lack the Unicode minus sign
    return name
