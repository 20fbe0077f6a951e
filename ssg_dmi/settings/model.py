"""The validated settings of one site, and how a path's image policy is resolved from them:
site values, then matching ``[[rules]]`` in order, then page overrides."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..formats import VariantFormat
from ..policy import DMI, ImagePolicy, Rights, RightsExpression
from .fields import DEFAULT, FIELD, FIELDS, POLICY_KEYS
from .globs import glob_hit
from .hotlink import HotlinkSettings
from .parse import Host, Originals, unknown_key
from .signing import C2paSettings
from .watermark import Watermark, check_originals, merged, resolve, with_paths

# Site-wide keys that map one to one onto a Settings attribute (`rules` needs the policy).
SITE_WIDE_KEYS = tuple(f.name for f in FIELDS if not f.per_path and f.name != "rules")


@dataclass(frozen=True)
class Rule:
    """A per-path override: files matching ``path`` take the keys it sets."""

    path: str
    values: Mapping[str, Any]
    pattern: re.Pattern[str] = field(compare=False, repr=False)

    def matches(self, relpath: str) -> bool:
        """Whether a site-relative POSIX path matches this rule's glob."""
        target = relpath if "/" in self.path.strip("/") else relpath.rsplit("/", 1)[-1]
        return self.pattern.fullmatch(target) is not None


