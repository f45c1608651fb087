"""The multi-channel API family: RBM (RCS Business Messaging) with SMS/MMS fallback.

``wire`` (request validation, envelopes, callback events), ``fallback`` (the pure planner of
channel attempts), ``service`` (accepting sends, the handset's side) and ``handlers`` (the
HTTP route). See docs/multichannel.md.
"""
