"""JUnit XML for CI: one testcase per property run and per replayed case.

Known failures (in the baseline) are reported as skipped with the baseline note, never as
passes; new failures are <failure>; properties the target cannot run are skipped with the reason.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from runners.py import atomic


@dataclass
class TestCase:
    classname: str
    name: str
    seconds: float = 0.0
    status: str = "pass"        # pass | fail | skip | error (the suite itself did not finish)
    message: str = ""           # failure/skip message (one line)
    details: str = ""           # body text: violation, case file, reproduce command


@dataclass
class Suite:
    name: str
    cases: list[TestCase] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)   # provenance: tdxhp build, kernel, flavour


# Characters XML 1.0 does not allow (a case file may hold any): written as \xNN instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml_safe(text: str) -> str:
    return _NOT_XML.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render(suites: list[Suite]) -> str:
    root = ET.Element("testsuites", name="tdxhp-gate")
    for s in suites:
        el = ET.SubElement(root, "testsuite", name=s.name, tests=str(len(s.cases)),
                           failures=str(sum(c.status == "fail" for c in s.cases)),
                           skipped=str(sum(c.status == "skip" for c in s.cases)),
                           errors=str(sum(c.status == "error" for c in s.cases)),
                           time=f"{sum(c.seconds for c in s.cases):.3f}")
        if s.properties:
            props = ET.SubElement(el, "properties")
            for k, v in s.properties.items():
                ET.SubElement(props, "property", name=_xml_safe(str(k)), value=_xml_safe(str(v)))
        for c in s.cases:
            tc = ET.SubElement(el, "testcase", classname=_xml_safe(c.classname), name=_xml_safe(c.name),
                               time=f"{c.seconds:.3f}")
            if c.status in ("fail", "error"):
                ET.SubElement(tc, "failure" if c.status == "fail" else "error",
                              message=_xml_safe(c.message)).text = _xml_safe(c.details or c.message)
            elif c.status == "skip":
                ET.SubElement(tc, "skipped", message=_xml_safe(c.message))
                if c.details:
                    ET.SubElement(tc, "system-out").text = _xml_safe(c.details)
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def write(path: Path, suites: list[Suite]) -> None:
    atomic.write_text(path, render(suites))
