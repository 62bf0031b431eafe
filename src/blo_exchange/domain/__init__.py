"""The domain of blo-exchange: identifiers, markings, alerts, the directory and sharing policy.

Stdlib and pydantic only; no framework, database, bus or cryptography (a test walks the imports).

- ``ids``: countries, border pairs, agency/node/crossing point/alert ids, RFC 3339 time, UUIDv7
- ``marking``: TLP, handling codes, grading, with English labels
- ``vocab``: controlled vocabularies of alert bodies
- ``cases``, ``nominal``: the case and nominal blocks of an alert
- ``alerts``: the submission models (the body of ``POST /v1/alerts``), re-exporting the blocks
- ``directory``: agencies, nodes, principals, sharing agreements
- ``policy``: recipient resolution from agreements, failing closed
- ``examples``: realistic submissions for the README, the CLI simulator and tests

Import from the modules; this package re-exports nothing, so importing it costs nothing.
"""

__all__: list[str] = []
