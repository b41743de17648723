"""The LLM generator: prompts per style, few-shot examples, the output schema an answer must fit,
and augmentation."""
