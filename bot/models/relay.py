"""Tables of the relay area."""

from __future__ import annotations
