"""What the app and the verifiers' sync agents agree on: the endpoints, the token's header and file.

The app serves these (``signing.django``'s fleet views); every agent (:mod:`signing.fleet.agent`)
asks them. docs/fleet.md describes the exchange.
"""

KEYS_PATH = "/_secure_link/keys"  # where the app serves the key set to its verifiers
REVOCATIONS_PATH = "/_secure_link/revocations"  # ... and the revoked link ids (JSON)
TAKE_PATH = "/_secure_link/downloads/take"  # where an origin counts a download of a limited link
SETTLE_PATH = "/_secure_link/downloads/settle"  # ... and ends one that did not send the whole file
TOKEN_HEADER = "Authorization"  # "Bearer TOKEN": the fleet token, never in a URL
FLEET_TOKEN_FILE_NAME = "fleet_token"  # the token's file in a deployment's var folder
