"""The Block Kit rules the fake Slack holds a message's `blocks` to, as chat.postMessage and chat.update do: a message
that breaks one is refused with `invalid_blocks` and nothing is posted or changed.

Only the blocks and elements tagship sends are known (section, actions, context, divider, header; buttons); any other
type is refused too, the stricter reading: the real service takes more, but a fake that takes what tagship does not
send would not notice tagship starting to send it wrong. Limits, from the Block Kit reference
(https://docs.slack.dev/reference/block-kit/blocks, .../block-elements/button-element,
.../composition-objects/confirmation-dialog-object, .../composition-objects/text-object):
- at most 50 blocks in a message; a `block_id` at most 255 characters and unique in the message;
- section: a text object of 1 to 3000 characters; context: 1 to 10 text elements; header: plain_text up to 150;
- actions: 1 to 25 elements; a button's text plain_text of 1 to 75, its `action_id` up to 255 and unique in the
  message, its `value` up to 2000, its `style` primary or danger;
- a confirmation dialog: title up to 100, text up to 300, confirm and deny up to 30 characters, all plain_text
  (the text may be mrkdwn).
"""
from __future__ import annotations

from typing import Any

BLOCKS_MAX = 50


def problem(blocks: Any) -> str | None:
    """What breaks Block Kit's rules in `blocks` (a message's list), or None when Slack would take it."""
    if not isinstance(blocks, list):
        return "blocks must be a list"
    if len(blocks) > BLOCKS_MAX:
        return f"at most {BLOCKS_MAX} blocks, found {len(blocks)}"
    block_ids: set[str] = set()
    action_ids: set[str] = set()
    for index, block in enumerate(blocks):
        where = f"blocks[{index}]"
        if not isinstance(block, dict):
            return f"{where} must be an object"
        found = _unique_id(f"{where}.block_id", block.get("block_id"), block_ids) or _block(where, block, action_ids)
        if found:
            return found
    return None


def _block(where: str, block: dict[str, Any], action_ids: set[str]) -> str | None:
    kind = block.get("type")
    if kind == "divider":
        return None
    if kind == "section":
        return _text(f"{where}.text", block.get("text"), 3000)
    if kind == "header":
        return _text(f"{where}.text", block.get("text"), 150, plain=True)
    if kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 10:
            return f"{where}.elements must hold 1 to 10 elements"
        for i, element in enumerate(elements):
            found = _text(f"{where}.elements[{i}]", element, 3000)
            if found:
                return found
        return None
    if kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= 25:
            return f"{where}.elements must hold 1 to 25 elements"
        for i, element in enumerate(elements):
            found = _button(f"{where}.elements[{i}]", element, action_ids)
            if found:
                return found
        return None
    return f"{where}.type {str(kind)[:40]!r} is not a block this fake knows"


def _button(where: str, button: Any, action_ids: set[str]) -> str | None:
    if not isinstance(button, dict) or button.get("type") != "button":
        return f"{where} must be a button"
    found = _text(f"{where}.text", button.get("text"), 75, plain=True)
    if found:
        return found
    found = _unique_id(f"{where}.action_id", button.get("action_id"), action_ids)
    if found:
        return found
    value = button.get("value")
    if value is not None and (not isinstance(value, str) or len(value) > 2000):
        return f"{where}.value must be text of at most 2000 characters"
    if "style" in button and button["style"] not in ("primary", "danger"):
        return f"{where}.style must be primary or danger"
    confirm = button.get("confirm")
    if confirm is not None:
        if not isinstance(confirm, dict):
            return f"{where}.confirm must be an object"
        for key, limit, plain in (("title", 100, True), ("text", 300, False), ("confirm", 30, True), ("deny", 30, True)):
            found = _text(f"{where}.confirm.{key}", confirm.get(key), limit, plain=plain)
            if found:
                return found
    return None


def _unique_id(where: str, value: Any, seen: set[str]) -> str | None:
    """A `block_id` or `action_id`: absent, or 1 to 255 characters not used before in the message (kept in `seen`)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > 255:
        return f"{where} must be 1 to 255 characters"
    if value in seen:
        return f"{where} {value!r} is used twice"
    seen.add(value)
    return None


def _text(where: str, text: Any, limit: int, *, plain: bool = False) -> str | None:
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if not isinstance(text, dict) or text.get("type") not in kinds:
        return f"{where} must be a text object of type {' or '.join(kinds)}"
    body = text.get("text")
    if not isinstance(body, str) or not 1 <= len(body) <= limit:
        return f"{where}.text must be 1 to {limit} characters"
    return None
