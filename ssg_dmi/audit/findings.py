"""What ``ssg-dmi check`` reports: findings with stable codes, and the report holding them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..fsutil import shown

Severity = Literal["error", "warning"]
Mode = Literal["dir", "url"]  # a built site folder, or a served site
# Every finding code, with what it means (the README lists these).
CODES = {
    "image-untagged": "an image or variant has no plus:DataMining value",
    "image-wrong-dmi": "its plus:DataMining differs from what its path/page policy requires",
    "image-private-metadata": "GPS, serials, owner, maker notes or a thumbnail survived",
    "image-unreadable": "the file's container or metadata cannot be read",
    "image-c2pa-wrong": "its C2PA training-mining assertion differs from the policy, or the "
    "manifest no longer matches the bytes",
    "image-c2pa-missing": "`[c2pa]` is set but an image the build signs has no C2PA manifest",
    "page-dmi-invalid": '<meta name="ssg-dmi"> or data-dmi holds no DataMining value',
    "page-robots-meta": '<meta name="robots"> missing, doubled or without the directives',
    "page-tdm-meta": '<meta name="tdm-reservation"> / "tdm-policy" missing or wrong',
    "img-missing-size": "an <img> with srcset lacks width or height",
    "src-missing-file": "an <img src> names a file the site does not have (warning)",
    "srcset-missing-file": "a srcset candidate names a file the site does not have",
    "srcset-wrong-width": "a srcset w descriptor differs from the file's pixel width",
    "site-file-missing": "ai.txt, robots.txt, tdmrep.json or a host's header file is absent",
    "site-file-inconsistent": "a site file says something other than the policy",
    "header-missing": "a response lacks a header the policy calls for",
    "header-wrong": "a response header has another value than the policy calls for",
    "fetch-failed": "a URL could not be fetched, or a page read",
    "crawl-truncated": "the crawl stopped at a page, image or time limit (warning)",
    "hotlink-off": "`[hotlink]` is set but an image with another site's Referer is served "
    "(warning)",
}


@dataclass(frozen=True)
class Finding:
    """One problem: a stable ``code``, the site path or URL, and what is wrong."""

    code: str
    path: str
    message: str
    severity: Severity = "error"


@dataclass
class CheckReport:
    """What a check found: ``target`` is the site folder or the base URL."""

    target: str
    mode: Mode
    findings: list[Finding] = field(default_factory=list)
    checked: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what was skipped or inferred, and why

    @property
    def errors(self) -> int:
        """How many findings are errors."""
        return sum(f.severity == "error" for f in self.findings)

    @property
    def warnings(self) -> int:
        """How many findings are warnings."""
        return sum(f.severity == "warning" for f in self.findings)

    def display(self, path: str) -> str:
        """A finding's path as shown: under the site folder as given, or the URL."""
        return path if self.mode == "url" else shown(Path(self.target) / path)
