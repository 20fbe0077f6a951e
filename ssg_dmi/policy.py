"""The PLUS "Data Mining" vocabulary (IPTC Photo Metadata 2023.1) and the per-image policy."""

from __future__ import annotations

import enum
from dataclasses import dataclass

PLUS_VOCAB = "http://ns.useplus.org/ldf/vocab/"


class DMI(enum.Enum):
    """The nine final PLUS ``DataMining`` values (never the draft DMI-SEE-CONSTRAINT)."""

    UNSPECIFIED = "DMI-UNSPECIFIED"
    ALLOWED = "DMI-ALLOWED"
    PROHIBITED_AIMLTRAINING = "DMI-PROHIBITED-AIMLTRAINING"
    PROHIBITED_GENAIMLTRAINING = "DMI-PROHIBITED-GENAIMLTRAINING"
    PROHIBITED_EXCEPTSEARCHENGINEINDEXING = "DMI-PROHIBITED-EXCEPTSEARCHENGINEINDEXING"
    PROHIBITED = "DMI-PROHIBITED"
    PROHIBITED_SEECONSTRAINT = "DMI-PROHIBITED-SEECONSTRAINT"
    PROHIBITED_SEEEMBEDDEDRIGHTSEXPR = "DMI-PROHIBITED-SEEEMBEDDEDRIGHTSEXPR"
    PROHIBITED_SEELINKEDRIGHTSEXPR = "DMI-PROHIBITED-SEELINKEDRIGHTSEXPR"

    @property
    def key(self) -> str:
        """The vocabulary key, e.g. ``DMI-PROHIBITED``."""
        return self.value

    @property
    def uri(self) -> str:
        """The full URI written into ``plus:DataMining``."""
        return PLUS_VOCAB + self.value

    @classmethod
    def parse(cls, text: str) -> DMI:
        """A DMI value from its key or full URI (case-insensitive); ValueError otherwise."""
        key = text.strip()
        if key.lower().startswith(PLUS_VOCAB):
            key = key[len(PLUS_VOCAB) :]
        for member in cls:
            if member.value.lower() == key.lower():
                return member
        raise ValueError(text)


# When pages disagree about one image, the most restrictive value wins.
RESTRICTIVENESS = [
    DMI.ALLOWED,
    DMI.UNSPECIFIED,
    DMI.PROHIBITED_GENAIMLTRAINING,
    DMI.PROHIBITED_AIMLTRAINING,
    DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING,
    DMI.PROHIBITED_SEELINKEDRIGHTSEXPR,
    DMI.PROHIBITED_SEEEMBEDDEDRIGHTSEXPR,
    DMI.PROHIBITED_SEECONSTRAINT,
    DMI.PROHIBITED,
]


def most_restrictive(a: DMI, b: DMI) -> DMI:
    """The more restrictive of two values (see :data:`RESTRICTIVENESS`)."""
    return max(a, b, key=RESTRICTIVENESS.index)


def not_a_dmi(value: object) -> str:
    """The one-line message for a value that is not a DataMining value."""
    allowed = ", ".join(m.key for m in DMI)
    return f"{value!r} is not a DataMining value; use one of {allowed}"


class MetadataMode(enum.Enum):
    """What source metadata survives besides what ssg-dmi writes."""

    STRIP = "strip"
    COPYRIGHT = "copyright"
    KEEP = "keep"


@dataclass(frozen=True)
class Rights:
    """The rights fields written beside the DataMining value (Google Images reads these)."""

    copyright: str | None = None
    creators: tuple[str, ...] = ()
    credit: str | None = None
    web_statement: str | None = None
    licensor_url: str | None = None

    def merged_over(self, fallback: Rights) -> Rights:
        """These rights, each unset field taken from ``fallback``."""
        return Rights(
            copyright=self.copyright or fallback.copyright,
            creators=self.creators or fallback.creators,
            credit=self.credit or fallback.credit,
            web_statement=self.web_statement or fallback.web_statement,
            licensor_url=self.licensor_url or fallback.licensor_url,
        )


@dataclass(frozen=True)
class RightsExpression:
    """An ODRL-style machine-readable rights expression (embedded text or linked URL)."""

    value: str
    encoding: str = "application/ld+json"
    language: str = "http://www.w3.org/ns/odrl/2/"


@dataclass(frozen=True)
class ImagePolicy:
    """Everything that decides one image's tags, after site, rule and page overrides."""

    dmi: DMI = DMI.PROHIBITED_EXCEPTSEARCHENGINEINDEXING
    rights: Rights = Rights()
    metadata: MetadataMode = MetadataMode.COPYRIGHT
    other_constraints: str | None = None
    embedded_rights_expression: RightsExpression | None = None
    linked_rights_expression: RightsExpression | None = None
