"""Tables of the broadcasts area."""

from __future__ import annotations