def parse_policy_values(raw: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Parse keys a rule or a page may set; an unknown key or bad value is a ConfigError
    prefixed with ``where``."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in POLICY_KEYS:
            raise unknown_key(where, key, POLICY_KEYS)
        try:
            values[key] = FIELD[key].parse(key, value)
        except ConfigError as exc:
            raise ConfigError(f"{where}{exc}") from None
    return values


def parse_site_wide_values(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Parse site-wide keys (:data:`SITE_WIDE_KEYS`) into Settings attribute values."""
    return {key: FIELD[key].parse(key, value) for key, value in raw.items()}


def build_policy(values: Mapping[str, Any], where: str = "") -> ImagePolicy:
    """An :class:`ImagePolicy` from parsed values, checking the keys each DMI value needs."""
    dmi = values.get("dmi", DEFAULT["dmi"])
    needs = {
        DMI.PROHIBITED_SEECONSTRAINT: "other_constraints",
        DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR: "embedded_rights_expression",
        DMI.PROHIBITED_SEELINKEDRIGHTSEXPR: "linked_rights_expression",
    }
    if dmi in needs and needs[dmi] not in values:
        raise ConfigError(f"{where}`dmi` = {dmi.key} requires `{needs[dmi]}` to be set")
    kind = values.get("rights_expression_type", DEFAULT["rights_expression_type"])
    lang = values.get("rights_expression_language", DEFAULT["rights_expression_language"])

    def expression(key: str) -> RightsExpression | None:
        text = values.get(key)
        return RightsExpression(text, kind, lang) if text else None

    return ImagePolicy(
        dmi=dmi,
        rights=Rights(
            copyright=values.get("copyright"),
            creators=values.get("creator", ()),
            credit=values.get("credit"),
            web_statement=values.get("web_statement"),
            licensor_url=values.get("licensor_url"),
        ),
        metadata=values.get("metadata", DEFAULT["metadata"]),
        other_constraints=values.get("other_constraints"),
        embedded_rights_expression=expression("embedded_rights_expression"),
        linked_rights_expression=expression("linked_rights_expression"),
    )


@dataclass(frozen=True)
class Settings:
    """The validated configuration of one site; build it with :func:`load_settings`.

    Every attribute but ``policy`` (the parsed per-path keys set site-wide), ``rules``,
    ``origin`` and ``source`` is a key of the field table and takes its default from there.
    A Settings is never changed: :meth:`with_overrides` validates a new one.
    """

    policy: Mapping[str, Any] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    max_pixels: int = DEFAULT["max_pixels"]
    quality: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT["quality"]))
    widths: tuple[int, ...] = DEFAULT["widths"]
    formats: tuple[VariantFormat, ...] = DEFAULT["formats"]
    originals: Originals = DEFAULT["originals"]
    include: tuple[str, ...] = DEFAULT["include"]
    exclude: tuple[str, ...] = DEFAULT["exclude"]
    cache_dir: str = DEFAULT["cache_dir"]
    cache: bool = DEFAULT["cache"]
    jobs: int | None = DEFAULT["jobs"]
    scheduler: str | None = DEFAULT["scheduler"]
    srgb: bool = DEFAULT["srgb"]
    strict: bool = DEFAULT["strict"]
    tdm_policy: str | None = DEFAULT["tdm_policy"]
    hosts: tuple[Host, ...] = DEFAULT["hosts"]
    sizes: str = DEFAULT["sizes"]
    picture: bool = DEFAULT["picture"]
    lazy: bool = DEFAULT["lazy"]
    block_search_engines: bool = DEFAULT["block_search_engines"]
    robots_content_usage: bool = DEFAULT["robots_content_usage"]
    base_url: str = DEFAULT["base_url"]
    origin: str | None = None  # scheme://host of base_url when given as a full URL
    rewrite_html: bool = DEFAULT["rewrite_html"]
    site_files: bool = DEFAULT["site_files"]
    c2pa: C2paSettings | None = DEFAULT["c2pa"]
    hotlink: HotlinkSettings | None = DEFAULT["hotlink"]
    watermark_styles: Mapping[str, Mapping[str, Any]] | None = DEFAULT["watermark_styles"]
    source: str = "defaults"

    def policy_for(self, relpath: str, overrides: Mapping[str, Any] | None = None) -> ImagePolicy:
        """The resolved policy of a site-relative path: site values, then matching rules in
        order (last match wins), then ``overrides`` (front matter, ``data-dmi``)."""
        matched = tuple(i for i, rule in enumerate(self.rules) if rule.matches(relpath))
        if not overrides:
            # The same rules give the same policy: one made per set of rules that match (a
            # site of many images has a few), not per image. A policy that cannot be made is
            # not kept, so its error names each path as before.
            memo: dict[tuple[int, ...], ImagePolicy] = self.__dict__.setdefault("_policies", {})
            policy = memo.get(matched)
            if policy is None:
                policy = memo[matched] = self._policy(relpath, matched, None)
            return policy
        return self._policy(relpath, matched, overrides)

    def _policy(
        self, relpath: str, matched: tuple[int, ...], overrides: Mapping[str, Any] | None
    ) -> ImagePolicy:
        values = dict(self.policy)
        for index in matched:
            values.update(self.rules[index].values)
        if overrides:
            values.update(parse_policy_values(overrides, f"{relpath}: "))
        return build_policy(values, f"{self.source}: policy for {relpath}: ")

    def watermark_for(
        self, relpath: str, overrides: Mapping[str, Any] | None = None
    ) -> Watermark | None:
        """The visible mark of a site-relative path: the site's ``[watermark]``, then
        matching rules in order, then ``overrides``; None: not marked."""
        styles = self.watermark_styles or {}
        where = f"{self.source}: watermark for {relpath}: "
        values = self.policy.get("watermark")
        if isinstance(values, str):  # the site's own value may name a style too
            values = merged(None, values, styles, where)
        for rule in self.rules:
            if "watermark" in rule.values and rule.matches(relpath):
                values = merged(values, rule.values["watermark"], styles, where)
        if overrides and "watermark" in overrides:
            given = parse_policy_values({"watermark": overrides["watermark"]}, f"{relpath}: ")
            values = merged(values, given["watermark"], styles, where)
        return resolve(values)

    def with_base(self, base: Path | None) -> Settings:
        """A copy whose watermark ``logo``/``font`` paths are absolute (relative ones are
        taken from ``base``, the config file's folder, else where you run), each checked;
        ConfigError for a missing file or a mark the ``originals`` mode forbids."""
        folder = base or Path.cwd()
        where = f"{self.source}: "
        originals = str(self.originals)

        site = self.policy.get("watermark")
        inherited = site if isinstance(site, Mapping) else {}

        def fix(value: Any, at: str, inherit: Mapping[str, Any] | None = None) -> Any:
            if not isinstance(value, Mapping):
                merged(None, value, self.watermark_styles or {}, at)  # a name it knows
                return value
            check_originals(merged(inherit, value, {}, at), originals, at)
            return with_paths(value, folder, at)

        policy = dict(self.policy)
        if "watermark" in policy:
            policy["watermark"] = fix(policy["watermark"], where)
        rules = tuple(
            replace(r, values={**r.values, "watermark": fix(r.values["watermark"], at, inherited)})
            if "watermark" in r.values
            else r
            for r in self.rules
            for at in [f"{where}rule {r.path!r}: "]
        )
        styles = self.watermark_styles
        if styles is not None:
            styles = {n: fix(v, f"{where}watermark_styles.{n}: ") for n, v in styles.items()}
        return replace(self, policy=policy, rules=rules, watermark_styles=styles)

    def with_overrides(self, **values: Any) -> Settings:
        """A copy with keys replaced by command-line values (None means not given), each
        parsed and checked as if it were in the config file."""
        given = {k: v for k, v in values.items() if v is not None}
        policy = {k: v for k, v in given.items() if k in POLICY_KEYS}
        merged = {**self.policy, **parse_policy_values(policy, "command line: ")}
        build_policy(merged, "command line: ")
        other = {k: v for k, v in given.items() if k not in POLICY_KEYS}
        try:
            new = replace(self, policy=merged, **parse_site_wide_values(other))
        except ConfigError as exc:
            raise ConfigError(f"command line: {exc}") from None
        return new.with_base(None) if "originals" in other else new

    def matches(self, relpath: str) -> bool:
        """Whether the include/exclude globs let a site-relative path through."""
        if self.include and not any(glob_hit(g, relpath) for g in self.include):
            return False
        return not any(glob_hit(g, relpath) for g in self.exclude)
