"""Model families: how each multilingual model wants its source tokens and its target language."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

#: Tokens that never belong in a translated text, whatever the model.
SPECIAL_TOKENS = frozenset({"<s>", "</s>", "<pad>", "<unk>", "<blank>", "<mask>"})


@dataclass(frozen=True)
class Family:
    """What distinguishes one family of CTranslate2 models from another at translation time."""

    name: str
    #: our language code -> the model's language token (e.g. "lo" -> "lao_Laoo")
    language_tokens: Mapping[str, str]
    #: True: the target-language token starts the decoder (target prefix, NLLB / M2M-100);
    #: False: it is put in front of the source (MADLAD `<2lo>`, multi-target Marian `>>lao<<`)
    target_token_in_prefix: bool
    #: True: the source starts with the source-language token (NLLB, M2M-100)
    source_language_token: bool
    #: tokenizer file names the converters leave behind, in order of preference
    tokenizer_files: tuple[str, ...]
    target_tokenizer_files: tuple[str, ...] = ()
    #: how the input is built, for `liaison models list` and the README
    note: str = ""

    def source_tokens(
        self, pieces: Sequence[str], source: str, target: str, tokens: Mapping[str, str]
    ) -> list[str]:
        """Return the encoder input for already tokenized pieces."""
        out: list[str] = []
        if self.source_language_token:
            out.append(tokens[source])
        if not self.target_token_in_prefix and target in tokens:
            out.append(tokens[target])
        out.extend(pieces)
        out.append("</s>")
        return out

    def target_prefix(self, target: str, tokens: Mapping[str, str]) -> list[str] | None:
        """Return the decoder prefix for the target language, or None when the family needs none."""
        if self.target_token_in_prefix:
            return [tokens[target]]
        return None


NLLB = Family(
    name="nllb",
    language_tokens={"zh": "zho_Hans", "lo": "lao_Laoo", "vi": "vie_Latn", "en": "eng_Latn"},
    target_token_in_prefix=True,
    source_language_token=True,
    tokenizer_files=("sentencepiece.bpe.model", "sentencepiece.model"),
    note="source [zho_Hans] + pieces + </s>; target prefix [vie_Latn]",
)
M2M100 = Family(
    name="m2m100",
    language_tokens={"zh": "__zh__", "lo": "__lo__", "vi": "__vi__", "en": "__en__"},
    target_token_in_prefix=True,
    source_language_token=True,
    tokenizer_files=("sentencepiece.bpe.model", "sentencepiece.model", "spm.model"),
    note="source [__zh__] + pieces + </s>; target prefix [__vi__]",
)
MADLAD = Family(
    name="madlad",
    language_tokens={"zh": "<2zh>", "lo": "<2lo>", "vi": "<2vi>", "en": "<2en>"},
    target_token_in_prefix=False,
    source_language_token=False,
    tokenizer_files=("spiece.model", "sentencepiece.model"),
    note="source [<2lo>] + pieces + </s>; no target prefix (T5)",
)
MARIAN = Family(
    name="marian",
    # Bilingual OPUS-MT pairs need no token; multi-target ones name theirs in the manifest (">>vie<<").
    language_tokens={},
    target_token_in_prefix=False,
    source_language_token=False,
    tokenizer_files=("source.spm", "sentencepiece.model"),
    target_tokenizer_files=("target.spm",),
    note="source [>>vie<<]? + pieces + </s> with separate source/target SentencePiece models",
)

FAMILIES: dict[str, Family] = {f.name: f for f in (NLLB, MADLAD, M2M100, MARIAN)}


def get_family(name: str) -> Family:
    """Return the family called `name` (nllb, madlad, m2m100, marian) or raise ValueError."""
    try:
        return FAMILIES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown model family {name!r} (known: {', '.join(FAMILIES)})") from None
