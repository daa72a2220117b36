"""`liaison audit verify|export|verify-export|purge` and `liaison keys ...` (rotation, public key)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from bot.cli import UserError, out
from bot.config import Settings

logger = logging.getLogger(__name__)


def _anchor(value: str) -> tuple[int, str]:
    seq, sep, digest = value.partition(":")
    if not sep or not seq.isdigit() or len(digest) != 64:
        raise argparse.ArgumentTypeError(f"an anchor looks like SEQ:HASH (64 hex digits), got {value!r}")
    return int(seq), digest.lower()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the audit and key-management subcommands."""
    aud = sub.add_parser("audit", help="the tamper-evident audit trail").add_subparsers(
        dest="audit_command", metavar="ACTION"
    )
    aud.required = True

    p = aud.add_parser("verify", help="walk the whole chain; report the first broken link or 'intact'")
    p.add_argument("--all", action="store_true", help="go on after a break and list up to 100 breaks")
    p.add_argument(
        "--anchor",
        type=_anchor,
        action="append",
        default=[],
        metavar="SEQ:HASH",
        help="a hash noted earlier (e.g. from an export's manifest) that event SEQ must still have",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=cmd_verify)

    p = aud.add_parser("export", help="write a signed ZIP bundle of messages and events")
    p.add_argument("--case", help="case tag, e.g. CN-VN-2026-0042")
    p.add_argument("--since", help="first day (2026-08-01, in --tz) or an ISO date-time")
    p.add_argument("--until", help="last day, included (2026-08-31, in --tz) or an ISO date-time (excluded)")
    p.add_argument("--officer", help="@username, Telegram id or id:N: what they sent, received and did")
    p.add_argument("--everything", action="store_true", help="no filter: the whole log")
    p.add_argument("--tz", default="UTC", help="time zone of the dates (default UTC), e.g. Asia/Vientiane")
    p.add_argument("--purpose", help="why the export is made (kept encrypted with the export record)")
    p.add_argument("--out", required=True, type=Path, metavar="FILE")
    p.set_defaults(func=cmd_export)

    p = aud.add_parser("verify-export", help="check a bundle's signature, file hashes and event chain")
    p.add_argument("file", type=Path)
    p.add_argument("--public-key", help="the installation's public key to pin (base64, or PEM)")
    p.add_argument("--public-key-file", type=Path, help="read the pinned public key from a file")
    p.add_argument(
        "--against-db",
        action="store_true",
        help="also check that the bundle's events are in this server's chain, which is intact",
    )
    p.set_defaults(func=cmd_verify_export)

    p = aud.add_parser("purge", help="remove message bodies older than LIAISON_RETENTION_DAYS (hashes stay)")
    p.add_argument("--days", type=int, help="override the retention period for this run")
    p.add_argument("--dry-run", action="store_true", help="count what would be removed")
    p.set_defaults(func=cmd_purge)

    keys = sub.add_parser(
        "keys", help="data keys (encryption at rest) and the export-signing key"
    ).add_subparsers(dest="keys_command", metavar="ACTION")
    keys.required = True
    keys.add_parser("status", help="keys in the keyring and how many stored values use each").set_defaults(
        func=cmd_keys_status
    )
    p = keys.add_parser("rotate", help="new active key, re-encrypt everything in batches while the bot runs")
    p.add_argument("--drop-old", action="store_true", help="remove the old keys once no value uses them")
    p.add_argument("--batch", type=int, default=500, help="rows per transaction (default 500)")
    p.set_defaults(func=cmd_keys_rotate)
    p = keys.add_parser("reencrypt", help="finish a rotation: re-encrypt what is not on the active key yet")
    p.add_argument("--drop-old", action="store_true", help="remove the old keys once no value uses them")
    p.add_argument("--batch", type=int, default=500)
    p.set_defaults(func=cmd_keys_reencrypt)
    keys.add_parser(
        "keep-env-key", help="save LIAISON_DATA_KEY's key in the keyring file before changing it"
    ).set_defaults(func=cmd_keys_keep_env)
    keys.add_parser("new", help="print a fresh random key for LIAISON_DATA_KEY").set_defaults(
        func=cmd_keys_new
    )
    p = keys.add_parser("show-public", help="print the export-signing public key for auditors to pin")
    p.add_argument("--pem", action="store_true", help="as a PEM block (for openssl)")
    p.set_defaults(func=cmd_keys_show_public)


