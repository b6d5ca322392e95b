"""wahealth: WhatsApp Business messaging health, served in the dialects clients already speak.

The public surface (everything else is internal and may change):

- `wahealth.app`: `create_app(settings, *, overrides=...)`, `Overrides`, `Components`;
- `wahealth.settings`: `Settings`, `load_settings`;
- `wahealth.domain`: the health model, aggregation, the error catalog;
- `wahealth.testing`: `running_app`, `demo_settings`, `DEMO` (fixtures for your tests),
  and `wahealth.testing_server.serve_in_thread` (the app on a real loopback socket);
- `wahealth.upstream.graph.GraphClient` (Meta's Graph API, with a transport seam);
- `wahealth.upstream.emulator`: `create_emulator`, `load_scenario` (an ASGI Meta stand-in).
"""

__version__ = "0.1.0"
