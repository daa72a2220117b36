"""The bot's own texts: gettext catalogs, one folder per language, one .po file per area."""
