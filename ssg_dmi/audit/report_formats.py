"""A :class:`CheckReport` written out for a person or a CI system: plain text, JSON, JUnit
XML or GitHub Actions workflow commands."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import asdict

from .findings import CheckReport, Finding

_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _sorted(report: CheckReport) -> list[Finding]:
    return sorted(report.findings, key=lambda f: (report.display(f.path), f.code, f.message))


def summary(report: CheckReport) -> str:
    """The last line of the text output."""
    what = "URLs" if report.mode == "url" else "files"
    return (
        f"ssg-dmi check: {report.errors} errors, {report.warnings} warnings "
        f"in {len(report.checked)} {what} checked"
    )


def format_text(report: CheckReport) -> str:
    """One line per finding (``path: code: message``), the notes, then the summary."""
    lines = []
    for f in _sorted(report):
        prefix = "warning: " if f.severity == "warning" else ""
        lines.append(f"{report.display(f.path)}: {f.code}: {prefix}{f.message}")
    notes = [f"ssg-dmi check: note: {note}" for note in report.notes]
    return "\n".join([*lines, *notes, summary(report)]) + "\n"


def format_json(report: CheckReport) -> str:
    """One JSON document: target, summary, checked paths and findings."""
    data = {
        "target": report.target,
        "mode": report.mode,
        "summary": {
            "errors": report.errors,
            "warnings": report.warnings,
            "checked": len(report.checked),
        },
        "checked": [report.display(p) for p in report.checked],
        "notes": report.notes,
        "findings": [{**asdict(f), "file": report.display(f.path)} for f in _sorted(report)],
    }
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def format_junit(report: CheckReport) -> str:
    """JUnit XML: one testcase per checked file or URL, a failure where it has errors."""
    by_path: dict[str, list[Finding]] = {}
    for f in _sorted(report):
        by_path.setdefault(report.display(f.path), []).append(f)
    names = list(dict.fromkeys([*(report.display(p) for p in report.checked), *by_path]))
    failures = sum(any(f.severity == "error" for f in by_path.get(n, [])) for n in names)
    counts = {"tests": str(len(names)), "failures": str(failures), "errors": "0"}
    root = ET.Element("testsuites", {"name": "ssg-dmi check", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": report.target, **counts, "skipped": "0"})
    for name in names:
        case = ET.SubElement(suite, "testcase", {"classname": "ssg-dmi.check", "name": name})
        found = by_path.get(name, [])
        errors = [f for f in found if f.severity == "error"]
        if errors:
            first = errors[0]
            failure = ET.SubElement(
                case, "failure", {"type": first.code, "message": f"{first.code}: {first.message}"}
            )
            failure.text = "\n".join(f"{f.code}: {f.message}" for f in errors)
        warnings = [f for f in found if f.severity == "warning"]
        if warnings:
            out = ET.SubElement(case, "system-out")
            out.text = "\n".join(f"warning: {f.code}: {f.message}" for f in warnings)
    if report.notes:
        ET.SubElement(suite, "system-out").text = "\n".join(f"note: {n}" for n in report.notes)
    ET.indent(root)
    xml = ET.tostring(root, "unicode")
    # ElementTree writes control characters (a file name may hold one) as they are: not XML.
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + _NOT_XML.sub("\ufffd", xml) + "\n"


def _escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def format_github(report: CheckReport) -> str:
    """GitHub Actions workflow commands (``::error file=…,title=…::message``), then the
    summary; URL findings carry the URL in the title, as they name no file."""
    lines = []
    for f in _sorted(report):
        where = report.display(f.path)
        if report.mode == "url":
            props = f"title={_escape_property(f'{f.code} {where}')}"
        else:
            props = f"file={_escape_property(where)},title={_escape_property(f.code)}"
        lines.append(f"::{f.severity} {props}::{_escape_data(f.message)}")
    lines += [f"::notice title=ssg-dmi check::{_escape_data(note)}" for note in report.notes]
    return "\n".join([*lines, summary(report)]) + "\n"


FORMATTERS: dict[str, Callable[[CheckReport], str]] = {
    "text": format_text,
    "json": format_json,
    "junit": format_junit,
    "github": format_github,
}
FORMATS = tuple(FORMATTERS)
