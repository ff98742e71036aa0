"""Webhooks: signed, at-least-once deliveries of events to subscribed URLs (docs/webhooks.md).

``service`` wires the parts: ``subscriptions`` (the store's webhooks, matched per event),
``outbox`` (the EventBus sink writing one row per event and subscription before any send),
``worker`` (claims due rows, delivers in order per call), ``policy`` (what an answer means, when
to retry), ``ssrf`` (which addresses a URL may reach), ``signer`` (Standard Webhooks headers).
"""
