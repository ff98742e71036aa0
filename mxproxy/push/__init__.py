"""Push: event policy and payloads, APNs and FCM senders, and result classification.

The dispatcher that wires MX session events to a user's devices lives next to these (see
docs/push.md); senders never raise for provider or network trouble, they return a PushResult.
"""
