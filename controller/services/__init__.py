"""The controller's domain as services (issue 12 §1): functions on a session that raise domain errors
(controller.services.errors), called by the API, the CLI and the demo alike, never importing them."""
