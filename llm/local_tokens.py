"""Chat prompts' tokens counted in this process, with the model's own tokenizer and chat template.

The `openai` backend asks the server to count a prompt (`POST /tokenize`) only where it cannot
count it here: every count is a round trip and server CPU that generation does not get. Here
means the model's files are on this machine: the `tokenizer` option, else `model` itself when it
is a folder, a model id in the Hugging Face cache, or a model `actionforge models fetch` wrote.

A prompt is rendered the way vLLM's server renders it (transformers' `apply_chat_template`: a
sandboxed jinja2 environment with trimmed blocks, `tojson` without ASCII escapes,
`raise_exception`, `strftime_now`, the tokenizer's named special tokens as variables, the
generation prompt added) and encoded without special tokens, with the `tokenizers` library
(transformers is not imported: it takes seconds and imports torch). Templates and tokenizers
have corners this cannot promise to match (a template that detects list content, a tokenizer
class transformers rebuilds), so the first count is checked against the server's: the longest
prompt of the first call is counted by both, and a difference turns local counting off for the
backend's lifetime (with a warning in the log). A server without /tokenize cannot check: the
local count is then trusted, being the model's own tokenizer.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from llm.model_fetch import default_model_dir
from llm.prompt_tokens import Messages

log = logging.getLogger(__name__)

TOKENIZER_FILE = "tokenizer.json"
CONFIG_FILE = "tokenizer_config.json"
TEMPLATE_FILE = "chat_template.jinja"
SPECIAL_TOKENS = (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token",
)  # fmt: skip
"""The named special tokens a chat template sees as variables (as in transformers)."""


def tokenizer_folder(model: str, tokenizer: str | None = None) -> Path | None:
    """The local folder holding the tokenizer of `model`: `tokenizer` where given, else `model`
    (a folder, a Hugging Face model id in the local cache, or a name `actionforge models fetch`
    used); None where none is on this machine."""
    for name in (tokenizer,) if tokenizer else (model,):
        for candidate in (Path(name).expanduser(), _hub_snapshot(name), default_model_dir(name)):
            if candidate is not None and (candidate / TOKENIZER_FILE).is_file():
                return candidate
    return None


def _hub_snapshot(model_id: str) -> Path | None:
    """The Hugging Face cache's snapshot of `model_id` (its `main` revision), if cached."""
    if model_id.count("/") != 1 or model_id.startswith((".", "/", "~")):
        return None
    hub = os.environ.get("HF_HUB_CACHE")
    if not hub:
        home = os.environ.get("HF_HOME") or str(Path.home() / ".cache" / "huggingface")
        hub = str(Path(home) / "hub")
    repo = Path(hub) / ("models--" + model_id.replace("/", "--"))
    try:
        revision = (repo / "refs" / "main").read_text().strip()
    except OSError:
        return None
    return repo / "snapshots" / revision if revision else None


class ChatTokenizer:
    """A model's tokenizer and chat template, loaded from its folder."""

    def __init__(self, tokenizer: Any, template: Any, special_tokens: dict[str, str]) -> None:
        self._tokenizer = tokenizer
        self._template = template
        self._special_tokens = special_tokens

    @classmethod
    def load(cls, folder: Path) -> ChatTokenizer:
        """The tokenizer of `folder`. Raises ValueError (or OSError, ImportError) where the folder
        lacks a usable tokenizer or chat template, or `tokenizers` is not installed."""
        import tokenizers

        config_path = folder / CONFIG_FILE
        config = json.loads(config_path.read_text()) if config_path.is_file() else {}
        template_text = _chat_template(folder, config)
        tokenizer = tokenizers.Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        special = {}
        for name in SPECIAL_TOKENS:
            value = config.get(name)
            text = value.get("content") if isinstance(value, dict) else value
            if isinstance(text, str):
                special[name] = text
        return cls(tokenizer, _compile(template_text), special)

    def render(self, messages: Messages) -> str:
        """The prompt as the model reads it: the chat template applied, the assistant's turn
        opened."""
        text: str = self._template.render(
            messages=[dict(message) for message in messages],
            tools=None,
            documents=None,
            add_generation_prompt=True,
            **self._special_tokens,
        )
        return text

    def count(self, prompts: Sequence[Messages]) -> list[int | None]:
        """Each prompt's tokens, or None for one the chat template refuses."""
        texts: list[str | None] = []
        for messages in prompts:
            try:
                texts.append(self.render(messages))
            except Exception:  # the template raised (raise_exception, a missing field)
                texts.append(None)
        rendered = [text for text in texts if text is not None]
        encoded = iter(self._tokenizer.encode_batch(rendered, add_special_tokens=False))
        return [len(next(encoded).ids) if text is not None else None for text in texts]


