"""Token ids and loss labels of rendered samples: the loss falls on the assistant's turns only.

With a chat template that marks the assistant's content with `{% generation %}` (or one TRL
knows how to patch that way), the tokenizer's assistant-token mask decides the labels. With any
other template (SmolLM2's, for one) the loss falls on each assistant message as the template
writes it (`completion` masking): from where the template opens the assistant's turn
(`add_generation_prompt`) to the end of the message, its end-of-turn tokens included; never on
the system, user or tool messages, in any turn of a conversation. *Changed:* `completion`
masking used to train on everything after the first prompt, the tool results of a multi-step
sample included.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from trainer.render import Conversation, TemplateAbilities, chat_inputs

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
Masking = Literal["assistant_tokens", "completion"]


@dataclass(frozen=True)
class Encoded:
    """One sample as model input: ids and labels of the same length, -100 where no loss."""

    id: str
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


class ChatEncoder:
    """Tokenizes conversations with the tokenizer's chat template, for training and inference."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        from trl.chat_template_utils import get_training_chat_template, has_generation_markers

        self.tokenizer = tokenizer
        template = tokenizer.chat_template
        self.inference_template: str = (
            template if isinstance(template, str) else template["default"]
        )
        self.abilities = TemplateAbilities.of(self.inference_template)
        self.masking: Masking = "assistant_tokens"
        self.training_template: str = self.inference_template
        if not has_generation_markers(self.inference_template):
            try:
                patched = get_training_chat_template(tokenizer)
            except ValueError:  # a template TRL cannot patch: mask the prompt instead
                self.masking = "completion"
            else:
                self.training_template = patched or self.inference_template

    def encode(self, sample_id: str, conversation: Conversation) -> Encoded:
        """Ids and labels of the whole conversation; -100 on every token the model is not
        trained to write."""
        messages, tools = chat_inputs(conversation, self.abilities)
        if self.masking == "assistant_tokens":
            out = self._apply(
                messages, tools, self.training_template, return_assistant_tokens_mask=True
            )
            ids = list(out["input_ids"])
            mask = list(out["assistant_masks"])
            labels = [t if m else IGNORE_INDEX for t, m in zip(ids, mask, strict=True)]
            return Encoded(sample_id, ids, labels)
        ids = list(self._apply(messages, tools, self.training_template)["input_ids"])
        labels = [IGNORE_INDEX] * len(ids)
        for index, message in enumerate(messages):
            if message["role"] != "assistant":
                continue
            opened = self._apply(
                messages[:index], tools, self.training_template, add_generation_prompt=True
            )
            start = _shared_prefix(list(opened["input_ids"]), ids)
            end = _shared_prefix(
                self._apply(messages[: index + 1], tools, self.training_template)["input_ids"], ids
            )
            labels[start:end] = ids[start:end]
        return Encoded(sample_id, ids, labels)

    def prompt_ids(self, conversation: Conversation, turn: int = 0) -> list[int]:
        """Ids of the prompt for user turn `turn` (0: the first) with the assistant's turn
        opened: what generation starts from."""
        messages, tools = chat_inputs(conversation, self.abilities, prompt_only=True, turn=turn)
        out = self._apply(messages, tools, self.inference_template, add_generation_prompt=True)
        return list(out["input_ids"])

    def _apply(
        self,
        messages: list[dict[str, Any]],
        tools: list[dict[str, Any]] | None,
        template: str,
        **options: Any,
    ) -> Any:
        arguments: dict[str, Any] = {"tools": tools, "chat_template": template, **options}
        return self.tokenizer.apply_chat_template(
            messages, tokenize=True, return_dict=True, **arguments
        )


def _shared_prefix(prefix: list[int], ids: list[int]) -> int:
    """How many leading ids `prefix` shares with `ids` (a template renders an earlier part of a
    conversation as the start of the whole; the count stops where a tokenization differs)."""
    shared = 0
    while shared < min(len(prefix), len(ids)) and prefix[shared] == ids[shared]:
        shared += 1
    return shared
