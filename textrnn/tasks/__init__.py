"""The tasks, one module each; importing this package registers all four (OpenNMT-py's pattern: the
package imports its modules, and each module's `@register("task", name)` files its class under the
pipeline's `task:` value, read back by `base.build_task`).

    classify   classify.Classify     text → label
    lm         lm.LM                 next-word language model
    translate  seq2seq.Translate     source sentence → target sentence
    chat       chat.Chat             conversation → reply (the seq2seq task on dialogue pairs)

Every schema a task reads (its `model:` and `generate:` blocks) lives in textrnn.config, with
`config.MODEL_SCHEMAS` / `config.GENERATE_SCHEMAS` naming the one each task validates with.
"""

from textrnn.tasks import chat, classify, lm, seq2seq  # noqa: F401  (registers each task)