def _chat_template(folder: Path, config: dict[str, Any]) -> str:
    """The folder's chat template: chat_template.jinja, else tokenizer_config.json's (its
    `default` one where it names several)."""
    template_path = folder / TEMPLATE_FILE
    if template_path.is_file():
        return template_path.read_text()
    template = config.get("chat_template")
    if isinstance(template, list):
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    if not isinstance(template, str) or not template:
        raise ValueError(f"{folder} has no chat template")
    return template


def _compile(template_text: str) -> Any:
    """The template in an environment that renders like transformers' `apply_chat_template`."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    class GenerationBlock(jinja2.ext.Extension):
        """`{% generation %}...{% endgeneration %}` marks the assistant's part for training;
        rendering keeps the body as it is."""

        tags = {"generation"}  # noqa: RUF012 (jinja2 reads it from the class)

        def parse(self, parser: Any) -> Any:
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            call = self.call_method("_body")
            return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

        def _body(self, caller: Callable[[], str]) -> str:
            return caller()

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(
        value: Any,
        ensure_ascii: bool = False,
        indent: int | None = None,
        separators: tuple[str, str] | None = None,
        sort_keys: bool = False,
    ) -> str:
        return json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
            sort_keys=sort_keys,
        )  # fmt: skip

    environment = ImmutableSandboxedEnvironment(
        trim_blocks=True, lstrip_blocks=True, extensions=[GenerationBlock, jinja2.ext.loopcontrols]
    )
    environment.filters["tojson"] = tojson
    environment.globals["raise_exception"] = raise_exception
    environment.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return environment.from_string(template_text)


ServerCount = Callable[[Messages], int | None]
"""The server's exact count of one prompt, or None where it did not give one."""
ServerTokenizes = Callable[[], bool]
"""Whether the server still may count prompts (False once it said it has no /tokenize)."""


class LocalPromptCounter:
    """Prompt counts for one backend in this process: here where the model's tokenizer is local
    and agreed with the server once, else none (the caller asks the server)."""

    def __init__(self, model: str, tokenizer: str | None) -> None:
        self._model = model
        self._tokenizer_name = tokenizer
        self._lock = threading.Lock()
        self._check_lock = threading.Lock()
        self._loaded = False
        self._tokenizer: ChatTokenizer | None = None
        self._agreed = False

    def count(
        self,
        prompts: Sequence[Messages],
        server_count: ServerCount,
        server_tokenizes: ServerTokenizes,
    ) -> list[int | None]:
        """Each prompt's tokens counted here, None where it is not (no local tokenizer, the
        check against the server failed or could not be made yet, the template refused it)."""
        tokenizer = self._loaded_tokenizer()
        if tokenizer is None:
            return [None] * len(prompts)
        counts = tokenizer.count(prompts)
        if not self._agreed:
            with self._check_lock:  # one check at a time: a second caller finds it made
                agreed = self._agreed or self._check(
                    prompts, counts, server_count, server_tokenizes
                )
            if not agreed:
                return [None] * len(prompts)
        return counts

    def _loaded_tokenizer(self) -> ChatTokenizer | None:
        with self._lock:
            if not self._loaded:
                self._loaded = True
                self._tokenizer = self._load()
            return self._tokenizer

    def _load(self) -> ChatTokenizer | None:
        folder = tokenizer_folder(self._model, self._tokenizer_name)
        if folder is None:
            if self._tokenizer_name:
                log.warning(
                    "tokenizer %r: no %s there or in the Hugging Face cache; the server counts "
                    "prompt tokens",
                    self._tokenizer_name,
                    TOKENIZER_FILE,
                )
            return None
        try:
            return ChatTokenizer.load(folder)
        except Exception as exc:  # a broken file, an unreadable template, no tokenizers
            log.warning("cannot count prompt tokens with %s (%s); the server will", folder, exc)
            return None

    def _check(
        self,
        prompts: Sequence[Messages],
        counts: list[int | None],
        server_count: ServerCount,
        server_tokenizes: ServerTokenizes,
    ) -> bool:
        """Whether the local count of the longest prompt equals the server's (True where the
        server cannot count); a difference turns local counting off."""
        counted = [index for index, count in enumerate(counts) if count is not None]
        if not counted or self._tokenizer is None:
            return False
        index = max(counted, key=lambda i: counts[i] or 0)
        exact = server_count(prompts[index]) if server_tokenizes() else None
        if exact is None and server_tokenizes():
            return False  # no answer now: ask again with the next call
        if exact is not None and exact != counts[index]:
            log.warning(
                "the local tokenizer counts %s tokens for a prompt the server counts %s for; "
                "the server counts prompt tokens from now on",
                counts[index],
                exact,
            )
            with self._lock:
                self._tokenizer = None
            return False
        self._agreed = True
        return True