def _core(settings: Settings):  # type: ignore[no-untyped-def]
    from bot.cli.core import open_core

    return open_core(settings)


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Verify the chain; exit 0 when intact, 1 when broken."""
    from bot import audit

    core = _core(settings)
    try:
        result = audit.verify_chain(core.db, max_breaks=100 if args.all else 1, anchors=dict(args.anchor))
    finally:
        core.close()
    if args.json:
        out(
            json.dumps(
                {
                    "intact": result.ok,
                    "events": result.events,
                    "last_seq": result.last_seq,
                    "head_hash": result.last_hash,
                    "seconds": round(result.seconds, 3),
                    "breaks": [b.__dict__ for b in result.breaks],
                }
            )
        )
    else:
        out(result.summary())
        for brk in result.breaks[1:]:
            out(f"also broken at event {brk.seq} ({brk.problem}): {brk.detail}")
        out(f"({result.events} events checked in {result.seconds:.2f} s)")
    return 0 if result.ok else 1


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write a signed export bundle as the server's administrator."""
    from bot import exports

    if not (args.case or args.since or args.until or args.officer or args.everything):
        raise UserError("say what to export: --case, --since/--until, --officer, or --everything")
    flt = exports.make_filter(
        case_tag=args.case, since=args.since, until=args.until, officer=args.officer, tz=args.tz
    )
    if args.out.exists():
        raise UserError(f"{args.out} exists; choose another --out")
    core = _core(settings)
    try:
        result = exports.export_bundle(core, None, flt, args.out, via="cli", purpose=args.purpose)
    finally:
        core.close()
    out(f"wrote {result.path} ({result.size} bytes)")
    out(
        f"  {result.rows} rows ({result.messages} messages), {result.events} events"
        + (f" {result.first_seq}..{result.last_seq}" if result.first_seq else "")
    )
    out(f"  manifest SHA-256 {result.manifest_sha256}")
    out(f"  signed by key {result.fingerprint}")
    if result.unreadable:
        out(f"  WARNING: {result.unreadable} value(s) could not be decrypted (marked in the bundle)")
    for problem in result.chain_problems:
        out(f"  WARNING: {problem}")
    return 0


def cmd_verify_export(args: argparse.Namespace, settings: Settings) -> int:
    """Check a bundle; exit 0 when authentic and complete, 1 otherwise."""
    from bot import exports

    if not args.file.exists():
        raise UserError(f"no such file: {args.file}")
    pinned = args.public_key
    if args.public_key_file:
        pinned = args.public_key_file.read_text(encoding="utf-8")
    report = exports.verify_bundle(args.file, public_key=pinned)
    for note in report.notes:
        out(f"  {note}")
    for problem in report.problems:
        out(f"  PROBLEM: {problem}")
    ok = report.ok
    if ok and args.against_db:
        ok = _against_db(settings, report.manifest)
    out(
        ("OK: " if ok else "FAILED: ")
        + f"{args.file} (key {report.fingerprint}"
        + (", pinned" if report.pinned else "")
        + ")"
    )
    return 0 if ok else 1


def _against_db(settings: Settings, manifest: dict) -> bool:  # type: ignore[type-arg]
    """Check the bundle's end hashes against this server's chain, and the chain itself."""
    from bot import audit

    events = manifest.get("events") or {}
    anchors: dict[int, str] = {}
    if events.get("last"):
        anchors[int(events["last"]["seq"])] = events["last"]["hash"]
    if events.get("first") and int(events["first"]["seq"]) > 1:
        anchors[int(events["first"]["seq"]) - 1] = events["first"]["prev_hash"]
    core = _core(settings)
    try:
        result = audit.verify_chain(core.db, anchors=anchors)
    finally:
        core.close()
    out(f"  this server's chain: {result.summary()}")
    return result.ok


