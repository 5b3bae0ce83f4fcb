"""Token counting and generated text of the emulated vLLM, and the tokenizer clients load.

The emulator's tokenizer is word level: a piece is a run of word characters or a run of other
non-space characters (the regular expression ``\\w+|[^\\w\\s]+``, which is what the Hugging Face
``Whitespace`` pre-tokenizer splits on), and every piece is one token (unknown words map to
``[UNK]``). No special tokens are added, so counting with or without them gives the same number.

A client that counts tokens itself (inference-perf, vLLM's benchmark scripts, anything built on
``transformers.AutoTokenizer``) points its tokenizer path at :data:`TOKENIZER_DIR`
(``load_emulator/openai_api/tokenizer``): ``tokenizer.json`` holds the model above and
``tokenizer_config.json`` the chat template, so its counts equal the server's ``usage``. Both files
are written by :func:`write_tokenizer` (``python -m load_emulator.openai_api.text``); a unit test
checks the shipped ones are what it writes.

Generated text: output token ``i`` of a request is a space and the word ``WORDS[i % len(WORDS)]``,
one token each, so the concatenated text of ``n`` tokens counts ``n``.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TOKENIZER_DIR = Path(__file__).parent / "tokenizer"
UNK = "[UNK]"
WORDS = (
    "the", "engine", "steps", "once", "per", "token", "and", "every", "running", "request",
    "gets", "one", "more", "word", "while", "queue", "waits", "for", "a", "free", "seat",
    "in", "batch", "cache", "holds", "blocks", "of", "sixteen", "tokens", "each", "replica",
    "serves", "its", "own",
)  # fmt: skip
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ message['role'] }}: {{ message['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}assistant:{% endif %}"
)
"""Jinja template clients render; :func:`render_chat` renders it the same way for the server."""
_PIECE = re.compile(r"\w+|[^\w\s]+")


def count_tokens(text: str) -> int:
    """Tokens of ``text`` under the word-level tokenizer. ``"Hello, world!"`` -> 4."""
    return len(_PIECE.findall(text))


def render_chat(messages: Sequence[tuple[str, str]]) -> str:
    """``CHAT_TEMPLATE`` with the generation prompt, for ``(role, content)`` pairs."""
    return "".join(f"{role}: {content}\n" for role, content in messages) + "assistant:"


def output_token(index: int) -> str:
    """The text of output token ``index`` (0-based): one word after a space."""
    return " " + WORDS[index % len(WORDS)]


def output_text(start: int, stop: int) -> str:
    return "".join(output_token(i) for i in range(start, stop))


def tokenizer_files(model_max_length: int = 1 << 20) -> dict[str, dict[str, Any]]:
    """The contents of ``tokenizer.json`` and ``tokenizer_config.json``."""
    pieces = [UNK, *sorted(set(WORDS)), ":", ",", ".", "!", "?"]
    vocab = {piece: index for index, piece in enumerate(pieces)}
    tokenizer = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {
                "id": 0,
                "content": UNK,
                "single_word": False,
                "lstrip": False,
                "rstrip": False,
                "normalized": False,
                "special": True,
            },
        ],
        "normalizer": None,
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": None,
        "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": False},
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": UNK},
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "unk_token": UNK,
        "model_max_length": model_max_length,
        "clean_up_tokenization_spaces": False,
        "chat_template": CHAT_TEMPLATE,
    }
    return {"tokenizer.json": tokenizer, "tokenizer_config.json": config}


def write_tokenizer(directory: Path = TOKENIZER_DIR) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, content in tokenizer_files().items():
        path = directory / name
        path.write_text(json.dumps(content, indent=1, ensure_ascii=False) + "\n")
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in write_tokenizer(Path(sys.argv[1]) if len(sys.argv) > 1 else TOKENIZER_DIR):
        print(written_path)
