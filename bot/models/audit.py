"""Tables of the audit area: the record of every signed export made."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from bot.crypto import encrypted
from bot.models.base import Base


class AuditExport(Base):
    """One signed export bundle: who made it, with which filter, and the hashes that identify it."""

    __tablename__ = "audit_exports"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    created_at: Mapped[datetime]
    #: the exporting officer; None = the server's CLI
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("officers.id"), index=True)
    #: "cli" or "telegram"
    via: Mapped[str] = mapped_column(String(16))
    #: canonical JSON of the filter as given and as resolved to UTC
    filter: Mapped[str] = mapped_column(Text)
    event_count: Mapped[int] = mapped_column(Integer)
    message_count: Mapped[int] = mapped_column(Integer)
    first_seq: Mapped[int | None] = mapped_column(BigInteger)
    last_seq: Mapped[int | None] = mapped_column(BigInteger)
    #: the whole chain's head when the bundle was made
    head_seq: Mapped[int] = mapped_column(BigInteger)
    head_hash: Mapped[str] = mapped_column(String(64))
    manifest_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    #: fingerprint of the installation's Ed25519 key that signed the manifest
    signing_key: Mapped[str] = mapped_column(String(64))
    #: why the export was made (e.g. a court request), encrypted at rest
    purpose: Mapped[bytes | None] = mapped_column(LargeBinary, info=encrypted("audit_exports.purpose:{id}"))