def cmd_purge(args: argparse.Namespace, settings: Settings) -> int:
    """Remove old bodies (audited)."""
    from bot import retention

    core = _core(settings)
    try:
        report = retention.purge(core, None, days=args.days, dry_run=args.dry_run)
    finally:
        core.close()
    verb = "would remove" if report.dry_run else "removed"
    out(f"{verb} {report.total} bodies older than {report.cutoff.isoformat()} ({report.days} days)")
    for name, n in sorted(report.purged.items()):
        out(f"  {name}: {n}")
    return 0


def cmd_keys_status(args: argparse.Namespace, settings: Settings) -> int:
    """Show the keyring and the stored values per key."""
    from bot import keys
    from bot.crypto import keyring_path

    core = _core(settings)
    try:
        source = "LIAISON_DATA_KEY" if settings.data_key is not None else str(keyring_path(settings))
        out(f"active key: {core.cipher.active} (from {source})")
        out(f"keys in the ring: {', '.join(sorted(core.cipher.keys))}")
        use = keys.usage(core)
    finally:
        core.close()
    for name, counts in sorted(use.by_column.items()):
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())) or "empty"
        out(f"  {name}: {detail}")
    for name, counts in sorted(use.unregistered.items()):
        detail = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items()))
        out(f"  {name} (NOT REGISTERED as encrypted; rotation cannot re-encrypt it): {detail}")
    return 0


def _print_rotation(report) -> None:  # type: ignore[no-untyped-def]
    rewritten = report.reencrypted.rewritten
    out(f"re-encrypted {sum(rewritten.values())} value(s) with key {report.new_active}")
    for name, n in sorted(rewritten.items()):
        out(f"  {name}: {n}")
    for name, key, reason in report.reencrypted.failures[:20]:
        out(f"  UNREADABLE {name} {key}: {reason}")
    if report.dropped:
        out(f"dropped key(s): {', '.join(report.dropped)}")
    for kid, why in sorted(report.kept.items()):
        if why != "active":
            out(f"kept key {kid}: {why}")


def cmd_keys_rotate(args: argparse.Namespace, settings: Settings) -> int:
    """Rotate the data key."""
    from bot import keys

    core = _core(settings)
    try:
        report = keys.rotate(core, drop_old=args.drop_old, batch=args.batch)
    finally:
        core.close()
    out(f"new active key {report.new_active} (was {report.old_active}); running bots switch within seconds")
    _print_rotation(report)
    return 1 if report.reencrypted.failures else 0


def cmd_keys_reencrypt(args: argparse.Namespace, settings: Settings) -> int:
    """Re-encrypt values still on old keys."""
    from bot import keys

    core = _core(settings)
    try:
        report = keys.finish(core, drop_old=args.drop_old, batch=args.batch)
    finally:
        core.close()
    _print_rotation(report)
    return 1 if report.reencrypted.failures else 0


def cmd_keys_keep_env(args: argparse.Namespace, settings: Settings) -> int:
    """Keep LIAISON_DATA_KEY's key for decryption after it changes."""
    from bot import keys
    from bot.crypto import keyring_path

    core = _core(settings)
    try:
        kid = keys.keep_env_key(core)
    finally:
        core.close()
    out(f"key {kid} saved in {keyring_path(settings)} (owner-only) for decryption")
    out(
        "next: restart the bot with a new LIAISON_DATA_KEY (liaison keys new), "
        "then run: liaison keys reencrypt --drop-old"
    )
    return 0


def cmd_keys_new(args: argparse.Namespace, settings: Settings) -> int:
    """Print a fresh key."""
    from bot.keys import new_env_key

    if sys.stdout.isatty():
        sys.stderr.write("a new key (keep it secret; it is shown once):\n")
    out(new_env_key())
    return 0


def cmd_keys_show_public(args: argparse.Namespace, settings: Settings) -> int:
    """Print the installation's export-signing public key (created on first use)."""
    from bot.crypto import load_signing_key, public_key_fingerprint, public_key_text, public_pem

    key = load_signing_key(settings)
    if args.pem:
        out(public_pem(key).rstrip("\n"))
        return 0
    text = public_key_text(key)
    out(f"public key:  {text}")
    out(f"fingerprint: {public_key_fingerprint(text)}")
    return 0
