"""The field table: every setting declared once, with its name, what a config file holds,
its default, its parser and its doc.

The loader (:func:`~ssg_dmi.settings.load.load_settings`) parses by it, the MkDocs plugin
builds its ``config_options`` from it, and the README's configuration table is
:func:`markdown_table` (a test keeps them equal). A new setting is one row here plus its
typed attribute on :class:`~ssg_dmi.settings.model.Settings` (a test checks both agree).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..formats import VariantFormat
from ..policy import DMI, ImagePolicy, MetadataMode, RightsExpression
from . import parse as p
from .globs import globs
from .hotlink import hotlink_table
from .parse import HOSTS, ORIGINALS, QUALITY_DEFAULTS, VARIANT_FORMATS, Host, Originals, Parser
from .signing import c2pa_table
from .watermark import watermark_styles, watermark_value

DEFAULT_SIZES = "(max-width: 960px) 100vw, 960px"
# Geometric, 320 → 1600 in 9 steps of ~1.196× (rounded to multiples of 16; no step above 1.21×).
DEFAULT_WIDTHS = (320, 384, 464, 544, 656, 784, 944, 1120, 1344, 1600)
DEFAULT_MAX_PIXELS = 128_000_000  # above the largest common sensors (~102 MP), below RAM trouble


@dataclass(frozen=True)
class Shape:
    """What a config file holds for a key before its parser sees it: one of ``types``
    (YAML/TOML types; MkDocs checks them with its own messages), one of ``choices``, or a
    list of such values when ``many``."""

    types: tuple[type, ...] = (str,)
    choices: tuple[str, ...] = ()
    many: bool = False


TEXT = Shape()
FLAG = Shape((bool,))
NUMBER = Shape((int,))
GLOBS = Shape((str,), many=True)


@dataclass(frozen=True)
class Field:
    """One setting: ``per_path`` ones may also be set by a rule or a page (front matter,
    ``data-dmi``) and make up :attr:`Settings.policy`; the others are site-wide."""

    name: str
    shape: Shape
    parse: Parser
    default: Any  # None: not set (the README shows "—")
    doc: str  # the README's "what it does", in Markdown
    per_path: bool = False
    shown: str = ""  # the README's default, where the value alone would not say it


_EXPR = RightsExpression("")  # its defaults: the type and language of a rights expression

# Laid out as a table, one row per setting.
# fmt: off
FIELDS: tuple[Field, ...] = (
    Field("dmi", TEXT, p.dmi_value, ImagePolicy().dmi, per_path=True,
          doc="the `plus:DataMining` value: a key below or its full URI "
              "`http://ns.useplus.org/ldf/vocab/<KEY>`"),
    Field("other_constraints", TEXT, p.text, None, per_path=True,
          doc="`plus:OtherConstraints` text; required by `DMI-PROHIBITED-SEECONSTRAINT`"),
    Field("embedded_rights_expression", TEXT, p.text, None, per_path=True,
          doc="`iptcExt:EmbdEncRightsExpr` text (e.g. ODRL JSON); required by "
              "`DMI-PROHIBITED-SEEEMBEDDEDRIGHTSEXPR`"),
    Field("linked_rights_expression", TEXT, p.http_url, None, per_path=True,
          doc="`iptcExt:LinkedEncRightsExpr` URL; required by "
              "`DMI-PROHIBITED-SEELINKEDRIGHTSEXPR`"),
    Field("rights_expression_type", TEXT, p.text, _EXPR.encoding, per_path=True,
          doc="media type of the rights expression"),
    Field("rights_expression_language", TEXT, p.http_url, _EXPR.language, per_path=True,
          doc="language of the rights expression"),
    Field("copyright", TEXT, p.text, None, per_path=True,
          doc="Copyright Notice: `dc:rights` and EXIF `Copyright`"),
    Field("creator", Shape((str, list)), p.creators, None, per_path=True,
          doc="Creator(s): `dc:creator` and EXIF `Artist` (joined with `; `)"),
    Field("credit", TEXT, p.text, None, per_path=True,
          doc="Credit Line: `photoshop:Credit`"),
    Field("web_statement", TEXT, p.http_url, None, per_path=True,
          doc="Web Statement of Rights: `xmpRights:WebStatement` (http(s) URL)"),
    Field("licensor_url", TEXT, p.http_url, None, per_path=True,
          doc="Licensor URL: `plus:Licensor/plus:LicensorURL` (http(s) URL)"),
    Field("metadata", Shape(choices=tuple(m.value for m in MetadataMode)), p.metadata_mode,
          ImagePolicy().metadata, per_path=True,
          doc="`strip`: only what ssg-dmi writes. `copyright`: also keep the source's own "
              "creator, copyright, credit, web statement and licensor when the config does not "
              "set them (read from XMP, EXIF and IPTC). `keep`: keep everything else too "
              "(camera model, exposure, captions, IPTC, comments) — but never the private "
              "fields above"),
    Field("rules", Shape((dict,), many=True), p.tables, (),
          doc='list of `{path = "glob", <any key above>}`; `*` and `?` stay in one folder, `**` '
              "crosses folders"),
    Field("max_pixels", NUMBER, p.whole(1, 10**10), DEFAULT_MAX_PIXELS,
          doc="images with more pixels are refused as possible decompression bombs (the largest "
              "common sensors are ~102 MP)"),
    Field("quality", Shape((int, dict)), p.quality, QUALITY_DEFAULTS,
          doc="encoder quality for re-encoded originals and variants; a number sets all three"),
    Field("widths", Shape((int,), many=True), p.widths, DEFAULT_WIDTHS,
          doc="variant widths in pixels (16–16384). The default steps by at most 1.21×, so the "
              "browser's pick (the first width at or above the slot) carries at most ~32 % "
              "surplus pixels; 1600 covers an 800 px column at 2×"),
    Field("formats", Shape(choices=VARIANT_FORMATS, many=True), p.variant_formats,
          (VariantFormat.WEBP,),
          doc="variant formats, any of `avif`, `webp`, `jpeg`, `png` (more than one is useful "
              "with `picture = true`)"),
    Field("originals", Shape(choices=ORIGINALS), p.member_of(Originals), Originals.OPTIMIZE,
          doc="`optimize`: tag, and re-encode where it pays (see above); `tag`: lossless "
              "metadata rewrite only"),
    Field("include", GLOBS, globs, (),
          doc="globs (same syntax as `rules`) selecting which images `build` touches"),
    Field("exclude", GLOBS, globs, (),
          doc="globs (same syntax as `rules`) selecting which images `build` touches"),
    Field("cache_dir", TEXT, p.text, ".cache/ssg-dmi",
          doc="the cache folder, relative to where you run"),
    Field("cache", FLAG, p.flag, True,
          doc="`false` processes everything afresh and leaves the cache alone"),
    Field("jobs", NUMBER, p.whole(1, 256), None, shown="cores",
          doc="worker processes"),
    Field("scheduler", TEXT, p.scheduler, None,
          doc="a Dask scheduler (`tcp://host:8786`): the image jobs run on its cluster "
              "(`pip install ssg-dmi[dask]`); unset: this machine's workers"),
    Field("srgb", FLAG, p.flag, False,
          doc="convert variants with an ICC profile to sRGB (and drop the profile)"),
    Field("strict", FLAG, p.flag, False,
          doc="`build` exits 1 when any image is left untagged"),
    Field("tdm_policy", TEXT, p.http_url, None,
          doc='URL of your TDM licensing policy: `<meta name="tdm-policy">`, `tdmrep.json`, the '
              "`tdm-policy` header"),
    Field("hosts", Shape(choices=HOSTS, many=True), p.some_of(Host), (Host.NETLIFY,),
          doc="header configs to write: `netlify`, `cloudflare` (`_headers`), `apache` "
              "(`.htaccess`), `nginx` (`ssg-dmi.nginx.conf`), `caddy` (`ssg-dmi.caddy`)"),
    Field("sizes", TEXT, p.text, DEFAULT_SIZES,
          doc="the `sizes` of rewritten images (per image: `data-sizes`)"),
    Field("picture", FLAG, p.flag, False,
          doc="wrap images in `<picture>` with a `<source>` per format instead of a `srcset` on "
              "`<img>`"),
    Field("lazy", FLAG, p.flag, True,
          doc='add `loading="lazy"` to images that do not set `loading`'),
    Field("block_search_engines", FLAG, p.flag, False,
          doc="also `Disallow: /` for every crawler in robots.txt"),
    Field("robots_content_usage", FLAG, p.flag, False,
          doc="also write the aipref `Content-Usage` lines into robots.txt (they are always in "
              "the response headers). Lighthouse 13 calls each an unknown directive and fails "
              "its `robots-txt` audit: the MkDocs example's SEO score drops from 1.0 to 0.92"),
    Field("base_url", TEXT, p.url_path, "/",
          doc="where the site is served: a path (`/docs/`) or a full URL, whose origin also "
              "makes absolute URLs to the site local (the plugins take it from `site_url` / "
              "`SITEURL`)"),
    Field("rewrite_html", FLAG, p.flag, True,
          doc="rewrite pages (srcset, meta tags)"),
    Field("site_files", FLAG, p.flag, True,
          doc="write `ai.txt`, `robots.txt`, `tdmrep.json` and the header configs"),
    Field("c2pa", Shape((dict,)), c2pa_table, None,
          doc="sign every tagged image with a C2PA manifest carrying the training-and-data-mining "
              "assertion: a table `{cert, key or key_env, alg, tsa_url, apply_to}`, see "
              "[C2PA](#c2pa-content-credentials)"),
    Field("hotlink", Shape((dict,)), hotlink_table, None,
          doc="refuse (403) image requests whose Referer names another site, in the nginx, "
              "Apache and Caddy configs (a rule file for Cloudflare): a table `{allow, "
              "allow_empty_referer, allow_search_engines, paths}`, see "
              "[Hotlink protection](#hotlink-protection)"),
    Field("watermark", Shape((dict, str)), watermark_value, None, per_path=True,
          doc="a visible mark on the images: a table `{text or logo, position, offset, scale, "
              "opacity, tile, angle, min_width, apply_to, font, color, shadow}`; in a rule also "
              '`"none"` or a style\'s name, see [Watermarks](#watermarks)'),
    Field("watermark_styles", Shape((dict,)), watermark_styles, None,
          doc='named watermark tables a rule picks with `watermark = "<name>"`'),
)
# fmt: on

FIELD: Mapping[str, Field] = {f.name: f for f in FIELDS}
DEFAULT: Mapping[str, Any] = {f.name: f.default for f in FIELDS}
SITE_KEYS = tuple(FIELD)
POLICY_KEYS = tuple(f.name for f in FIELDS if f.per_path)


def toml_value(value: Any) -> str:
    """A default as a TOML file would spell it (``true``, ``["webp"]``, ``{jpeg = 82}``)."""
    if isinstance(value, Enum):
        return toml_value(value.key if isinstance(value, DMI) else value.value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple | list):
        return (
            "[" + ", ".join(f'"{v}"' if isinstance(v, str) else toml_value(v) for v in value) + "]"
        )
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def markdown_table() -> str:
    """The README's table of settings: key, default, what it does. Keys that share a doc
    (``include`` / ``exclude``) share a row."""
    rows: list[tuple[list[str], str, str]] = []
    for f in FIELDS:
        default = f.shown or ("—" if f.default is None else f"`{toml_value(f.default)}`")
        if rows and rows[-1][2] == f.doc and rows[-1][1] == default:
            rows[-1][0].append(f.name)
        else:
            rows.append(([f.name], default, f.doc))
    lines = ["| key | default | what it does |", "|---|---|---|"]
    for names, default, doc in rows:
        keys = " / ".join(f"`{name}`" for name in names)
        lines.append(f"| {keys} | {default} | {doc} |")
    return "\n".join(lines) + "\n"
