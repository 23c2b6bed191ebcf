"""webbugger's built-in types, each a plugin registered through the public plugin API.

- ``link`` target: a stored URL, with optional query forwarding and fixed UTM parameters;
- ``url`` target: a destination carried in the signed token, allowed hosts only;
- ``ip`` entity: the (anonymised) addresses it was seen from (django-webbugger's IPEntity);
- ``recipient`` entity: opens and clicks of an email recipient (deferred hook);
- ``campaign`` source: a named campaign.
"""
